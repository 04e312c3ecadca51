"""The lossless check shared by decoding tests.

Two decodes of the same input may differ only where floating-point noise can
flip an argmax: at the first differing position, the top-2 logit gap of the
reference prefix (computed uncached) must be below ``TIE_TOLERANCE``.
"""

from __future__ import annotations

import torch

TIE_TOLERANCE = 1e-4


def first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


@torch.no_grad()
def top2_gap(model, source: list[int], prefix: list[int]) -> float:
    """Gap between the two best logits after ``prefix``, computed without the cache."""
    src = torch.tensor([source])
    tgt = torch.tensor([[model.config.decoder_start_id, *prefix]])
    logits = model(src, torch.tensor([len(source)]), tgt)[0, -1]
    top = logits.topk(2).values
    return float(top[0] - top[1])


def assert_lossless(model, source: list[int], reference: list[int], other: list[int]) -> bool:
    """Pass if equal; if not, demand a near-tie at the first difference. Returns True on a tie."""
    i = first_difference(reference, other)
    if i is None:
        return False
    gap = top2_gap(model, source, reference[:i])
    assert gap < TIE_TOLERANCE, (
        f"outputs differ at position {i} with a top-2 logit gap of {gap:.3g} "
        f"(>= {TIE_TOLERANCE}): {reference} vs {other}"
    )
    return True
