"""NEFTune (Jain et al. 2023): uniform noise on the input embeddings while fine-tuning.

Omni-DNA fine-tunes with it. The noise is ``alpha / sqrt(L * D)`` times uniform(-1, 1)
per element, L the row's length in tokens and D the model width, so its norm stays about
``alpha / sqrt(3)`` whatever the shapes. It is added to what the model's ``Embedder``s
return (token embedding, scaled, plus absolute positions), which is the same in
distribution as noise on the token embeddings alone. Only in training mode: validation,
decoding and saved weights never see it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seqweave.errors import ConfigError
from seqweave.models.embedding import Embedder


def add_neftune(model: nn.Module, alpha: float) -> list[Callable[[], None]]:
    """Add the noise to every ``Embedder`` of ``model``; returns one undo function each.

    The noise wraps the embedder's ``forward`` rather than a forward hook: the models call
    ``self.embed.forward(...)`` directly, which runs no hooks, so a hook never fired in
    training (a NEFTune run trained exactly like one without).

    Raises:
        ConfigError: ``alpha`` is negative, or the model has no ``Embedder``.
    """
    if alpha < 0:
        raise ConfigError(f"train.neftune_alpha must be >= 0, got {alpha}")
    embedders = [module for module in model.modules() if isinstance(module, Embedder)]
    if not embedders:
        raise ConfigError("train.neftune_alpha: this model has no token embedder to add noise to")
    return [_wrap(embedder, alpha) for embedder in embedders]


def _wrap(embedder: Embedder, alpha: float) -> Callable[[], None]:
    plain = embedder.forward

    def noisy(*args, **kwargs) -> torch.Tensor:
        output = plain(*args, **kwargs)
        if not embedder.training or alpha == 0:
            return output
        L, D = output.shape[-2], output.shape[-1]
        scale = alpha / (L * D) ** 0.5
        return output + torch.empty_like(output).uniform_(-scale, scale)  # (B, L, D)

    embedder.forward = noisy  # an instance attribute: both embedder(...) and .forward(...)
    return lambda: embedder.__dict__.pop("forward", None)
