"""Tokenizers: byte-level BPE for text, BPE over ACGTN for DNA reads, one token per word for
symbols (labels, item ids), and one-token-per-character alphabets for everything else
(``protein_task_tokenizer``: proteins in, labels and digits out, the task token read from the
input text; built in code and used through ``tokenizer.path``, since its task tokens are
ordinary tokens, unlike a config's).

Every kind is one HF ``tokenizers.Tokenizer`` behind one wrapper, so every kind is saved and
loaded the same way: as ``tokenizer.json`` in a model directory, the file Hugging Face uses.
A ``tokenizer.json`` from a Hugging Face model directory (BART, RoBERTa, ...) loads too.

Contracts the rest of seqweave relies on:

- ``encode`` returns plain token ids: no special tokens, no truncation, no padding. Decoders
  and data pipelines add BOS/EOS/task tokens themselves, by id.
- User text can never produce a special token. Text that literally contains ``"</s>"`` is
  encoded as the characters ``<``, ``/``, ``s``, ``>``, so no input can end generation early
  or pose as a task token. The ``words`` tokenizer reads such a word as ``<unk>``.
- Byte-level BPE round-trips every string: ``decode(encode(x)) == x``; the ``words``
  tokenizer every text of known words with single spaces between them.
- Tokenizers built here number their specials ``<pad>=0, <s>=1, </s>=2, <unk>=3``; task
  tokens come after the content vocabulary. Loaded files keep their own numbering (BART
  has ``<s>=0, <pad>=1``), which is why ids are always looked up by token string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from seqweave.errors import ConfigError
from seqweave.tokenizers.alphabets import (
    DNA_ALPHABET,
    NUMBER_ALPHABET,
    PROTEIN_ALPHABET,
    alphabet_tokenizer,
    dna_tokenizer,
    number_tokenizer,
    protein_tokenizer,
)
from seqweave.tokenizers.bpe import train_bpe
from seqweave.tokenizers.dna_bpe import train_dna_bpe
from seqweave.tokenizers.protein_tasks import protein_task_tokenizer
from seqweave.tokenizers.tokenizer import SPECIAL_TOKENS, TOKENIZER_FILE, Tokenizer
from seqweave.tokenizers.words import words_tokenizer


@dataclass(frozen=True)
class BuildRequest:
    """What a builder of TOKENIZERS is given: the training texts and vocabulary size (for
    the kinds that learn a vocabulary), the task tokens, and the alphabet (kind
    ``alphabet`` only)."""

    texts: Iterable[str] | None
    vocab_size: int
    task_tokens: Sequence[str]
    alphabet: str | None
    min_frequency: int = 2

    def training_texts(self, kind: str) -> Iterable[str]:
        if self.texts is None:
            raise ConfigError(f"tokenizer kind {kind!r} is built from texts, but none were given")
        return self.texts


Builder = Callable[[BuildRequest], Tokenizer]


def _build_bpe(request: BuildRequest) -> Tokenizer:
    texts = request.training_texts("bpe")
    return train_bpe(texts, request.vocab_size, request.min_frequency, request.task_tokens)


def _build_dna_bpe(request: BuildRequest) -> Tokenizer:
    texts = request.training_texts("dna_bpe")
    return train_dna_bpe(texts, request.vocab_size, request.min_frequency, request.task_tokens)


def _build_words(request: BuildRequest) -> Tokenizer:
    texts = request.training_texts("words")
    return words_tokenizer(texts, request.vocab_size, request.min_frequency, request.task_tokens)


def _build_alphabet(request: BuildRequest) -> Tokenizer:
    if not request.alphabet:
        raise ConfigError("tokenizer kind 'alphabet' needs an alphabet")
    return alphabet_tokenizer(request.alphabet, request.task_tokens)


def _fixed(builder: Callable[[Sequence[str]], Tokenizer]) -> Builder:
    """Adapt a builder with a fixed alphabet to the common signature of TOKENIZERS."""
    return lambda request: builder(request.task_tokens)


# kind -> builder; every builder takes the same request, so build_tokenizer just calls it.
TOKENIZERS: dict[str, Builder] = {
    "bpe": _build_bpe,
    "words": _build_words,
    "protein": _fixed(protein_tokenizer),
    "dna": _fixed(dna_tokenizer),
    "dna_bpe": _build_dna_bpe,
    "numbers": _fixed(number_tokenizer),
    "alphabet": _build_alphabet,
}


def build_tokenizer(
    kind: str,
    texts: Iterable[str] | None,
    vocab_size: int,
    task_tokens: Sequence[str],
    alphabet: str | None,
    min_frequency: int = 2,
) -> Tokenizer:
    """Build the tokenizer a config names; ``texts`` and ``min_frequency`` are used only by
    the kinds that learn a vocabulary (``bpe``, ``dna_bpe``, ``words``), ``alphabet`` only by
    ``alphabet``.

    Raises:
        ConfigError: unknown ``kind`` (the message lists the valid ones), or the arguments
            that kind needs are missing or invalid.
    """
    builder = TOKENIZERS.get(kind)
    if builder is None:
        raise ConfigError(f"unknown tokenizer kind {kind!r}; valid kinds: {sorted(TOKENIZERS)}")
    if alphabet is not None and kind != "alphabet":
        raise ConfigError(f"an alphabet is only used by tokenizer kind 'alphabet', not {kind!r}")
    return builder(BuildRequest(texts, vocab_size, task_tokens, alphabet, min_frequency))


__all__ = [
    "DNA_ALPHABET",
    "NUMBER_ALPHABET",
    "PROTEIN_ALPHABET",
    "SPECIAL_TOKENS",
    "TOKENIZERS",
    "TOKENIZER_FILE",
    "BuildRequest",
    "Builder",
    "Tokenizer",
    "alphabet_tokenizer",
    "build_tokenizer",
    "dna_tokenizer",
    "number_tokenizer",
    "protein_task_tokenizer",
    "protein_tokenizer",
    "train_bpe",
    "train_dna_bpe",
    "words_tokenizer",
]
