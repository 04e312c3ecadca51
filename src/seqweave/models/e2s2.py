"""E2S2's optional restore head (Zhong et al. 2022): encoder states -> token logits.

The encoder-side denoising objective (``seqweave.objectives.e2s2``) asks the
encoder states of a corrupted source for the original token at each corrupted
position, through the model's tied output projection (``restore_logits``). With
``model.restore_head`` a small transform (dense, activation, layer norm, as
BERT's masked-LM head) sits in between, so the encoder states need not live in
the output embedding space themselves; without it the objective adds no
parameters. The head is an ordinary submodule, so it is saved and loaded with
the rest of the weights and ``train.init_from`` leaves it behind when a model
without it is fine-tuned from one with it.
"""

from __future__ import annotations

from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.layers import ACTIVATIONS, Linear, linear


class RestoreHead(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense = Linear(cfg.d_model, cfg.d_model)
        self.activation = ACTIVATIONS[cfg.activation]
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)

    def forward(self, states: Tensor) -> Tensor:
        """(B, S, D) -> (B, S, D), to be projected by the model's output layer."""
        return self.norm(self.activation(linear(self.dense, states)))


def restore_logits(model: nn.Module, states: Tensor) -> Tensor:
    """Token logits (B, S, V) from encoder states (B, S, D): through the model's restore
    head when it has one (``model.restore_head``, models/heads.py), then its output layer."""
    head = getattr(model, "restore_head", None)
    return model.logits(states if head is None else head(states))
