"""Constrained decoding: a per-step allowed-token function, applied before every choice.

A ``Constraint`` says, for a row's source and the tokens it has generated so far, which
tokens may come next. The decoders apply it to the logits before anything reads them
(argmax, verification, sampling, beam scores): disallowed tokens get ``-inf``. In the
draft-verify pass the mask of draft position j is the one for the row's tokens plus the
first j draft tokens, so a draft token the constraint forbids can never equal the masked
argmax and is rejected there; the accepted tokens are therefore exactly constrained
greedy's, whatever the drafter proposes (drafters themselves stay unconstrained).

An empty allowed set would leave nothing to choose; it is read as "end here" (eos alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from seqweave.errors import ConfigError


class Constraint(Protocol):
    """Which tokens may follow ``generated`` (the row's tokens after the start token) for a
    row whose framed source ids are ``source``: token ids, a (V,) bool mask, or None for
    any token."""

    def allowed(
        self, source: Sequence[int], generated: Sequence[int]
    ) -> Sequence[int] | Tensor | None: ...


def allowed_row(
    constraint: Constraint, source: Sequence[int], generated: Sequence[int], vocab: int, eos: int
) -> Tensor:
    """The constraint's answer as a (V,) bool mask (an empty answer allows eos alone)."""
    answer = constraint.allowed(source, generated)
    if answer is None:
        return torch.ones(vocab, dtype=torch.bool)
    if isinstance(answer, Tensor) and answer.dtype == torch.bool:
        mask = answer.to("cpu").clone()
    else:
        mask = torch.zeros(vocab, dtype=torch.bool)
        mask[torch.as_tensor(list(answer), dtype=torch.long)] = True
    if not mask.any():
        mask[eos] = True
    return mask


def draft_masks(
    rows: Sequence[tuple[Constraint | None, Sequence[int], list[int], list[int]]],
    width: int,
    vocab: int,
    eos: int,
) -> Tensor | None:
    """Allowed tokens (B, width, V) for one draft-verify pass; None when no row is constrained.

    ``rows[b]`` is (constraint or None, source, generated, draft); position j of row b holds
    the mask after ``generated + draft[:j]``. Positions after a draft token that is
    forbidden (or is eos) are never read, so they stay all True and cost nothing.
    """
    if all(constraint is None for constraint, *_ in rows):
        return None
    masks = torch.ones(len(rows), width, vocab, dtype=torch.bool)
    for b, (constraint, source, generated, draft) in enumerate(rows):
        if constraint is None:
            continue
        for j in range(len(draft) + 1):
            mask = allowed_row(constraint, source, [*generated, *draft[:j]], vocab, eos)
            masks[b, j] = mask
            if j == len(draft) or not mask[draft[j]] or draft[j] == eos:
                break
    return masks


def apply_mask(logits: Tensor, allowed: Tensor | None) -> Tensor:
    """logits (B, K, V) with disallowed tokens at -inf; ``allowed`` (B, >=K, V) or None."""
    if allowed is None:
        return logits
    allowed = allowed[:, : logits.shape[1]].to(logits.device)
    return logits.masked_fill(~allowed, float("-inf"))


def require_constraint(settings, constraint: Constraint | None) -> None:
    """A grammar named in the settings is built from the tokenizer by the caller
    (``decoding.grammars.build_constraint``); decoding without it would ignore it silently."""
    if getattr(settings, "constraint", "") and constraint is None:
        raise ConfigError(
            f"decode.constraint={settings.constraint!r} needs the tokenizer's ids: build it "
            "with seqweave.decoding.grammars.build_constraint (seqweave.load does)"
        )
