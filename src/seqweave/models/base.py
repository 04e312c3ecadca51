"""What every seqweave model shares: the output head and the state operations.

The decoder-state API (DESIGN.md) is ``encode``, ``start``, ``step``,
``rollback`` and ``reorder``. The first three depend on the architecture; the
last two only touch the cache, so they live here once. Models that do not
decode token by token (GAD's drafter, FReTNA's editor) have no ``step``; they
say what they are for in ``not_a_decoder``, which ``require_step`` reports.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.errors import ConfigError
from seqweave.models.argmax_screen import OutputScreen, ScreenCache, screened_argmax
from seqweave.models.layers import TransposedWeight, project
from seqweave.models.state import DecoderState


class Seq2SeqBase(nn.Module):
    """Output projection (tied or not, with optional final bias) and state operations."""

    def __init__(self, cfg: ModelConfig, output_tokens: nn.Embedding):
        super().__init__()
        self.config = cfg
        self.output_tokens = output_tokens if cfg.tie_output else None
        self.output = None if cfg.tie_output else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self._output_transposed = TransposedWeight()
        self._output_screen = ScreenCache()
        if cfg.final_logits_bias:
            self.register_buffer("final_logits_bias", torch.zeros(cfg.vocab_size))
        else:
            self.final_logits_bias = None

    def logits(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, V)."""
        weight = self.output_tokens.weight if self.output is None else self.output.weight
        return project(x, weight, self.final_logits_bias, self._output_transposed)

    def logits_argmax(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T): the argmax of ``logits(x)``, through the int8 screen of
        ``models/argmax_screen.py`` where it is the same (float32 CPU inference with the
        plain output product); elsewhere (training, int8 or compiled output, GPU, reduced
        float32 matmul precision) the argmax of the full logits."""
        cache = self._output_transposed
        weight = self.output_tokens.weight if self.output is None else self.output.weight
        plain = cache.quantized is None and cache.compiled is None
        if torch.is_grad_enabled() or not plain or weight.device.type != "cpu":
            return self.logits(x).argmax(dim=-1)
        float32 = x.dtype == weight.dtype == torch.float32
        if not float32 or torch.get_float32_matmul_precision() != "highest":
            return self.logits(x).argmax(dim=-1)
        flat = x.reshape(-1, x.shape[-1])
        screen, bias = self.output_screen(), self.final_logits_bias
        return screened_argmax(flat, screen, cache.get(weight), bias).view(x.shape[:-1])

    def output_screen(self) -> OutputScreen:
        """The int8 screen of the output layer (built on first use, rebuilt when the weights
        change): what ``logits_argmax`` reads, and bench/screen_candidates.py counts."""
        weight = self.output_tokens.weight if self.output is None else self.output.weight
        return self._output_screen.get(weight, self.final_logits_bias)

    def rollback(self, state: DecoderState, keep: Tensor) -> None:
        """Per row, forget cache entries past ``keep[b]`` decoded tokens."""
        state.rollback(keep)

    def reorder(self, state: DecoderState, index: Tensor) -> None:
        """Gather rows ``index`` of the state (beam search, dropping finished rows)."""
        state.reorder(index)

    def _empty_cache(self, batch: int, capacity: int, like: Tensor) -> list[Tensor]:
        cfg = self.config
        head_dim = cfg.d_model // cfg.num_heads
        return [
            like.new_zeros(batch, cfg.num_heads, capacity, head_dim)
            for _ in range(cfg.decoder_layers)
        ]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def causal_mask(size: int, device: torch.device) -> Tensor:
    """(1, 1, T, T) bool, True on and below the diagonal."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()[None, None]


def new_token_positions(start: Tensor, count: int) -> Tensor:
    """(B,) first position per row -> (B, count) position ids."""
    return start[:, None] + torch.arange(count, device=start.device)[None, :]


def require_step(model: nn.Module) -> None:
    """Raise ConfigError, before any work, when ``model`` cannot decode token by token.

    Raises:
        ConfigError: the model has no ``step``; the message is its ``not_a_decoder``.
    """
    if not hasattr(model, "step"):
        architecture = model.config.architecture
        default = f"a {architecture} model does not decode token by token"
        raise ConfigError(getattr(model, "not_a_decoder", default))
