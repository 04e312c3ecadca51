"""Next-item recommendation: the target's rank, HR@k and NDCG@k, full or sampled ranking.

Two protocols, reported side by side and never mixed:

- **full ranking**: the target against every item, minus those excluded (the special
  tokens, and the user's history: in MovieLens a movie is rated once);
- **sampled**: the target against ``n`` negatives (100 by custom) drawn uniformly from
  the items the user has not interacted with, seeded per user, so every method is
  ranked against the same negatives.

A rank is 1 + the number of candidates scored above the target + the number scored
*equal* to it: ties count against the target, so a method that scores many items
alike (popularity, counts) gets no credit for the luck of a tie-break. A target that
is no item of the vocabulary (never seen in training) has rank infinity: a miss for
every method, still counted in the denominator.

HR@k is the share of users with rank <= k; NDCG@k with one relevant item is
``1 / log2(rank + 1)`` for rank <= k, else 0, averaged over users.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
from torch import Tensor

MISSING = -1  # a target with no item id


def full_ranks(scores: Tensor, targets: Tensor, excluded: Tensor | None = None) -> Tensor:
    """(B, C) scores, (B,) target indices (``MISSING`` for none), (B, C) bool excluded
    candidates -> (B,) float ranks (inf for a missing target). The target is never
    excluded from its own row."""
    rows = torch.arange(scores.shape[0], device=scores.device)
    known = targets >= 0
    safe = targets.clamp(min=0)
    target_score = scores[rows, safe][:, None]  # (B, 1)
    competing = scores >= target_score  # (B, C), the target itself included
    if excluded is not None:
        competing &= ~excluded
    competing[rows, safe] = False
    ranks = 1.0 + competing.sum(1).float()
    return torch.where(known, ranks, torch.full_like(ranks, math.inf))


def sampled_ranks(scores: Tensor, targets: Tensor, negatives: Tensor) -> Tensor:
    """(B, C) scores, (B,) targets, (B, n) negative indices -> (B,) rank among 1 + n."""
    rows = torch.arange(scores.shape[0], device=scores.device)
    target_score = scores[rows, targets.clamp(min=0)][:, None]
    ranks = 1.0 + (scores.gather(1, negatives) >= target_score).sum(1).float()
    return torch.where(targets >= 0, ranks, torch.full_like(ranks, math.inf))


def sample_negatives(
    candidates: Sequence[int], interacted: set[int], n: int, seed: int, key: object
) -> list[int]:
    """``n`` distinct candidates the user has not interacted with (history and target),
    drawn uniformly with a generator seeded by ``seed`` and the user's ``key``, so every
    method meets the same negatives."""
    generator = random.Random(f"{seed}:{key}")
    chosen: list[int] = []
    taken = set(interacted)
    pool_size = len(candidates)
    if pool_size - len(taken & set(candidates)) < n:
        raise ValueError(f"fewer than {n} items left to sample negatives from")
    while len(chosen) < n:
        item = candidates[generator.randrange(pool_size)]
        if item not in taken:
            taken.add(item)
            chosen.append(item)
    return chosen


def hit_rate(ranks: Tensor, k: int = 10) -> float:
    """Share of ranks <= k."""
    return float((ranks <= k).float().mean())


def ndcg(ranks: Tensor, k: int = 10) -> float:
    """Mean of 1 / log2(rank + 1) over ranks <= k (0 beyond)."""
    gains = torch.where(ranks <= k, 1.0 / torch.log2(ranks.clamp(max=1e9) + 1.0), 0.0)
    return float(gains.mean())


def ranking_figures(
    full: Tensor, sampled: Tensor | None, k: int = 10, negatives: int = 100
) -> dict:
    """HR@k and NDCG@k under both protocols (full only without ``sampled``), under names
    that say which."""
    figures = {f"full_hr@{k}": hit_rate(full, k), f"full_ndcg@{k}": ndcg(full, k)}
    if sampled is not None:
        figures[f"sampled{negatives}_hr@{k}"] = hit_rate(sampled, k)
        figures[f"sampled{negatives}_ndcg@{k}"] = ndcg(sampled, k)
    return {**figures, "users": int(full.shape[0])}


def oracle_best_step(step_ranks: Tensor, k: int = 10) -> dict:
    """ReaRec's oracle analysis: (B, K + 1) each user's rank under each step's scores ->
    HR@k and NDCG@k when every user is ranked by their own best step (an upper bound no
    real readout reaches), each step's own figures, and, among the users the oracle puts in
    the top k, how often each step is their best (the first one on a tie)."""
    best = step_ranks.min(dim=1)
    steps = step_ranks.shape[1]
    hits = best.values <= k
    counts = torch.bincount(best.indices[hits], minlength=steps)
    return {
        f"oracle_hr@{k}": hit_rate(best.values, k),
        f"oracle_ndcg@{k}": ndcg(best.values, k),
        f"step_hr@{k}": [hit_rate(step_ranks[:, s], k) for s in range(steps)],
        f"step_ndcg@{k}": [ndcg(step_ranks[:, s], k) for s in range(steps)],
        f"best_step_share_of_oracle_hits@{k}": [float(c) / max(int(hits.sum()), 1) for c in counts],
    }
