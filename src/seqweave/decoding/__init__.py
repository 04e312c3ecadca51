"""Decoders, all written against the decoder-state API.

``decode_batch`` runs one batch with the decoder named in a DecodeConfig;
``decode_many`` sorts any number of inputs by length into batches and returns
results in input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqweave.config import DecodeConfig
from seqweave.decoding.aggressive import SourceDrafter
from seqweave.decoding.beam import beam_search
from seqweave.decoding.common import Generation, RowStats, length_budget, pad_batch
from seqweave.decoding.generalized import BlockDrafter
from seqweave.decoding.loop import Event, RelaxedAcceptance, argmax_choice, collect, draft_verify
from seqweave.decoding.sampling import sampling_choice
from seqweave.decoding.speculative import ModelDrafter
from seqweave.errors import ConfigError
from seqweave.models.base import require_step

DECODERS = ("greedy", "beam", "sample", "iad", "spec", "gad")
DRAFTING = ("iad", "spec", "gad")  # draft and verify: exactly greedy's tokens unless relaxed


def check_decoder(name: str, draft_model=None, relaxed_top: int = 1) -> None:
    if name not in DECODERS:
        raise ConfigError(f"unknown decoder {name!r}; valid decoders: {', '.join(DECODERS)}")
    nar = draft_model is not None and draft_model.config.architecture == "nar_drafter"
    if name == "spec" and (draft_model is None or nar):
        raise ConfigError("decoder 'spec' needs an autoregressive draft model (--draft-model DIR)")
    if name == "gad" and not nar:
        raise ConfigError("decoder 'gad' needs a nar_drafter draft model (--draft-model DIR)")
    if relaxed_top < 1:
        raise ConfigError(f"decode.relaxed_top must be >= 1, got {relaxed_top}")
    if relaxed_top > 1 and name not in DRAFTING:
        raise ConfigError(
            f"relaxed acceptance needs a drafting decoder ({', '.join(DRAFTING)}), not {name!r}"
        )


def relaxed_acceptance(cfg: DecodeConfig) -> RelaxedAcceptance | None:
    """GAD++'s acceptance rule when ``relaxed_top`` > 1, else None (exact, lossless)."""
    if cfg.relaxed_top <= 1:
        return None
    return RelaxedAcceptance(cfg.relaxed_top, cfg.relaxed_gap)


def make_drafter(cfg: DecodeConfig, sources: Sequence[Sequence[int]], draft_model=None):
    """The drafter of an accelerated decoder, or None for plain decoding."""
    if cfg.decoder == "iad":
        return SourceDrafter(sources, cfg.draft_len, cfg.ngram, cfg.draft_tokens_per_pass)
    if cfg.decoder == "spec":
        return ModelDrafter(draft_model, sources, cfg.draft_k, cfg.max_draft_k)
    if cfg.decoder == "gad":
        return BlockDrafter(draft_model, sources, cfg.draft_tokens_per_pass)
    return None


@torch.inference_mode()
def decode_batch(
    model, sources: Sequence[Sequence[int]], cfg: DecodeConfig, draft_model=None
) -> list[Generation]:
    """Decode one batch of token-id sources with ``cfg.decoder``."""
    check_decoder(cfg.decoder, draft_model, cfg.relaxed_top)
    require_step(model)
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
    choose = argmax_choice
    if cfg.decoder == "sample":
        choose = sampling_choice(cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed)
    drafter = make_drafter(cfg, sources, draft_model)
    events = draft_verify(model, memory, budgets, stats, drafter, choose, relaxed_acceptance(cfg))
    return collect(events, stats)


def decode_many(
    model, sources: Sequence[Sequence[int]], cfg: DecodeConfig, draft_model=None
) -> list[Generation]:
    """Decode all sources in batches of ``cfg.batch_size``, longest first, in input order."""
    if cfg.batch_size < 1:
        raise ConfigError(f"decode.batch_size must be >= 1, got {cfg.batch_size}")
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    results: list[Generation | None] = [None] * len(sources)
    for start in range(0, len(order), cfg.batch_size):
        chunk = order[start : start + cfg.batch_size]
        batch = [sources[i] for i in chunk]
        for i, output in zip(chunk, decode_batch(model, batch, cfg, draft_model), strict=True):
            results[i] = output
    return results  # type: ignore[return-value]


__all__ = [
    "DECODERS",
    "Event",
    "Generation",
    "RelaxedAcceptance",
    "RowStats",
    "decode_batch",
    "decode_many",
]
