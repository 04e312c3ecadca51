"""How token ids are framed for a model: one definition for training and generation."""

from __future__ import annotations

from seqweave.config import ModelConfig


def frame_source(ids: list[int], cfg: ModelConfig, limit: int | None = None) -> list[int]:
    """``[bos]`` (if the model was trained so) + ids + ``[eos]``; with ``limit``, the text ids
    are cut so that the framed source has at most ``limit`` tokens."""
    head = [cfg.bos_id] if cfg.source_bos else []
    if limit is not None:
        ids = ids[: max(0, limit - len(head) - 1)]
    return head + ids + [cfg.eos_id]


def max_source_tokens(cfg: ModelConfig) -> int:
    """The longest framed source the model's positions allow (a prefix LM keeps room for
    at least one target position)."""
    return cfg.max_positions - 1 if cfg.shares_positions else cfg.max_positions
