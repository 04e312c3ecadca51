"""SeqPE's two auxiliary objectives on the position encoder (Li et al. 2025).

The token loss only trains the positions that the training data reaches. These
objectives shape the rest, by sampling positions directly:

- **Contrastive distance** (InfoNCE): for each sampled anchor position, among
  ``CANDIDATES`` other sampled positions the nearest one is the positive and
  the rest are negatives; the score is cosine similarity over ``TEMPERATURE``.
  Anchors and candidates are drawn uniformly from ``0 .. max_position``, so the
  ordering is enforced beyond the training length too.
- **Out-of-distribution distillation**: a window of in-distribution positions
  ``s, s + g, .., s + (W - 1) g`` (random start s and stride g inside the
  positions the batch trains) is the teacher; the same window shifted by a
  random offset so that it lies in ``train length .. max_position`` is the
  student. Each position's softmax over its cosine similarities to the other
  positions of the window (an attention pattern over positions) is distilled
  from teacher to student with KL(teacher || student); the teacher is detached.
  A model whose similarities depend only on distance (sinusoidal vectors) has
  loss 0.

Both are the recalled shape of the paper's objectives; the sampling sizes and the
temperature are this module's choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.models.seqpe import SequentialPositions
from seqweave.objectives.settings import SeqPEConfig

TEMPERATURE = 0.1
ANCHORS = 32  # contrastive anchors per update and position encoder
CANDIDATES = 16  # positions each anchor is compared with
WINDOWS = 8  # distillation windows per update and position encoder
WINDOW = 16  # positions per window


def cosine_logits(left: Tensor, right: Tensor) -> Tensor:
    """(..., N, D) x (..., M, D) -> (..., N, M) cosine similarities over TEMPERATURE."""
    return F.normalize(left, dim=-1) @ F.normalize(right, dim=-1).transpose(-1, -2) / TEMPERATURE


def contrastive_distance_loss(anchors: Tensor, candidates: Tensor, distances: Tensor) -> Tensor:
    """Mean InfoNCE loss where each anchor's nearest candidate is the positive.

    anchors (N, D), candidates (N, M, D), distances (N, M) from anchor to candidate.
    """
    logits = cosine_logits(anchors[:, None], candidates).squeeze(1)  # (N, M)
    return F.cross_entropy(logits.float(), distances.argmin(dim=1))


def similarity_distillation_loss(teacher: Tensor, student: Tensor) -> Tensor:
    """Mean KL(teacher || student) between each position's softmax over its similarities to
    the other positions of its window.

    teacher, student (N, W, D): N windows of W >= 2 position vectors; teacher is detached.
    """
    target = F.log_softmax(_others(cosine_logits(teacher, teacher)).detach(), dim=-1)
    predicted = F.log_softmax(_others(cosine_logits(student, student)), dim=-1)
    kl = F.kl_div(predicted, target, log_target=True, reduction="none").sum(-1)  # (N, W)
    return kl.mean()


def _others(logits: Tensor) -> Tensor:
    """(N, W, W) -> (N, W, W - 1) float: each position's scores of the other positions (its
    own similarity is always 1 and would swamp the softmax)."""
    N, W, _ = logits.shape
    others = ~torch.eye(W, dtype=torch.bool, device=logits.device)
    return logits.float().masked_select(others).view(N, W, W - 1)


def contrastive_sample(top: int, device) -> tuple[Tensor, Tensor]:
    """Anchors (N,) and candidates (N, M) drawn from 0 .. top, no candidate equal to its
    anchor."""
    anchors = torch.randint(0, top + 1, (ANCHORS,), device=device)
    offsets = torch.randint(1, top + 1, (ANCHORS, CANDIDATES), device=device)
    return anchors, (anchors[:, None] + offsets) % (top + 1)


def distillation_sample(trained: int, top: int, device) -> tuple[Tensor, Tensor]:
    """Teacher windows inside 0 .. trained - 1 and the same windows shifted to lie in
    trained .. top; both (N, W)."""
    width = min(WINDOW, trained)  # trained >= 2
    stride = torch.randint(1, (trained - 1) // (width - 1) + 1, (WINDOWS, 1))
    span = stride * (width - 1)  # (N, 1)
    start = (torch.rand(WINDOWS, 1) * (trained - span)).long()
    teacher = start + stride * torch.arange(width)  # (N, W)
    low = trained - start  # shift that puts the window's start at the training length
    high = top - (start + span)  # largest shift that keeps its end at top
    shift = low + (torch.rand(WINDOWS, 1) * (high - low + 1)).long()
    return teacher.to(device), (teacher + shift).to(device)


def seqpe_auxiliary_loss(model: torch.nn.Module, cfg: SeqPEConfig, trained: int) -> Tensor | None:
    """Weighted sum of both objectives over every SeqPE encoder of ``model`` (an
    encoder-decoder has two), or None when both weights are 0.

    ``trained`` is how many positions (0 .. trained - 1) the current batch trains.
    """
    if not cfg.on:
        return None
    encoders = [m for m in model.modules() if isinstance(m, SequentialPositions)]
    total = None
    for encoder in encoders:
        top = cfg.max_position or encoder.limit - 1
        device = encoder.powers.device
        parts = []
        if cfg.contrastive_weight > 0:
            anchors, candidates = contrastive_sample(top, device)
            vectors = encoder.encode(torch.cat([anchors, candidates.flatten()]))
            loss = contrastive_distance_loss(
                vectors[:ANCHORS],
                vectors[ANCHORS:].view(ANCHORS, CANDIDATES, -1),
                (candidates - anchors[:, None]).abs(),
            )
            parts.append(cfg.contrastive_weight * loss)
        if cfg.distill_weight > 0 and 1 < trained <= top - trained:
            teacher, student = distillation_sample(trained, top, device)
            vectors = encoder.encode(torch.cat([teacher.flatten(), student.flatten()]))
            windows = vectors.view(2, *teacher.shape, -1)
            loss = similarity_distillation_loss(windows[0], windows[1])
            parts.append(cfg.distill_weight * loss)
        for part in parts:
            total = part if total is None else total + part
    return total


@dataclass(frozen=True)
class SeqPE:
    """SeqPE's objectives as an additive objective (``seqweave.objectives.registry``). They
    act on the position encoders, not on the model's outputs, so they need no states of
    the forward pass; scaled by the micro-batch's target tokens like the token loss."""

    settings: SeqPEConfig
    needs_states: ClassVar[bool] = False

    def terms(self, model: torch.nn.Module, micro, forward) -> dict[str, Tensor]:
        source, target = micro.src.shape[1], micro.tgt_in.shape[1]
        shared = model.config.shares_positions
        trained = source + target if shared else max(source, target)
        extra = seqpe_auxiliary_loss(model, self.settings, trained)
        return {} if extra is None else {"seqpe": extra * micro.num_tokens}


def distance_rank_correlation(vectors: Tensor) -> float:
    """Spearman correlation between distance |i - j| and cosine similarity over all pairs
    i < j of position vectors (P, D). -1: similarity falls strictly with distance, the
    ordering the contrastive objective asks for; near 0: no relation."""
    count = vectors.shape[0]
    i, j = torch.triu_indices(count, count, offset=1)
    unit = F.normalize(vectors.detach().double(), dim=-1)
    similarity = (unit[i] * unit[j]).sum(-1)
    distance = (j - i).double()
    a, b = _ranks(distance), _ranks(similarity)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def _ranks(values: Tensor) -> Tensor:
    """1-based ranks, tied values sharing their average rank."""
    _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]
