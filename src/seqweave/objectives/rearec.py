"""The next-item loss of the sasrec architecture, with ReaRec's ERL and PRL (Tang et al. 2025).

The model's pass gives one state per step, (B, K + 1, D): step 0 is SASRec's last-item
state, steps 1..K the latent reasoning steps (``models/sasrec.py``). Each step's state
scores the items through the tied item embedding; the target is the next item (the
first token of the example's target). Scores are over the whole vocabulary (full
softmax) or over the target and N shared uniform negatives (sampled softmax).

- mode ``off``: the cross-entropy of the readout the model ranks with (K = 0: SASRec).
- ``erl``: every step is trained to predict the item (the mean of the K + 1
  cross-entropies), and the item distributions of consecutive steps are pushed apart
  by a KL term, since the readout is their mean and an ensemble of equal members adds
  nothing.
- ``prl``: the last step ranks, so it gets the sharpest distribution; step k's
  cross-entropy is taken at temperature ``t * decay ** (K - k)``, softer the earlier
  the step. Two views of the reasoning states, each fed back with Gaussian noise, are
  pulled together per step against the batch's other users (InfoNCE), so that a step
  keeps its meaning under a perturbed input.

The functions below take plain tensors, so tests compare them with a hand reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.config import ReaRecConfig


def step_logits(weight: Tensor, steps: Tensor, targets: Tensor, negatives: int) -> tuple:
    """Scores of each step: (B, K + 1, V) over the vocabulary with the targets (B,) as
    they are, or with ``negatives`` > 0, (B, K + 1, 1 + N): the target's score first, then
    N uniformly drawn tokens shared by the batch (a draw equal to a row's target is masked
    out of that row), and targets all 0. ``weight`` is the tied item embedding (V, D)."""
    if negatives == 0:
        return steps @ weight.T, targets
    drawn = torch.randint(0, weight.shape[0], (negatives,), device=steps.device)  # (N,)
    positive = (steps * weight[targets][:, None, :]).sum(-1, keepdim=True)  # (B, K+1, 1)
    negative = steps @ weight[drawn].T  # (B, K+1, N)
    same = (drawn[None, :] == targets[:, None])[:, None, :]  # (B, 1, N)
    negative = negative.masked_fill(same, float("-inf"))
    return torch.cat([positive, negative], dim=-1), torch.zeros_like(targets)


def step_cross_entropies(logits: Tensor, targets: Tensor, temperatures: Tensor | None = None):
    """(B, K + 1, C) logits, (B,) targets -> (K + 1,) mean cross-entropy per step, each
    step's logits divided by its temperature (K + 1,) when given."""
    if temperatures is not None:
        logits = logits / temperatures[None, :, None]
    B, steps, C = logits.shape
    flat = F.cross_entropy(
        logits.reshape(B * steps, C).float(), targets.repeat_interleave(steps), reduction="none"
    )
    return flat.view(B, steps).mean(0)


def consecutive_kl(logits: Tensor) -> Tensor:
    """Mean over the batch and the K pairs of KL(p_k || p_{k+1}) between the softmax of
    consecutive steps' logits (B, K + 1, C); 0 when there is one step."""
    if logits.shape[1] < 2:
        return logits.new_zeros(())
    log_p = F.log_softmax(logits.float(), dim=-1)
    kl = (log_p[:, :-1].exp() * (log_p[:, :-1] - log_p[:, 1:])).sum(-1)  # (B, K)
    return kl.mean()


def prl_temperatures(steps: int, temperature: float, decay: float, device=None) -> Tensor:
    """(steps,) temperatures: the last step's is ``temperature``, each earlier one ``decay``
    times the next."""
    powers = torch.arange(steps - 1, -1, -1, dtype=torch.float32, device=device)
    return temperature * decay**powers


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Mean InfoNCE of two views (B, D): row i of ``a`` should pick row i of ``b`` among all
    rows of ``b`` by cosine similarity over ``temperature``."""
    similarity = F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T / temperature
    return F.cross_entropy(similarity, torch.arange(a.shape[0], device=a.device))


def reasoning_contrast(first: Tensor, second: Tensor, temperature: float) -> Tensor:
    """Mean over reasoning steps 1..K of the InfoNCE between two views (B, K + 1, D)."""
    terms = [info_nce(first[:, k], second[:, k], temperature) for k in range(1, first.shape[1])]
    return torch.stack(terms).mean()


def next_item_loss(
    weight: Tensor, steps: Tensor, views: list[Tensor], targets: Tensor, settings: ReaRecConfig
) -> Tensor:
    """The mean loss per example of one batch: step states (B, K + 1, D) (mode ``off``:
    the readout alone, (B, 1, D)), the noisy views (PRL's contrastive term), the next items
    (B,)."""
    mode = settings.mode
    logits, targets = step_logits(weight, steps, targets, settings.negatives)
    if mode == "prl":
        temperatures = prl_temperatures(
            steps.shape[1], settings.temperature, settings.temperature_decay, steps.device
        )
        loss = step_cross_entropies(logits, targets, temperatures).mean()
        if settings.contrastive_weight > 0:
            contrast = reasoning_contrast(*views, settings.contrastive_temperature)
            loss = loss + settings.contrastive_weight * contrast
        return loss
    loss = step_cross_entropies(logits, targets).mean()
    if mode == "erl" and settings.kl_weight > 0:
        loss = loss - settings.kl_weight * consecutive_kl(logits)
    return loss
