"""BPE over the DNA alphabet, learned on reads, as METAGENE-1 tokenizes metagenomic reads.

One base per token (``dna``) spends a model's context and compute on 1 bp per
position; byte-level BPE (``bpe``) would learn merges over bytes that never
occur. Here the base alphabet is exactly ``ACGTN`` and each read is one "word"
(no pre-tokenizer: a read has no spaces to split at), so merges are the k-mers
that recur across reads, and a motif planted many times becomes one or a few
tokens. Lower case (soft-masked repeats) folds to upper case; any other
character becomes its own ``<unk>``. Every upper-case string over ``ACGTN``
round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Sized

import tokenizers
from tokenizers import decoders, models, normalizers, trainers

from seqweave.errors import ConfigError
from seqweave.tokenizers.alphabets import DNA_ALPHABET
from seqweave.tokenizers.tokenizer import SPECIAL_TOKENS, Tokenizer, with_specials

_MIN_VOCAB = len(SPECIAL_TOKENS) + len(DNA_ALPHABET)


def train_dna_bpe(
    reads: Iterable[str],
    vocab_size: int = 1024,
    min_frequency: int = 2,
    task_tokens: Sequence[str] = (),
    max_token_length: int = 0,
) -> Tokenizer:
    """Learn BPE merges over ``ACGTN`` from ``reads``.

    ``vocab_size`` counts the 4 specials, the 5 bases and the merges; task tokens come on
    top. ``max_token_length`` (0: no limit) caps the bases in one token. Reads are
    upper-cased before training, as encode does.

    Raises:
        ConfigError: ``vocab_size`` cannot hold the specials and the five bases.
    """
    if vocab_size < _MIN_VOCAB:
        raise ConfigError(
            f"vocab_size={vocab_size} is too small for dna_bpe: it needs at least {_MIN_VOCAB} "
            f"({len(SPECIAL_TOKENS)} special tokens + the bases {DNA_ALPHABET})"
        )
    backend = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Replace(base.lower(), base) for base in DNA_ALPHABET]
    )
    backend.decoder = decoders.Fuse()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=list(DNA_ALPHABET),
        limit_alphabet=len(DNA_ALPHABET),
        max_token_length=max_token_length or None,
        show_progress=False,
    )
    reads = reads if isinstance(reads, Sized) else list(reads)
    backend.train_from_iterator(reads, trainer, length=len(reads))
    return with_specials(backend, task_tokens)


def bases_per_token(tokenizer: Tokenizer, reads: Sequence[str]) -> float:
    """Mean base pairs per token over ``reads``: the compression the merges buy."""
    tokens = sum(len(ids) for ids in tokenizer.encode_batch(list(reads)))
    return sum(len(read) for read in reads) / max(tokens, 1)
