"""SeqPE: position vectors computed from the digits of the position (Li et al. 2025).

A learned table has one row per position and nothing for positions it never
saw. SeqPE instead writes position p as a fixed number of base-b digits
(``seqpe_digits``, most significant first, left-padded with zeros), embeds each
digit (digit embedding + digit-place embedding), reads the digits with a small
Transformer encoder of its own width, and projects the output at the last
(least significant) digit to d_model. Any position below ``base ** digits``
has a vector, and positions that share digits share structure, which is what
the auxiliary objectives in ``seqweave.objectives.seqpe`` shape.

The vector is added to the token embedding like a learned position. A pass
encodes each distinct position it needs once and then indexes. Without
autograd (decoding) the vectors of positions ``0 .. n`` are kept in a table
that grows by doubling and is rebuilt when any weight changes in place (an
optimizer step, loading weights) or moves device or dtype, so a decoding step
costs an index, as with a learned table.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.layers import EncoderLayer, Linear


class SequentialPositions(nn.Module):
    """position ids (B, T) -> position vectors (B, T, D), for any position < base ** digits."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.seqpe_dim
        self.base, self.digits, self.limit = cfg.seqpe_base, cfg.seqpe_digits, cfg.seqpe_limit
        self.digit = nn.Embedding(cfg.seqpe_base, width)
        self.place = nn.Parameter(torch.empty(cfg.seqpe_digits, width))
        nn.init.normal_(self.digit.weight, std=width**-0.5)
        nn.init.normal_(self.place, std=width**-0.5)
        inner = dataclasses.replace(
            cfg,
            d_model=width,
            num_heads=cfg.seqpe_heads,
            ffn_dim=4 * width,
            dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
        )
        self.layers = nn.ModuleList(EncoderLayer(inner) for _ in range(cfg.seqpe_layers))
        self.norm = nn.LayerNorm(width, eps=cfg.layer_norm_eps)
        self.project = Linear(width, cfg.d_model)
        # unit-variance features after the norm -> outputs of std d_model**-0.5, the scale
        # of the token embeddings and of a freshly initialised learned table
        nn.init.normal_(self.project.weight, std=(width * cfg.d_model) ** -0.5)
        nn.init.zeros_(self.project.bias)
        powers = cfg.seqpe_base ** torch.arange(cfg.seqpe_digits - 1, -1, -1)
        self.register_buffer("powers", powers, persistent=False)
        self._table: Tensor | None = None
        self._table_key: tuple | None = None
        self._weights: list[nn.Parameter] | None = None

    def digits_of(self, positions: Tensor) -> Tensor:
        """(N,) positions -> (N, digits) digits, most significant first."""
        return torch.div(positions[:, None], self.powers, rounding_mode="floor") % self.base

    def encode(self, positions: Tensor) -> Tensor:
        """(N,) positions -> (N, D) vectors; differentiable, no bounds check."""
        x = F.embedding(self.digits_of(positions), self.digit.weight) + self.place  # (N, k, w)
        for layer in self.layers:
            x = layer.forward(x, None, None)
        n = self.norm
        last = F.layer_norm(x[:, -1], n.normalized_shape, n.weight, n.bias, n.eps)  # (N, w)
        return self.project.forward(last)

    def forward(self, position_ids: Tensor) -> Tensor:
        """position_ids (B, T) -> (B, T, D)."""
        if not position_ids.numel():
            return self.project.bias.new_zeros(*position_ids.shape, self.project.out_features)
        low, high = (int(v) for v in torch.aminmax(position_ids))
        if low < 0 or high >= self.limit:
            raise ValueError(
                f"position {low if low < 0 else high} is outside what SeqPE encodes: "
                f"0 .. {self.limit - 1} (model.seqpe_digits={self.digits} in base {self.base})"
            )
        if torch.is_grad_enabled():
            unique, inverse = torch.unique(position_ids, return_inverse=True)
            return self.encode(unique)[inverse]
        return self._cached_table(high + 1)[position_ids]

    def _cached_table(self, needed: int) -> Tensor:
        """Vectors of positions 0 .. at least needed - 1, reused while the weights stay."""
        if self._weights is None:  # walking the modules each step would cost more than the step
            self._weights = list(self.parameters())
        weight = self.project.weight
        key = (weight.device, weight.dtype, *((id(p), p._version) for p in self._weights))
        table = self._table
        if self._table_key != key or table is None or table.shape[0] < needed:
            size = min(self.limit, max(64, 1 << (needed - 1).bit_length()))
            if table is not None and self._table_key == key:
                size = min(self.limit, max(size, 2 * table.shape[0]))
            positions = torch.arange(size, device=self.powers.device)
            with torch.inference_mode(False), torch.no_grad():
                self._table = self.encode(positions)
            self._table_key = key
        return self._table
