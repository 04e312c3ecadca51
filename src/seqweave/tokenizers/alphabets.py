"""One token per character: proteins, DNA, written numbers, or any alphabet a config names."""

from __future__ import annotations

from collections.abc import Sequence

import tokenizers
from tokenizers import decoders, models, normalizers

from seqweave.errors import ConfigError
from seqweave.tokenizers.tokenizer import SPECIAL_TOKENS, Tokenizer, with_specials

PROTEIN_ALPHABET = "ACDEFGHIKLMNPQRSTVWYX"
DNA_ALPHABET = "ACGTN"
# Digits, signs, decimal point, exponent markers of both cases, separators between numbers.
NUMBER_ALPHABET = "0123456789+-.eE ,;"


def alphabet_tokenizer(
    alphabet: str | Sequence[str],
    task_tokens: Sequence[str] = (),
    *,
    fold_case: bool = False,
) -> Tokenizer:
    """One token per character of ``alphabet``; any other character becomes ``<unk>``.

    Each unknown character is its own ``<unk>``, so token positions still line up with
    character positions. Every string over the alphabet round-trips. ``fold_case=True``
    reads lower-case letters as their upper-case alphabet letters (decode returns upper case).

    Raises:
        ConfigError: the alphabet is empty, repeats a symbol, or has a multi-character symbol.
    """
    symbols = _check_alphabet(alphabet)
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *symbols))}
    # BPE with no merges and no pre-tokenizer is a per-character lookup with an unk fallback.
    backend = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    if fold_case:
        backend.normalizer = _upper_case_normalizer(symbols)
    return with_specials(backend, task_tokens)


def protein_tokenizer(task_tokens: Sequence[str] = ()) -> Tokenizer:
    """The 20 standard amino acids and ``X``, upper case; lower case folds to upper case.

    Folding case because FASTA files mix cases without meaning a different residue. Other
    letters (``B``, ``Z``, ``U``, ``O``), gaps and stop symbols become ``<unk>``.
    """
    return alphabet_tokenizer(PROTEIN_ALPHABET, task_tokens, fold_case=True)


def dna_tokenizer(task_tokens: Sequence[str] = ()) -> Tokenizer:
    """``ACGTN``; lower case (soft-masked repeats in genome files) folds to upper case."""
    return alphabet_tokenizer(DNA_ALPHABET, task_tokens, fold_case=True)


def number_tokenizer(task_tokens: Sequence[str] = ()) -> Tokenizer:
    """Characters of written numbers and lists of them, so ``"1.5e-3, -2; 40"`` round-trips.

    Digit by digit, so a number's tokens never depend on BPE merges learned from other data.
    """
    return alphabet_tokenizer(NUMBER_ALPHABET, task_tokens)


def _check_alphabet(alphabet: str | Sequence[str]) -> list[str]:
    symbols = list(alphabet)
    if not symbols:
        raise ConfigError("the alphabet is empty")
    for symbol in symbols:
        if not isinstance(symbol, str) or len(symbol) != 1:
            raise ConfigError(f"alphabet symbols must be single characters, got {symbol!r}")
    repeated = sorted({s for s in symbols if symbols.count(s) > 1})
    if repeated:
        raise ConfigError(f"the alphabet repeats {repeated}")
    return symbols


def _upper_case_normalizer(symbols: Sequence[str]) -> normalizers.Normalizer:
    lower = [(s.lower(), s) for s in symbols if s.lower() != s and s.lower() not in symbols]
    return normalizers.Sequence([normalizers.Replace(low, up) for low, up in lower])
