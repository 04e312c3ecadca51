"""NEFTune (Jain et al. 2023): uniform noise on the input embeddings while fine-tuning.

Omni-DNA fine-tunes with it. The noise is ``alpha / sqrt(L * D)`` times uniform(-1, 1)
per element, L the row's length in tokens and D the model width, so its norm stays about
``alpha / sqrt(3)`` whatever the shapes. It is added to what the model's ``Embedder``s
return (token embedding, scaled, plus absolute positions), which is the same in
distribution as noise on the token embeddings alone. Only in training mode: validation,
decoding and saved weights never see it.
"""

from __future__ import annotations

import torch
from torch import nn

from seqweave.errors import ConfigError
from seqweave.models.embedding import Embedder


def add_neftune(model: nn.Module, alpha: float) -> list[torch.utils.hooks.RemovableHandle]:
    """Register the noise on every ``Embedder`` of ``model``; returns the hook handles.

    Raises:
        ConfigError: ``alpha`` is negative, or the model has no ``Embedder``.
    """
    if alpha < 0:
        raise ConfigError(f"train.neftune_alpha must be >= 0, got {alpha}")
    embedders = [module for module in model.modules() if isinstance(module, Embedder)]
    if not embedders:
        raise ConfigError("train.neftune_alpha: this model has no token embedder to add noise to")

    def noisy(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        if not module.training or alpha == 0:
            return output
        L, D = output.shape[-2], output.shape[-1]
        scale = alpha / (L * D) ** 0.5
        return output + torch.empty_like(output).uniform_(-scale, scale)  # (B, L, D)

    return [embedder.register_forward_hook(noisy) for embedder in embedders]
