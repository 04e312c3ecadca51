"""Byte-level BPE for text: every string round-trips, whatever its script."""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Sized

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from seqweave.errors import ConfigError
from seqweave.tokenizers.tokenizer import SPECIAL_TOKENS, Tokenizer, with_specials

_BYTE_LEVEL_MIN_VOCAB = len(SPECIAL_TOKENS) + 256


def train_bpe(
    texts: Iterable[str],
    vocab_size: int = 8000,
    min_frequency: int = 2,
    task_tokens: Sequence[str] = (),
) -> Tokenizer:
    """Train a byte-level BPE tokenizer on ``texts``.

    Byte level (all 256 bytes in the base alphabet, no normalizer, no prefix space) is what
    makes every string round-trip, whatever its script, emoji or whitespace. ``vocab_size``
    counts the specials, the 256 bytes and the learned merges; task tokens come on top.

    Raises:
        ConfigError: ``vocab_size`` cannot hold the specials and the 256 bytes.
    """
    if vocab_size < _BYTE_LEVEL_MIN_VOCAB:
        raise ConfigError(
            f"vocab_size={vocab_size} is too small for byte-level BPE: it needs at least "
            f"{_BYTE_LEVEL_MIN_VOCAB} (4 special tokens + 256 bytes)"
        )
    backend = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    length = len(texts) if isinstance(texts, Sized) else None
    backend.train_from_iterator(texts, trainer, length=length)
    return with_specials(backend, task_tokens)
