"""The sequence-to-action loss (Li et al. 2022): the token loss of the fused distribution
plus the action classifier's cross-entropy against the gold actions."""

from __future__ import annotations

from torch import Tensor

from seqweave.models.seq2action import ActionOutputs, gold_actions
from seqweave.objectives.mle import label_smoothed_nll


def action_guided_loss(
    outputs: ActionOutputs,
    targets: Tensor,
    pad_id: int,
    skip_id: int,
    smoothing: float = 0.0,
    action_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Summed loss and summed token NLL over non-pad targets (B, T).

    The gold action of a target token is the one the pointer rule reads off it
    (``gold_actions``); the targets carry ``<skip>`` where the gold alignment
    deletes, so teacher forcing walks the pointer along the gold alignment.
    """
    loss, nll = label_smoothed_nll(outputs.log_probs, targets, pad_id, smoothing)
    if action_weight == 0.0:
        return loss, nll
    gold = gold_actions(targets, outputs.under, skip_id)  # (B, T)
    action_nll = -outputs.action_log_probs.gather(-1, gold[..., None])[..., 0]
    action_nll = action_nll.masked_fill(targets == pad_id, 0.0).sum()
    return loss + action_weight * action_nll, nll
