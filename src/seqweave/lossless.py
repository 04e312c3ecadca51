"""What "lossless" means in numbers, for the tests and the benchmark alike.

An accelerated decoder must return greedy's tokens. Two decodes of the same input may
still differ where floating-point noise flips an argmax (a K-token pass and K single
steps round differently): at the first differing position the top-2 logit gap after
the reference prefix, from an uncached forward pass, must then be below
``TIE_TOLERANCE``. A larger gap is a real error.
"""

from __future__ import annotations

import torch

TIE_TOLERANCE = 1e-4


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The first position where ``a`` and ``b`` differ (the shorter length if one is a
    prefix of the other); None when they are equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


@torch.inference_mode()
def top2_gap(model, source: list[int], prefix: list[int]) -> float:
    """Gap between the two best logits after ``prefix``, computed without the cache."""
    device = model.device
    src = torch.tensor([source], device=device)
    tgt = torch.tensor([[model.config.decoder_start_id, *prefix]], device=device)
    logits = model(src, torch.tensor([len(source)], device=device), tgt)[0, -1]
    top = logits.float().topk(2).values
    return float(top[0] - top[1])
