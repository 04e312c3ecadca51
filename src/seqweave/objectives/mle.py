"""Maximum likelihood with label smoothing, summed over real target tokens."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def label_smoothed_nll(
    logits: Tensor, targets: Tensor, pad_id: int, smoothing: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Summed loss and summed NLL over non-pad targets.

    logits (B, T, V), targets (B, T). With smoothing eps the loss per token is
    (1 - eps) * NLL + eps * mean over the vocabulary of -log p (Szegedy et al. 2016).
    Sums (not means) let the caller normalise by the token count of a whole
    update, across gradient accumulation and data-parallel ranks.
    """
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    real = targets != pad_id
    nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    nll = nll.masked_fill(~real, 0.0).sum()
    if smoothing == 0.0:
        return nll, nll.detach()
    uniform = -logp.mean(dim=-1).masked_fill(~real, 0.0).sum()
    return (1.0 - smoothing) * nll + smoothing * uniform, nll.detach()
