"""CLAPS: contrastive learning with adversarial perturbations (Lee, Lee and Hwang, ICLR 2021).

Maximum likelihood teaches a model only which target is right, never how far
wrong ones are. CLAPS adds a contrastive loss between the source and the target
in a shared space: z_x is the projection of the mean encoder state, z_y that of
the mean teacher-forced decoder state (the model's ``contrastive_head``, affine
+ ReLU, shared by both). Random other targets are easy negatives, so two
perturbations of the decoder states H make hard examples:

- the **imposter** H + eps * g / |g|, g the gradient of the target's NLL with
  respect to H: close to the target in representation, but less likely (a
  hard negative);
- the **distant target** H + zeta: zeta first goes eta * g' / |g'| up the
  contrastive loss (g' its gradient with respect to H: away from z_x), then one
  normalised step of the same size down KL(p(y | H) || p(y | H + zeta)), and is
  finally halved per sentence (at most ``HALVINGS`` times, then dropped) until
  that KL, averaged over the sentence's tokens, is at most ``kl_bound``: far
  from the source, yet with nearly the target's output distribution (a hard
  positive).

The loss per sentence is the mean of two InfoNCE terms over cosine similarities
divided by a temperature, one with the target and one with the distant target
as the positive, each against the batch's other targets and every imposter; plus
KL(p(y | H) || p(y | H + zeta)) per token, the reference detached. Perturbations
are constants (no gradient through their directions), as in adversarial
training. The norms are over a sentence's real positions (T x D).

These are the recalled shape of the paper's method; the restoration step (one
KL step, then halving to a stated bound), the two-term InfoNCE and the detached
KL reference are this module's choices, and are stated in recipes/claps/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.models.state import Memory
from seqweave.objectives.settings import ClapsConfig

HALVINGS = 3  # of the distant target's perturbation before it is dropped for a sentence


def pool(states: Tensor, real: Tensor) -> Tensor:
    """Mean of states (B, T, D) over real positions real (B, T) -> (B, D)."""
    weights = real.to(states.dtype)[..., None]  # (B, T, 1)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def sequence_nll(model, hidden: Tensor, targets: Tensor, pad_id: int) -> Tensor:
    """Summed NLL per sentence (B,) of targets (B, T) under decoder states hidden (B, T, D)."""
    logp = F.log_softmax(model.logits(hidden).float(), dim=-1)  # (B, T, V)
    nll = -logp.gather(-1, targets[..., None])[..., 0]  # (B, T)
    return nll.masked_fill(targets == pad_id, 0.0).sum(1)


def token_kl(model, reference: Tensor, hidden: Tensor, real: Tensor) -> Tensor:
    """KL(reference || p(. | hidden)) per token (B, T), 0 at pad positions.

    reference (B, T, V) log-probabilities, hidden (B, T, D), real (B, T).
    """
    logp = F.log_softmax(model.logits(hidden).float(), dim=-1)  # (B, T, V)
    return (reference.exp() * (reference - logp)).sum(-1).masked_fill(~real, 0.0)


def sequence_kl(model, reference: Tensor, hidden: Tensor, real: Tensor) -> Tensor:
    """Mean KL(reference || p(. | hidden)) per real token of each sentence (B,)."""
    return token_kl(model, reference, hidden, real).sum(1) / real.sum(1).clamp(min=1)


def _unit(direction: Tensor, real: Tensor) -> Tensor:
    """direction (B, T, D) with pad positions zeroed, scaled to unit norm per sentence."""
    direction = direction.masked_fill(~real[..., None], 0.0)
    norm = direction.flatten(1).norm(dim=1).clamp(min=1e-12)  # (B,)
    return direction / norm[:, None, None]


def contrastive_loss(
    z_x: Tensor,
    positive: Tensor,
    targets: Tensor,
    imposters: Tensor | None,
    temperature: float,
) -> Tensor:
    """Mean InfoNCE over sentences: row i's ``positive`` against the other rows' ``targets``
    and every row's imposter, scored by cosine similarity over ``temperature``.

    All inputs (B, P); ``positive`` may be ``targets`` itself (the plain in-batch loss).
    """
    z_x = F.normalize(z_x.float(), dim=-1)
    scores = z_x @ F.normalize(targets.float(), dim=-1).T  # (B, B)
    own = (z_x * F.normalize(positive.float(), dim=-1)).sum(-1)  # (B,)
    diagonal = torch.eye(len(z_x), dtype=torch.bool, device=z_x.device)
    scores = torch.where(diagonal, own[:, None], scores)
    if imposters is not None:
        scores = torch.cat([scores, z_x @ F.normalize(imposters.float(), dim=-1).T], dim=1)
    labels = torch.arange(len(z_x), device=z_x.device)
    return F.cross_entropy(scores / temperature, labels)


def imposter(model, hidden: Tensor, targets: Tensor, pad_id: int, eps: float) -> Tensor:
    """The imposter of decoder states hidden (B, T, D): eps along the normalised gradient
    of each sentence's NLL, so the target becomes less likely. The step is a constant;
    gradients reach ``hidden`` through the sum."""
    start = hidden.detach().requires_grad_()
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(sequence_nll(model, start, targets, pad_id).sum(), start)
    return hidden + eps * _unit(gradient, targets != pad_id).to(hidden.dtype)


def distant_target(
    model,
    hidden: Tensor,
    z_x: Tensor,
    real: Tensor,
    eta: float,
    kl_bound: float,
    temperature: float,
    reference: Tensor | None = None,
) -> Tensor:
    """The distant target of decoder states hidden (B, T, D) for sources projected to z_x
    (B, P): a constant perturbation of size about eta away from z_x, shrunk per sentence
    until its mean KL per token from the original output distribution (``reference``,
    log-probabilities (B, T, V), computed from ``hidden`` when not given) is <= kl_bound."""
    base = hidden.detach()
    if reference is None:
        with torch.no_grad():
            reference = F.log_softmax(model.logits(base).float(), dim=-1)  # (B, T, V)
    head = model.contrastive_head
    with torch.enable_grad():
        start = base.clone().requires_grad_()
        z_y = head(pool(start, real))
        loss = contrastive_loss(z_x.detach(), z_y, z_y, None, temperature)
        (away,) = torch.autograd.grad(loss, start)
        zeta = (eta * _unit(away, real)).requires_grad_()
        kl = sequence_kl(model, reference, base + zeta, real)
        (back,) = torch.autograd.grad(kl.sum(), zeta)
    zeta = (zeta - eta * _unit(back, real)).detach()
    scale = torch.ones(len(base), device=base.device)
    with torch.no_grad():
        for attempt in range(HALVINGS + 1):
            kl = sequence_kl(model, reference, base + scale[:, None, None] * zeta, real)
            over = kl > kl_bound
            if not bool(over.any()):
                break
            shrunk = scale / 2 if attempt < HALVINGS else torch.zeros_like(scale)
            scale = torch.where(over, shrunk, scale)
    return hidden + (scale[:, None, None] * zeta).to(hidden.dtype)


def claps_loss(
    model,
    memory: Memory,
    hidden: Tensor,
    logits: Tensor,
    targets: Tensor,
    pad_id: int,
    cfg: ClapsConfig,
) -> Tensor:
    """CLAPS's auxiliary loss of one batch: mean contrastive loss per sentence plus mean KL
    per target token between the original and the distant target's distributions.

    memory: the encoder's ``Memory``; hidden (B, T, D) teacher-forced decoder states and
    logits (B, T, V) their logits; targets (B, T) the decoder outputs; cfg: the
    ``[objectives.claps]`` settings.
    """
    head = model.contrastive_head
    real = targets != pad_id  # (B, T)
    reference = F.log_softmax(logits.detach().float(), dim=-1)  # (B, T, V)
    z_x = head(pool(memory.states, memory.mask))  # (B, P)
    z_y = head(pool(hidden, real))
    fake = imposter(model, hidden, targets, pad_id, cfg.imposter_eps)
    far = distant_target(
        model,
        hidden,
        z_x,
        real,
        cfg.distant_eta,
        cfg.kl_bound,
        cfg.temperature,
        reference,
    )
    z_fake, z_far = head(pool(fake, real)), head(pool(far, real))
    tau = cfg.temperature
    contrast = 0.5 * (
        contrastive_loss(z_x, z_y, z_y, z_fake, tau)
        + contrastive_loss(z_x, z_far, z_y, z_fake, tau)
    )
    kl = token_kl(model, reference, far, real)  # (B, T)
    return contrast + kl.sum() / real.sum().clamp(min=1)


@dataclass(frozen=True)
class Claps:
    """CLAPS as an additive objective (``seqweave.objectives.registry``): its loss per
    target token, weighted, from the token loss's own teacher-forced pass."""

    settings: ClapsConfig
    pad_id: int
    needs_states: ClassVar[bool] = True

    def terms(self, model, micro, forward) -> dict[str, Tensor]:
        extra = claps_loss(
            model,
            forward.memory,
            forward.hidden,
            forward.logits,
            micro.tgt_out,
            self.pad_id,
            self.settings,
        )
        return {"claps": self.settings.weight * extra * micro.num_tokens}
