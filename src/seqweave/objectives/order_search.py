"""Training on output sets by searching over orders (Vinyals et al. 2016, section 5).

A set written as a sequence has many orders, and the order chosen for
training matters. The paper's remedy is to let the model pick: maximise
``max_pi log p(Y_pi | X)`` over the orders ``pi`` of the target set. Searching
all ``K!`` orders is too much for large sets, so it is approximated in two
stages:

1. **pretrain**: average the loss over orders drawn uniformly (every order is
   trained, none preferred), so the model's own distribution over orders
   becomes meaningful;
2. **search**: draw orders from the model itself (pointing only at elements of
   the target set) and train on the most probable one.

When ``K!`` is at most the number of samples, both stages use every order
exactly (the uniform average and the true maximum).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from seqweave.errors import ConfigError


def _candidate_orders(
    model, x: Tensor, targets: Tensor, mode: str, samples: int, generator
) -> Tensor:
    """(B, S, K) orders of each row's target set to score."""
    B, K = targets.shape
    if math.factorial(K) <= samples:
        perms = torch.tensor(list(itertools.permutations(range(K))), device=targets.device)
        return targets[:, perms]  # (B, K!, K)
    if mode == "pretrain":
        keys = torch.rand(B, samples, K, generator=generator, device=targets.device)
        return targets.gather(1, keys.argsort(-1).flatten(1)).view(B, samples, K)
    allowed = torch.zeros(B, x.shape[1], dtype=torch.bool, device=x.device)
    allowed.scatter_(1, targets, True)
    drawn = [model.sample(x, K, allowed=allowed, generator=generator) for _ in range(samples)]
    return torch.stack(drawn, dim=1)


def order_search_loss(
    model,
    x: Tensor,
    targets: Tensor,
    mode: str = "search",
    samples: int = 8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean per-step negative log-likelihood of a target set under the order-search rule.

    ``model`` is a ``SetPointerNetwork``; ``x`` (B, N, D) its inputs and
    ``targets`` (B, K) the input indices forming each row's output set, listed in
    any order. ``mode`` is ``pretrain`` (uniform average over orders) or ``search``
    (the most probable of the model's own samples).
    """
    if mode not in ("pretrain", "search"):
        raise ConfigError(f"order search mode={mode!r} is not one of pretrain, search")
    if samples < 1:
        raise ConfigError(f"order search needs at least one sample, got {samples}")
    B, K = targets.shape
    orders = _candidate_orders(model, x, targets, mode, samples, generator)
    S = orders.shape[1]
    repeated = x.repeat_interleave(S, dim=0)
    log_probs = model.order_log_prob(repeated, orders.flatten(0, 1)).view(B, S)
    if mode == "pretrain":
        return -log_probs.mean() / K
    return -log_probs.max(dim=1).values.mean() / K
