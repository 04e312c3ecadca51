"""The token loss of a scalar-head model: the regression error at each ``<mask>``.

MAMMAL (Shoshan et al. 2024) answers a numeric question with a number read off the
model's state at a mask position rather than with digits written one by one. The head
(``models/scalars.py``) gives (B, M) outputs, one per ``<mask>`` of a row's source; the
targets are the values written in the row's target text (``<scalar=1.803>``), NaN where a
row has fewer masks. Only real targets count, so no other position of the batch, and no
decoder token, contributes to the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from seqweave.errors import ConfigError


def regression_loss(predictions: Tensor, targets: Tensor) -> Tensor:
    """Mean squared error over the real (non-NaN) targets (B, M) of predictions (B, M),
    in float32."""
    real = ~targets.isnan()
    return F.mse_loss(predictions[real].float(), targets[real].float())


@dataclass(frozen=True)
class Regression:
    """The scalar head's loss over a micro-batch with a float channel (``Batch.src_scalars``,
    ``Batch.tgt_scalars``, filled by the trainer from the mixed prompts); a mean, scaled by
    the micro-batch's target tokens like the other mean losses."""

    def __call__(self, model, wrapped, micro, states: bool):
        from seqweave.objectives.registry import Forward

        if states:
            raise ConfigError(
                "the objectives that read decoder states do not work with model.scalar_head"
            )
        if micro.tgt_scalars is None:
            raise ConfigError("model.scalar_head: the batch carries no scalar targets")
        predictions = wrapped(
            micro.src, micro.src_lengths, None, scalars=micro.src_scalars, regression=True
        )
        loss = regression_loss(predictions, micro.tgt_scalars)
        return loss * micro.num_tokens, Forward(predictions)
