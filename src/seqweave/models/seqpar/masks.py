"""Which keys a block of queries may see, from global positions.

A rank's queries are positions ``q_start .. q_start + Tq - 1`` of the whole sequence
and a block of keys is ``k_start .. k_start + Tk - 1``; the key-padding mask is the
gathered one of the whole key sequence. Masked scores are set to the dtype's lowest
finite value rather than -inf, so a block in which a row sees no key gives weight
exactly 0 after the log-sum-exp merge instead of NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor


def block_mask(
    key_mask: Tensor | None, causal: bool, q_start: int, Tq: int, k_start: int, Tk: int, device
) -> Tensor | None:
    """(B or 1, 1, Tq, Tk) bool, True where the query may attend; None: all."""
    mask = None
    if key_mask is not None:
        mask = key_mask[:, None, None, k_start : k_start + Tk]  # (B, 1, 1, Tk)
    if causal:
        q = torch.arange(q_start, q_start + Tq, device=device)
        k = torch.arange(k_start, k_start + Tk, device=device)
        allowed = (k[None, :] <= q[:, None])[None, None]  # (1, 1, Tq, Tk)
        mask = allowed if mask is None else mask & allowed
    return mask


def fully_masked(causal: bool, q_start: int, Tq: int, k_start: int) -> bool:
    """True when causality hides the whole key block from every query of the shard."""
    return causal and k_start > q_start + Tq - 1


def masked_scores(q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
    """Scaled scores q k^T (B, H, Tq, Tk), masked entries at the dtype's lowest value."""
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores
