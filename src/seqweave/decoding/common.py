"""Shared pieces of every decoder: padding a batch, per-row results and counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class RowStats:
    """Work one row cost: decoder passes it took part in, draft tokens proposed and accepted."""

    passes: int = 0
    drafted: int = 0
    accepted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"passes": self.passes, "drafted": self.drafted, "accepted": self.accepted}


@dataclass
class Generation:
    """One decoded row: tokens after the start token, without the end token."""

    tokens: list[int]
    finished: bool = False  # ended with the end token (not cut by the length limit)
    score: float | None = None  # beam search: length-normalised log-probability
    stats: RowStats = field(default_factory=RowStats)


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """Right-pad token lists -> ids (B, S) and lengths (B,)."""
    if not sequences:
        raise ValueError("cannot build a batch from no sequences")
    lengths = [len(s) for s in sequences]
    if min(lengths) == 0:
        raise ValueError("every sequence needs at least one token")
    ids = torch.full((len(sequences), max(lengths)), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return ids.to(device), torch.tensor(lengths, dtype=torch.long, device=device)


def length_budget(model, src_lengths: Tensor, max_new_tokens: int) -> list[int]:
    """Per row, how many tokens may be generated: ``max_new_tokens`` capped so that no
    position runs past the model's ``max_positions``."""
    cfg = model.config
    budgets = []
    for length in src_lengths.tolist():
        # the start token and all but the last generated token are fed at positions
        # 0 .. n - 1 (after the prefix, for a plain prefix LM)
        room = cfg.max_positions - (length if cfg.shares_positions else 0)
        budgets.append(max(0, min(max_new_tokens, room)))
    return budgets
