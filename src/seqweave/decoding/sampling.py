"""Sampling: temperature, top-k and nucleus (top-p) filtering, seeded.

A sampler is a ``Chooser`` for the decode loop: logits (B, V) -> tokens (B,).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqweave.decoding.loop import Chooser


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set logits outside the top-k and outside the top-p nucleus to -inf; (B, V) -> (B, V).

    The nucleus is the smallest set of most likely tokens whose probability
    reaches ``top_p``; the most likely token always stays.
    """
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        outside = cumulative - ordered.softmax(dim=-1) >= top_p  # mass before this token
        outside[:, 0] = False
        drop = torch.zeros_like(outside).scatter(1, order, outside)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sampling_choice(
    temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None
) -> Chooser:
    """A seeded sampler; temperature 0 means greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    generators: dict[torch.device, torch.Generator] = {}

    def choose(logits: Tensor) -> Tensor:
        if temperature == 0:
            return logits.argmax(dim=-1)
        if logits.device not in generators:
            generator = torch.Generator(device=logits.device)
            generator.manual_seed(seed if seed is not None else torch.seed())
            generators[logits.device] = generator
        filtered = filter_logits(logits.float() / temperature, top_k, top_p)
        probs = filtered.softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=generators[logits.device])[:, 0]

    return choose
