"""Decoders, all written against the decoder-state API.

``decode_batch`` runs one batch with the decoder named in a DecodeConfig;
``decode_many`` sorts any number of inputs by length into batches and returns
results in input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqweave.config import DecodeConfig
from seqweave.decoding.beam import beam_search
from seqweave.decoding.common import Generation, RowStats, length_budget, pad_batch
from seqweave.decoding.loop import Event, collect, draft_verify
from seqweave.decoding.sampling import sampling_choice
from seqweave.errors import ConfigError

DECODERS = ("greedy", "beam", "sample")


def check_decoder(name: str) -> None:
    if name not in DECODERS:
        raise ConfigError(f"unknown decoder {name!r}; valid decoders: {', '.join(DECODERS)}")


@torch.inference_mode()
def decode_batch(model, sources: Sequence[Sequence[int]], cfg: DecodeConfig) -> list[Generation]:
    """Decode one batch of token-id sources with ``cfg.decoder``."""
    check_decoder(cfg.decoder)
    src, src_lengths = pad_batch(sources, model.config.pad_id, model.device)
    memory = model.encode(src, src_lengths)
    budgets = length_budget(model, src_lengths, cfg.max_new_tokens)
    stats = [RowStats() for _ in sources]
    if cfg.decoder == "beam":
        outputs = beam_search(
            model, memory, budgets, stats, cfg.beam_size, cfg.length_penalty, cfg.early_stopping
        )
        for output, row_stats in zip(outputs, stats, strict=True):
            output.stats = row_stats
        return outputs
    choose = None
    if cfg.decoder == "sample":
        choose = sampling_choice(cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed)
    events = draft_verify(model, memory, budgets, stats, **({"choose": choose} if choose else {}))
    return collect(events, stats)


def decode_many(model, sources: Sequence[Sequence[int]], cfg: DecodeConfig) -> list[Generation]:
    """Decode all sources in batches of ``cfg.batch_size``, longest first, in input order."""
    if cfg.batch_size < 1:
        raise ConfigError(f"decode.batch_size must be >= 1, got {cfg.batch_size}")
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    results: list[Generation | None] = [None] * len(sources)
    for start in range(0, len(order), cfg.batch_size):
        chunk = order[start : start + cfg.batch_size]
        for i, output in zip(
            chunk, decode_batch(model, [sources[i] for i in chunk], cfg), strict=True
        ):
            results[i] = output
    return results  # type: ignore[return-value]


__all__ = [
    "DECODERS",
    "Event",
    "Generation",
    "RowStats",
    "decode_batch",
    "decode_many",
]
