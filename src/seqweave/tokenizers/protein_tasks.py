"""Proteins in, labels, numbers and residue indices out, with the task named in the input.

Prot2Token (every protein task as next-token prediction after a task token) needs one
vocabulary for both sides: the amino-acid letters (which also serve as the 3-state
secondary-structure labels ``H``, ``E``, ``C``), the digits, ``.`` and ``-`` of fixed-decimal
numbers, and ``,`` between residue indices: one token per character, lower case folded to
upper case as in the ``protein`` kind.

The task token is the first token of the source, written in the input text:
``<task=ss>MKV...``. Unlike ``tokenizer.task_tokens`` of a config (special: never produced
from text, so only code can place them), these are ordinary tokens matched in text, because
here the task is what the user asks for, in the same file and through the same ``seqweave
generate`` as the protein. ``decode`` writes them back as text; the decoding constraint
``tasks`` never lets a model write one. Not a ``TOKENIZERS`` kind for that reason: build it
here, save it, and name the file in ``tokenizer.path``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import AddedToken

from seqweave.errors import ConfigError
from seqweave.tokenizers.alphabets import PROTEIN_ALPHABET, alphabet_tokenizer
from seqweave.tokenizers.tokenizer import Tokenizer

LABEL_ALPHABET = PROTEIN_ALPHABET + "0123456789.,-"


def protein_task_tokenizer(task_tokens: Sequence[str] = ()) -> Tokenizer:
    """Protein letters, digits, ``.,-``, and ``task_tokens`` (``<task=NAME>``) read from text.

    Raises:
        ConfigError: a task token is not written ``<...>`` (a bare word would match inside
            protein text) or holds whitespace.
    """
    for token in task_tokens:
        if not (token.startswith("<") and token.endswith(">")) or any(c.isspace() for c in token):
            raise ConfigError(f"task token {token!r} must look like <task=NAME>, no spaces")
    tokenizer = alphabet_tokenizer(LABEL_ALPHABET, fold_case=True)
    added = [AddedToken(t, special=False, normalized=False) for t in task_tokens]
    tokenizer.backend.add_tokens(added)
    return tokenizer
