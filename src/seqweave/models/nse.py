"""Neural Semantic Encoder (Munkhdalai and Yu 2017): a memory that is read, composed with and
written at every step.

At step t, with memory M (N slots of width D) and input x_t:

- **read**: ``o_t = LSTM_r(x_t)``, ``z_t = softmax(M o_t)`` over the real slots (padding
  slots get exactly 0), ``m_t = z_t^T M``;
- **compose**: ``c_t = ReLU(W [o_t; m_t])``;
- **write**: ``h_t = LSTM_w(c_t)``, ``M <- M * (1 - z_t) + z_t * h_t``: each slot moves
  towards ``h_t`` by its share of the attention, so a one-hot ``z`` rewrites one slot.

Unlike attention over a fixed encoding, what the model reads later depends on what it
wrote before, so the memory is state: the hierarchical model (``hier_nse.py``) keeps it in
the decoder state.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def attend(memory: Tensor, query: Tensor, mask: Tensor) -> Tensor:
    """Attention ``z`` over the real slots: memory (..., N, D), query (..., D), mask (..., N)
    True at real slots -> (..., N), summing to 1 over real slots and exactly 0 at padding
    (all 0 when a row has no real slot)."""
    scores = torch.einsum("...nd,...d->...n", memory, query)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1) * mask


def read_out(memory: Tensor, z: Tensor) -> Tensor:
    """``z^T M``: memory (..., N, D), z (..., N) -> (..., D)."""
    return torch.einsum("...n,...nd->...d", z, memory)


def write(memory: Tensor, z: Tensor, h: Tensor) -> Tensor:
    """``M <- M * (1 - z) + z * h``: memory (..., N, D), z (..., N), h (..., D)."""
    z = z.unsqueeze(-1)
    return memory * (1 - z) + z * h.unsqueeze(-2)


LSTMState = tuple[Tensor, Tensor]


def keep(active: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """``new`` on rows where ``active`` (R,) is True, ``old`` elsewhere (any trailing shape)."""
    return torch.where(active.view(-1, *[1] * (new.dim() - 1)), new, old)


class NSE(nn.Module):
    """One NSE over sequences in parallel: read, compose and write LSTMs around one memory."""

    def __init__(self, input_dim: int, d_model: int):
        super().__init__()
        self.read = nn.LSTMCell(input_dim, d_model)
        self.compose = nn.Linear(2 * d_model, d_model)
        self.write = nn.LSTMCell(d_model, d_model)
        self.d_model = d_model

    def forward(
        self, inputs: Tensor, real: Tensor, memory: Tensor, memory_mask: Tensor
    ) -> tuple[Tensor, LSTMState, LSTMState]:
        """inputs (R, T, D_in) with ``real`` (R, T) True at real steps; memory (R, N, D) with
        ``memory_mask`` (R, N). Returns the written memory and the read and write LSTMs'
        last states (a row's state stops at its last real step)."""
        R, T, _ = inputs.shape
        zeros = inputs.new_zeros(R, self.d_model)
        read_state: LSTMState = (zeros, zeros)
        write_state: LSTMState = (zeros, zeros)
        for t in range(T):
            active = real[:, t]
            h_r, c_r = self.read(inputs[:, t], read_state)
            z = attend(memory, h_r, memory_mask)  # (R, N)
            composed = torch.relu(self.compose(torch.cat([h_r, read_out(memory, z)], -1)))
            h_w, c_w = self.write(composed, write_state)
            memory = keep(active, write(memory, z, h_w), memory)
            read_state = (keep(active, h_r, read_state[0]), keep(active, c_r, read_state[1]))
            write_state = (keep(active, h_w, write_state[0]), keep(active, c_w, write_state[1]))
        return memory, read_state, write_state
