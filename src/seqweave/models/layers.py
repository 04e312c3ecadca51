"""Transformer building blocks: attention (full-sequence and cached), feed-forward, layers.

Each attention block has two paths. ``forward`` runs on whole sequences with
an explicit mask (training, the encoder, and the uncached reference the tests
compare against). ``forward_cached`` appends K new tokens per row to a
:class:`~seqweave.models.state.DecoderState` and attends over the row's cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.models.positions import RotaryPositions, rotate
from seqweave.models.state import StepPlan

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused q/k/v projection."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, rope: RotaryPositions | None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.rope = rope

    def _project(self, x: Tensor, position_ids: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, Dh)
        if self.rope is not None:
            cos, sin = self.rope.angles(position_ids)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        return q, k, v

    def _merge(self, y: Tensor) -> Tensor:
        B, H, T, Dh = y.shape
        return self.out(y.transpose(1, 2).reshape(B, T, H * Dh))

    def forward(self, x: Tensor, mask: Tensor | None, position_ids: Tensor | None) -> Tensor:
        """x (B, T, D); mask (B, 1, T, T) True = may attend."""
        q, k, v = self._project(x, position_ids)
        p = self.dropout if self.training else 0.0
        return self._merge(F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p))

    def forward_cached(
        self, x: Tensor, keys: Tensor, values: Tensor, plan: StepPlan, position_ids: Tensor
    ) -> Tensor:
        """x (B, K, D) new tokens; keys/values (B, H, capacity, Dh) are written in place."""
        q, k, v = self._project(x, position_ids)
        if plan.uniform_start is not None:
            end = plan.uniform_start + k.shape[2]
            keys[:, :, plan.uniform_start : end] = k
            values[:, :, plan.uniform_start : end] = v
        else:
            keys[plan.batch_index, :, plan.slots] = k.transpose(1, 2)  # (B, K, H, Dh)
            values[plan.batch_index, :, plan.slots] = v.transpose(1, 2)
        used_k, used_v = keys[:, :, : plan.used], values[:, :, : plan.used]
        y = F.scaled_dot_product_attention(q, used_k, used_v, attn_mask=plan.mask)
        return self._merge(y)


class CrossAttention(nn.Module):
    """Multi-head attention from decoder tokens to the encoder memory."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def project_memory(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B, S, D) -> keys, values (B, H, S, Dh); done once per source."""
        B, S, _ = memory.shape
        k, v = self.kv(memory).view(B, S, 2, self.num_heads, self.head_dim).unbind(2)
        return k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None) -> Tensor:
        """x (B, T, D); mask (B, 1, 1, S) True at real source tokens."""
        B, T, D = x.shape
        q = self.q(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, activation: str, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.activation = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


class Residual(nn.Module):
    """A sublayer with its layer norm and residual, pre-LN or post-LN."""

    def __init__(self, d_model: int, pre_norm: bool, dropout: float, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.pre_norm = pre_norm
        self.dropout = nn.Dropout(dropout)

    def input(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre_norm else x

    def output(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.dropout(y)
        return x if self.pre_norm else self.norm(x)


class EncoderLayer(nn.Module):
    def __init__(self, cfg, rope: RotaryPositions | None):
        super().__init__()
        pre = cfg.norm == "pre"
        self.attn = SelfAttention(cfg.d_model, cfg.num_heads, cfg.attention_dropout, rope)
        self.attn_res = Residual(cfg.d_model, pre, cfg.dropout, cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.activation, cfg.activation_dropout)
        self.ffn_res = Residual(cfg.d_model, pre, cfg.dropout, cfg.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor | None, position_ids: Tensor | None) -> Tensor:
        x = self.attn_res.output(x, self.attn(self.attn_res.input(x), mask, position_ids))
        return self.ffn_res.output(x, self.ffn(self.ffn_res.input(x)))


class DecoderLayer(nn.Module):
    """Self-attention, optional cross-attention (encoder-decoder only), feed-forward."""

    def __init__(self, cfg, rope: RotaryPositions | None, cross: bool):
        super().__init__()
        pre = cfg.norm == "pre"
        self.attn = SelfAttention(cfg.d_model, cfg.num_heads, cfg.attention_dropout, rope)
        self.attn_res = Residual(cfg.d_model, pre, cfg.dropout, cfg.layer_norm_eps)
        self.cross = (
            CrossAttention(cfg.d_model, cfg.num_heads, cfg.attention_dropout) if cross else None
        )
        self.cross_res = (
            Residual(cfg.d_model, pre, cfg.dropout, cfg.layer_norm_eps) if cross else None
        )
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.activation, cfg.activation_dropout)
        self.ffn_res = Residual(cfg.d_model, pre, cfg.dropout, cfg.layer_norm_eps)

    def _rest(self, x: Tensor, cross_kv: tuple[Tensor, Tensor] | None, cross_mask) -> Tensor:
        if self.cross is not None:
            keys, values = cross_kv
            y = self.cross(self.cross_res.input(x), keys, values, cross_mask)
            x = self.cross_res.output(x, y)
        return self.ffn_res.output(x, self.ffn(self.ffn_res.input(x)))

    def forward(self, x, mask, position_ids, cross_kv=None, cross_mask=None) -> Tensor:
        x = self.attn_res.output(x, self.attn(self.attn_res.input(x), mask, position_ids))
        return self._rest(x, cross_kv, cross_mask)

    def forward_cached(self, x, keys, values, plan, position_ids, cross_kv=None, cross_mask=None):
        y = self.attn.forward_cached(self.attn_res.input(x), keys, values, plan, position_ids)
        x = self.attn_res.output(x, y)
        return self._rest(x, cross_kv, cross_mask)


def padding_mask(lengths: Tensor, size: int) -> Tensor:
    """(B,) lengths -> (B, size) bool, True at real tokens."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]
