"""Position encodings: sinusoidal and learned (added to embeddings) and RoPE (rotates q, k).

Every encoding is indexed by explicit position ids of shape (B, T), never by
``arange``: in a ragged batch each row has its own length, so the next token
of row b sits at position ``lengths[b]`` whatever the other rows do.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_table(num_positions: int, dim: int) -> Tensor:
    """(num_positions, dim) table: sines in the first half, cosines in the second.

    The frequency of channel pair j is 1 / 10000^(2j/dim) (Vaswani et al.); the
    half-and-half layout is the one Marian uses, so its weights import unchanged.
    """
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    half = dim // 2
    exponent = torch.arange(0, dim, 2, dtype=torch.float64)[: (dim + 1) // 2] / dim
    angle = position / torch.pow(10000.0, exponent)[None, :]  # (P, ceil(dim/2))
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    table[:, : (dim + 1) // 2] = torch.sin(angle)
    table[:, (dim + 1) // 2 :] = torch.cos(angle[:, :half])
    return table.float()


class AbsolutePositions(nn.Module):
    """Learned or sinusoidal position vectors, looked up at ``ids + offset``."""

    def __init__(self, kind: str, num_positions: int, dim: int, offset: int = 0):
        super().__init__()
        self.kind = kind
        self.offset = offset
        if kind == "learned":
            self.weight = nn.Parameter(torch.empty(num_positions + offset, dim))
            nn.init.normal_(self.weight, std=dim**-0.5)
        else:
            table = sinusoidal_table(num_positions + offset, dim)
            self.register_buffer("weight", table, persistent=False)

    def forward(self, position_ids: Tensor) -> Tensor:
        """position_ids (B, T) -> (B, T, D)."""
        limit = self.weight.shape[0] - self.offset
        if position_ids.numel() and int(position_ids.max()) >= limit:
            raise ValueError(
                f"position {int(position_ids.max())} is past model.max_positions={limit}"
            )
        return self.weight[position_ids + self.offset]


class RotaryPositions(nn.Module):
    """Rotary position embedding (Su et al. 2021) applied to queries and keys of shape
    (B, H, T, Dh); channel pairs are (i, i + Dh/2), the "rotate half" layout."""

    def __init__(self, head_dim: int, num_positions: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angle = torch.arange(num_positions, dtype=torch.float64)[:, None] * inv_freq[None, :]
        angle = torch.cat([angle, angle], dim=-1)  # (P, Dh)
        self.register_buffer("cos", angle.cos().float(), persistent=False)
        self.register_buffer("sin", angle.sin().float(), persistent=False)
        self.num_positions = num_positions

    def angles(self, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        """position_ids (B, T) -> cos, sin of shape (B, 1, T, Dh), shared by q and k."""
        if position_ids.numel() and int(position_ids.max()) >= self.num_positions:
            raise ValueError(
                f"position {int(position_ids.max())} is past model.max_positions="
                f"{self.num_positions}"
            )
        return self.cos[position_ids][:, None], self.sin[position_ids][:, None]


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Apply the rotation to x (B, H, T, Dh)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def embedding_scale(dim: int, enabled: bool) -> float:
    return math.sqrt(dim) if enabled else 1.0
