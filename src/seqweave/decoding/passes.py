"""What one session pass gathers from its rows before ``loop.advance``: each cohort's
drafts, the constrained rows' allowed tokens and the chooser of the whole batch.

Every function takes the state's rows (``decoding/rows.py``) and the live cohorts with
their rows' state positions, and returns per-row values in state order, the order
``advance`` verifies them in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqweave.decoding.constraint import draft_masks
from seqweave.decoding.loop import Chooser, argmax_choice
from seqweave.decoding.rows import Cohort, Row


def propose(rows: list[Row], cohorts: list[tuple[Cohort, list[int]]]) -> list[list[int]]:
    """Each row's draft from its cohort's drafter (empty for rows without one); a row may
    use at most its remaining budget less the model's own next token."""
    drafts: list[list[int]] = [[] for _ in rows]
    for cohort, positions in cohorts:
        if cohort.drafter is None:
            continue
        members = [rows[i] for i in positions]
        proposed = cohort.drafter.propose(
            [row.index for row in members],
            [row.generated for row in members],
            [row.budget - len(row.generated) - 1 for row in members],
        )
        for i, draft in zip(positions, proposed, strict=True):
            drafts[i] = draft
    return drafts


def allowed_tokens(
    rows: list[Row], drafts: list[list[int]], vocab_size: int, eos_id: int
) -> Tensor | None:
    """The allowed tokens of this pass, (B, 1 + K, V), or None when no row is constrained."""
    if all(row.constraint is None for row in rows):
        return None
    width = 1 + max(map(len, drafts), default=0)
    found = [
        (None if row.parked else row.constraint, row.source, row.generated, draft)
        for row, draft in zip(rows, drafts, strict=True)
    ]
    return draft_masks(found, width, vocab_size, eos_id)


def batch_chooser(cohorts: list[tuple[Cohort, list[int]]], device: torch.device) -> Chooser:
    """Argmax, except for the rows of cohorts with their own chooser (sampling, a beam
    group): each such cohort chooses for its rows in one call, as it would alone."""
    choosing = [
        (cohort, torch.tensor(positions, dtype=torch.long, device=device))
        for cohort, positions in cohorts
        if cohort.chooser is not None
    ]
    if not choosing:
        return argmax_choice

    def choose(logits: Tensor) -> Tensor:  # (B, V) -> (B,)
        tokens = logits.argmax(dim=-1)
        for cohort, index in choosing:
            tokens[index] = cohort.chooser(logits.index_select(0, index))
        return tokens

    return choose
