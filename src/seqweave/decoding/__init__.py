"""Decoders, all written against the decoder-state API.

``decode_batch`` runs one batch with the decoder named in a DecodeConfig (row-wise
decoders as one ``DecodeSession``); ``decode_many`` sorts any number of inputs by
length into batches and returns results in input order. ``registry.DECODER_SPECS``
says what each decoder is made of.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from seqweave.config import DecodeConfig
from seqweave.decoding.beam import beam_search
from seqweave.decoding.common import Generation, RowStats, length_budget, pad_batch
from seqweave.decoding.constraint import Constraint, require_constraint
from seqweave.decoding.loop import Event, RelaxedAcceptance, collect
from seqweave.decoding.registry import (
    DECODER_SPECS,
    DECODERS,
    DecoderSpec,
    check_decoder,
)
from seqweave.decoding.session import DecodeSession
from seqweave.errors import ConfigError
from seqweave.models.base import require_step
from seqweave.models.compiled import compile_decoder


@torch.inference_mode()
def decode_batch(
    model,
    sources: Sequence[Sequence[int]],
    cfg: DecodeConfig,
    draft_model=None,
    constraint: Constraint | None = None,
) -> list[Generation]:
    """Decode one batch of token-id sources with ``cfg.decoder``; ``constraint`` limits every
    step's tokens (``decoding/constraint.py``; ``cfg.constraint`` names one, built by the
    caller from the tokenizer with ``grammars.build_constraint``)."""
    spec = check_decoder(cfg.decoder, draft_model, cfg.relaxed_top)
    if cfg.compile:
        compile_decoder(model)  # once per network; refuses one it cannot compile
    if not spec.grouped:
        session = DecodeSession(model, cfg, draft_model, constraint=constraint)
        rows = session.admit(sources)
        return collect(_passes(session), [session.stats[row] for row in rows])
    require_step(model)  # beam search, the one grouped decoder, runs as its own batch
    require_constraint(cfg, constraint)
    src, src_lengths = pad_batch(sources, model.config.pad_id, model.device)
    memory = model.encode(src, src_lengths)
    budgets = length_budget(model, src_lengths, cfg.max_new_tokens)
    stats = [RowStats() for _ in sources]
    rules = (cfg.beam_size, cfg.length_penalty, cfg.early_stopping)
    outputs = beam_search(model, memory, budgets, stats, *rules, constraint, sources)
    for output, row_stats in zip(outputs, stats, strict=True):
        output.stats = row_stats
    return outputs


def _passes(session: DecodeSession) -> Iterator[list[Event]]:
    """A fresh session's passes to the end (its row ids are batch indices)."""
    while session:
        yield session.run_pass()


def decode_many(
    model,
    sources: Sequence[Sequence[int]],
    cfg: DecodeConfig,
    draft_model=None,
    constraint: Constraint | None = None,
) -> list[Generation]:
    """Decode all sources in batches of ``cfg.batch_size``, longest first, in input order."""
    if cfg.batch_size < 1:
        raise ConfigError(f"decode.batch_size must be >= 1, got {cfg.batch_size}")
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    results: list[Generation | None] = [None] * len(sources)
    for start in range(0, len(order), cfg.batch_size):
        chunk = order[start : start + cfg.batch_size]
        batch = [sources[i] for i in chunk]
        outputs = decode_batch(model, batch, cfg, draft_model, constraint)
        for i, output in zip(chunk, outputs, strict=True):
            results[i] = output
    return results  # type: ignore[return-value]


__all__ = [
    "DECODERS",
    "DECODER_SPECS",
    "Constraint",
    "DecodeSession",
    "DecoderSpec",
    "Event",
    "Generation",
    "RelaxedAcceptance",
    "RowStats",
    "decode_batch",
    "decode_many",
]
