"""Protein input as a model reads it: a documented mapping, or a clear error, never a guess.

A protein model's vocabulary has one token per amino-acid letter. A character outside it
would otherwise become ``<unk>`` (or, worse, a digit that the vocabulary also holds for its
outputs) and the model would predict something for a protein nobody gave it. So input to a
protein model (``is_protein_vocabulary``) goes through ``clean_protein`` first:

- lower case becomes upper case (FASTA files mix cases without meaning another residue);
- the ambiguity and rare codes ``B`` (D or N), ``Z`` (E or Q), ``J`` (I or L), ``U``
  (selenocysteine) and ``O`` (pyrrolysine) become ``X``, the unknown residue, which is how
  the training sets mark what they cannot resolve (flip-ss holds 144 ``X``, 10 ``U``, 1 ``O``);
- one ``*`` at the very end (the stop codon of a translated sequence) is dropped;
- task tokens written at the start (``<task=ss>``) are kept as they are;
- anything else (digits, spaces, ``-`` or ``.`` gaps of an alignment, a ``*`` inside the
  sequence, other symbols) raises ``DataError`` naming the input, the position (1-based, in
  the sequence) and the character; an input with no residue raises too.
"""

from __future__ import annotations

import re

from seqweave.errors import DataError

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
RESIDUES = frozenset(AMINO_ACIDS + "X")
TO_UNKNOWN = {code: "X" for code in "BZJUO"}
_TASK_PREFIX = re.compile(r"(?:<[^<>\s]+>)*")


def clean_protein(
    text: str, where: str = "input", path: str | None = None, line: int | None = None
) -> str:
    """``text`` as the model should read it (see the module docstring for the mapping).

    ``where`` names the input in errors (``"record 'sp|P69905'"``); ``path`` and ``line``
    locate it in its file where known.

    Raises:
        DataError: a character that is not an amino-acid letter, or no residue at all.
    """
    prefix = _TASK_PREFIX.match(text).group(0)
    sequence = text[len(prefix) :].upper()
    if sequence.endswith("*"):
        sequence = sequence[:-1]
    if not sequence:
        raise DataError(f"{where}: no residues", path=path, line=line)
    cleaned = []
    for position, char in enumerate(sequence, start=1):
        char = TO_UNKNOWN.get(char, char)
        if char not in RESIDUES:
            raise DataError(
                f"{where}: position {position}: {_describe(char)} is not an amino-acid letter "
                "(proteins may hold the 20 standard letters, X, B/Z/J/U/O read as X, and one "
                "final '*')",
                path=path,
                line=line,
            )
        cleaned.append(char)
    return prefix + "".join(cleaned)


def _describe(char: str) -> str:
    if char.isspace():
        return f"whitespace ({char!r})"
    if char == "*":
        return "a stop '*' inside the sequence"
    return repr(char)


def is_protein_vocabulary(tokenizer) -> bool:
    """Whether a tokenizer reads proteins: one token per character (``<...>`` tokens
    aside) and every amino-acid letter among them. Byte-level BPE, word vocabularies and
    DNA alphabets are not."""
    vocab = tokenizer.backend.get_vocab(with_added_tokens=False)
    plain = [token for token in vocab if not (token.startswith("<") and token.endswith(">"))]
    return all(len(token) == 1 for token in plain) and set(plain) >= RESIDUES
