"""Transformer building blocks: attention (full-sequence and cached), feed-forward, layers.

Each attention block has two paths. ``forward`` runs on whole sequences with
an explicit mask (training, the encoder, and the uncached reference the tests
compare against). ``forward_cached`` appends K new tokens per row to a
:class:`~seqweave.models.state.DecoderState` and attends over the row's cache.

Decoding on a CPU at batch 1 is bound by per-operation overhead, not by
arithmetic (a pass of a small model is a few MFLOP), so the blocks call
``torch.nn.functional`` directly on their parameters, call each other's methods
rather than ``Module.__call__``, skip dropout outside training and take RoPE
angles computed once per step.

For analysis (``seqweave.analysis``), an attention module whose ``probe`` is a
list computes its weights explicitly on the uncached path and appends
``(probs, values)`` to it; with ``probe = None`` (always, outside analysis)
the fused kernel runs as usual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.models.positions import rotate
from seqweave.models.seqpar import ShardedMask
from seqweave.models.state import StepPlan

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}

Rotary = tuple[Tensor, Tensor] | None  # cos, sin of shape (B, 1, T, Dh), or no RoPE


class TransposedWeight:
    """A (in, out) contiguous copy of a (out, in) weight, for inference.

    Small-batch matmuls on the CPU run ~30% faster as ``x @ W_t`` with a
    contiguous ``W_t`` than as ``F.linear(x, W)``. The copy is refreshed whenever
    the weight changes (its version counter moves), so training and loading
    weights need no bookkeeping. ``quantized``, when set (``models/quantize.py``),
    replaces the product at inference with an int8 one; ``compiled``, when set
    (``models/compiled.py``), with a compiled one.
    """

    def __init__(self):
        self.copy: Tensor | None = None
        self.key: tuple[int, int] | None = None
        self.quantized = None  # a callable x -> x @ W.T + b with int8 weights
        self.compiled = None  # a compiled callable x -> x @ W.T + b (int8 when quantized)

    def get(self, weight: Tensor) -> Tensor:
        key = (id(weight), weight._version)
        if self.key != key:
            with torch.inference_mode(False), torch.no_grad():
                self.copy = weight.detach().t().contiguous()
            self.key = key
        return self.copy


def project(x: Tensor, weight: Tensor, bias: Tensor | None, cache: TransposedWeight) -> Tensor:
    """x @ weight.T + bias; without autograd, through the transposed copy."""
    if torch.is_grad_enabled():
        return F.linear(x, weight, bias)
    if cache.compiled is not None and not torch.compiler.is_compiling():
        return cache.compiled(x)
    if cache.quantized is not None:
        return cache.quantized(x)
    if torch.compiler.is_compiling() and cache.copy is None:
        return F.linear(x, weight, bias)
    flat = x.view(-1, x.shape[-1]) if x.is_contiguous() else x.reshape(-1, x.shape[-1])
    wt = cache.copy if torch.compiler.is_compiling() else cache.get(weight)
    out = torch.addmm(bias, flat, wt) if bias is not None else flat @ wt
    return out.view(*x.shape[:-1], wt.shape[1])


class Linear(nn.Linear):
    """``nn.Linear`` with the fast inference path of :func:`project`."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.transposed = TransposedWeight()

    def forward(self, x: Tensor) -> Tensor:
        return project(x, self.weight, self.bias, self.transposed)


def linear(layer: Linear, x: Tensor) -> Tensor:
    return layer.forward(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused q/k/v projection."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.qkv = Linear(d_model, 3 * d_model)
        self.out = Linear(d_model, d_model)
        self.dropout = dropout
        self.probe: list | None = None

    def _split(self, qkv: Tensor, rotary: Rotary) -> tuple[Tensor, Tensor, Tensor]:
        """(B, T, 3D) -> q, k, v (B, H, T, Dh), rotated when RoPE is on: one permute, the
        same strided views as three transposes, in fewer operator calls."""
        B, T, _ = qkv.shape
        parts = qkv.view(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = parts.unbind(0)  # (B, H, T, Dh) each
        if rotary is not None:
            q, k = rotate(q, *rotary), rotate(k, *rotary)
        return q, k, v

    def forward(self, x: Tensor, mask: Tensor | None, rotary: Rotary) -> Tensor:
        """x (B, T, D); mask (B, 1, T, T) True = may attend."""
        q, k, v = self._split(linear(self.qkv, x), rotary)
        p = self.dropout if self.training else 0.0
        y = attend(q, k, v, mask, p, self.probe)
        return linear(self.out, _merge_heads(y))

    def forward_cached(
        self, x: Tensor, keys: Tensor, values: Tensor, plan: StepPlan, rotary: Rotary
    ) -> Tensor:
        """x: new tokens, (B, K, D) or packed (N, D); keys/values (B, H, capacity, Dh) are
        written in place."""
        q, k, v = self._split(plan.dense(linear(self.qkv, x)), rotary)
        if plan.uniform_start is not None:
            keys.narrow(2, plan.uniform_start, k.shape[2]).copy_(k)
            values.narrow(2, plan.uniform_start, v.shape[2]).copy_(v)
        else:
            keys[plan.batch_index, :, plan.slots] = k.transpose(1, 2)  # (B, K, H, Dh)
            values[plan.batch_index, :, plan.slots] = v.transpose(1, 2)
        used_k, used_v = keys.narrow(2, 0, plan.used), values.narrow(2, 0, plan.used)
        y = F.scaled_dot_product_attention(q, used_k, used_v, attn_mask=plan.mask)
        return linear(self.out, plan.flat(_merge_heads(y)))


class CrossAttention(nn.Module):
    """Multi-head attention from decoder tokens to the encoder memory."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.q = Linear(d_model, d_model)
        self.kv = Linear(d_model, 2 * d_model)
        self.out = Linear(d_model, d_model)
        self.dropout = dropout
        self.probe: list | None = None

    def project_memory(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B, S, D) -> keys, values (B, H, S, Dh); done once per source."""
        B, S, _ = memory.shape
        k, v = linear(self.kv, memory).view(B, S, 2, self.num_heads, self.head_dim).unbind(2)
        return k.transpose(1, 2), v.transpose(1, 2)

    def forward(
        self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None, plan=None
    ) -> Tensor:
        """x (B, T, D), or packed (N, D) with the step's ``plan``; mask (B, 1, 1, S) True at
        real source tokens."""
        q = linear(self.q, x)
        if plan is not None:
            q = plan.dense(q)
        B, T, _ = q.shape
        q = q.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        y = _merge_heads(attend(q, keys, values, mask, p, self.probe))
        return linear(self.out, y if plan is None else plan.flat(y))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, activation: str, dropout: float):
        super().__init__()
        self.fc1 = Linear(d_model, ffn_dim)
        self.fc2 = Linear(ffn_dim, d_model)
        self.activation = ACTIVATIONS[activation]
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        h = self.activation(linear(self.fc1, x))
        if self.training and self.dropout > 0:
            h = F.dropout(h, self.dropout, True)
        return linear(self.fc2, h)


class Residual(nn.Module):
    """A sublayer's layer norm and residual connection, pre-LN or post-LN."""

    def __init__(self, d_model: int, pre_norm: bool, dropout: float, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.pre_norm = pre_norm
        self.dropout = dropout

    def _norm(self, x: Tensor) -> Tensor:
        norm = self.norm
        return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)

    def input(self, x: Tensor) -> Tensor:
        return self._norm(x) if self.pre_norm else x

    def output(self, x: Tensor, y: Tensor) -> Tensor:
        if self.training and self.dropout > 0:
            y = F.dropout(y, self.dropout, True)
        return x + y if self.pre_norm else self._norm(x + y)


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        pre = cfg.norm == "pre"
        self.attn = SelfAttention(cfg.d_model, cfg.num_heads, cfg.attention_dropout)
        self.attn_res = Residual(cfg.d_model, pre, cfg.dropout, cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.activation, cfg.activation_dropout)
        self.ffn_res = Residual(cfg.d_model, pre, cfg.dropout, cfg.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor | None, rotary: Rotary) -> Tensor:
        x = self.attn_res.output(x, self.attn.forward(self.attn_res.input(x), mask, rotary))
        return self.ffn_res.output(x, self.ffn.forward(self.ffn_res.input(x)))


class DecoderLayer(nn.Module):
    """Self-attention, optional cross-attention (encoder-decoder only), feed-forward."""

    def __init__(self, cfg, cross: bool):
        super().__init__()
        pre, d, eps = cfg.norm == "pre", cfg.d_model, cfg.layer_norm_eps
        self.attn = SelfAttention(d, cfg.num_heads, cfg.attention_dropout)
        self.attn_res = Residual(d, pre, cfg.dropout, eps)
        self.cross = CrossAttention(d, cfg.num_heads, cfg.attention_dropout) if cross else None
        self.cross_res = Residual(d, pre, cfg.dropout, eps) if cross else None
        self.ffn = FeedForward(d, cfg.ffn_dim, cfg.activation, cfg.activation_dropout)
        self.ffn_res = Residual(d, pre, cfg.dropout, eps)

    def _rest(self, x: Tensor, cross_kv, cross_mask, plan=None) -> Tensor:
        if self.cross is not None:
            y = self.cross.forward(self.cross_res.input(x), *cross_kv, cross_mask, plan)
            x = self.cross_res.output(x, y)
        return self.ffn_res.output(x, self.ffn.forward(self.ffn_res.input(x)))

    def forward(self, x, mask, rotary: Rotary, cross_kv=None, cross_mask=None) -> Tensor:
        x = self.attn_res.output(x, self.attn.forward(self.attn_res.input(x), mask, rotary))
        return self._rest(x, cross_kv, cross_mask)

    def forward_cached(self, x, keys, values, plan, rotary: Rotary, cross_kv=None, cross_mask=None):
        y = self.attn.forward_cached(self.attn_res.input(x), keys, values, plan, rotary)
        x = self.attn_res.output(x, y)
        return self._rest(x, cross_kv, cross_mask, plan)


class PartialAttentionLayer(DecoderLayer):
    """A PALM layer (Fu et al. 2023): self-attention over source and target, then a
    partial-attention sublayer in which target tokens attend to the source alone, then
    the feed-forward block.

    The partial attention reads the source's hidden states *of the same layer*: its keys
    and values project the states that enter this layer's self-attention (after its
    input norm), so the source stays in view at every depth instead of only through
    the target's own, ever longer, self-attention context. Source tokens skip the
    sublayer (for them it would repeat the self-attention). It has the shape of an
    encoder-decoder's cross-attention and reuses that module.
    """

    def __init__(self, cfg):
        super().__init__(cfg, cross=True)

    def forward_source_cached(self, x: Tensor, keys: Tensor, values: Tensor, plan, rotary):
        """The source (B, S, D) through the layer, prefilling the self-attention cache;
        returns its output and the partial-attention keys and values (B, H, S, Dh)."""
        h = self.attn_res.input(x)
        partial_kv = self.cross.project_memory(h)
        x = self.attn_res.output(x, self.attn.forward_cached(h, keys, values, plan, rotary))
        return self.ffn_res.output(x, self.ffn.forward(self.ffn_res.input(x))), partial_kv

    def forward_joint(self, x: Tensor, mask, rotary: Rotary, S: int, source_mask) -> Tensor:
        """Uncached [source ; target] (B, S + T, D): the source's S positions come first;
        ``source_mask`` (B, 1, 1, S) marks its real tokens (None: all real)."""
        h = self.attn_res.input(x)
        partial_kv = self.cross.project_memory(h[:, :S])
        x = self.attn_res.output(x, self.attn.forward(h, mask, rotary))
        target = x[:, S:]
        y = self.cross.forward(self.cross_res.input(target), *partial_kv, source_mask)
        x = torch.cat([x[:, :S], self.cross_res.output(target, y)], dim=1)
        return self.ffn_res.output(x, self.ffn.forward(self.ffn_res.input(x)))


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float, probe):
    """Scaled dot-product attention of q (B, H, T, Dh) over k, v (B, H, S, Dh).

    With a ``probe`` list the weights (B, H, T, S) are computed explicitly and appended
    with the values, for analysis; dropout is then skipped (analyse in eval mode).
    A :class:`ShardedMask` runs the sequence-parallel attention on this rank's shards.
    """
    if isinstance(mask, ShardedMask):
        return mask.attend(q, k, v, dropout_p)
    if probe is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = scores.softmax(dim=-1)
    probe.append((probs, v))
    return probs @ v


def _merge_heads(y: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, H * Dh); one view when T = 1 (a decoding step) and the heads
    lie side by side in memory, as attention writes them."""
    B, H, T, Dh = y.shape
    if T == 1 and y.stride(1) == Dh and y.stride(3) == 1:
        return y.view(B, T, H * Dh)
    return y.transpose(1, 2).reshape(B, T, H * Dh)


def padding_mask(lengths: Tensor, size: int) -> Tensor:
    """(B,) lengths -> (B, size) bool, True at real tokens."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]
