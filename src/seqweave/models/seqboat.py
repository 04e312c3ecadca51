"""SeqBoat (Ren et al. 2023, "Sparse Modular Activation for Efficient Sequence Modeling").

A SeqBoat layer runs a linear-cost multi-head damped EMA (``models/ema.py``) over every
token, and lets a router decide, token by token, whether the costly module, gated
attention, runs for it. Attention then runs on the *compressed* sequence of activated
tokens only, in local chunks of ``chunk`` activated tokens, and its output is scattered
back to the tokens' places (zeros elsewhere). Cost per layer: O(T log T) for the EMA plus
O(A * chunk) for attention over A activated tokens, so near-linear in T.

The router is the paper's sparse modular activation with one module: a tempered softmax
over two latent configurations per token, {skip, attend}. The argmax decides, and the
attention output of an activated token is multiplied by the probability of "attend", so
the router learns through the gating of the module output although the decision is hard.

The gated sublayer follows MEGA's gated attention unit around the EMA output e = SiLU(EMA(x)):
a shared representation z = SiLU(e W_z) gives queries and keys by per-dimension scale and
offset, values are SiLU(x W_v), the attention output o is reset-gated by SiLU(e W_r), and
the layer's candidate h = SiLU(e W_h + (r * o) W_o) is mixed into the residual stream by
an update gate u = sigmoid(e W_u): y = x + u * (h - x).

As an architecture (``model.architecture = "seqboat"``, options in ``[model.seqboat]``),
SeqBoat replaces the encoder layers of the encoder-decoder: long inputs pass through the
near-linear encoder, the decoder and every decoder of ``seqweave.decoding`` are the
Transformer's, unchanged. The layer also has a causal mode (causal EMA; causal attention
inside a chunk; a token's chunk depends only on how many tokens before it were activated),
tested not to look ahead; it is not wired into the incremental ``step`` (that would need
the EMA state and the compressed cache in the decoder state).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.architectures import SeqBoatConfig
from seqweave.config import ModelConfig
from seqweave.models.ema import MultiHeadEMA
from seqweave.models.layers import FeedForward, Linear, Residual, linear
from seqweave.models.transformer import EncoderDecoder

SKIP, ATTEND = 0, 1  # the router's two latent configurations


def compress(active: Tensor) -> tuple[Tensor, Tensor]:
    """Where the activated tokens go in the compressed sequence.

    active (B, T) bool -> index (B, C): the positions of each row's activated tokens in
    order, then its other positions (C = the largest count, at least 1), and valid (B, C):
    True where index holds an activated token.
    """
    B, T = active.shape
    positions = torch.arange(T, device=active.device).expand(B, T)
    order = torch.where(active, positions, positions + T).argsort(dim=1)  # active first
    counts = active.sum(dim=1)  # (B,)
    C = max(int(counts.max()), 1)
    index = order[:, :C]
    valid = torch.arange(C, device=active.device)[None, :] < counts[:, None]
    return index, valid


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, F), index (B, C) -> (B, C, F)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


def extract(y: Tensor, index: Tensor, valid: Tensor, length: int) -> Tensor:
    """Scatter compressed outputs y (B, C, F) back to (B, length, F), zeros at tokens that
    were not activated."""
    B, _, F_ = y.shape
    y = y * valid[..., None].to(y.dtype)
    out = y.new_zeros(B, length, F_)
    return out.scatter(1, index[..., None].expand(-1, -1, F_), y)


def chunked_attention(
    q: Tensor, k: Tensor, v: Tensor, valid: Tensor, chunk: int, causal: bool
) -> Tensor:
    """Softmax attention inside consecutive chunks of the compressed sequence.

    q, k (B, C, Z), v (B, C, F); valid (B, C) marks real compressed tokens (keys elsewhere
    are masked). ``chunk`` 0 means one chunk of C. Returns (B, C, F); rows at invalid
    queries are unspecified (``extract`` drops them).
    """
    B, C, _ = q.shape
    size = C if chunk <= 0 else chunk
    pad = -C % size
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        valid = F.pad(valid, (0, pad))
    n = (C + pad) // size
    q, k, v = (t.view(B, n, size, t.shape[-1]) for t in (q, k, v))  # (B, n, c, .)
    mask = valid.view(B, n, 1, size)  # keys
    if causal:
        mask = mask & torch.ones(size, size, dtype=torch.bool, device=q.device).tril()
    # a query with no visible key (padding) sees itself, so no row is all -inf
    mask = mask | torch.eye(size, dtype=torch.bool, device=q.device)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return y.reshape(B, n * size, -1)[:, :C]


class Router(nn.Module):
    """Per token, a tempered softmax over {skip, attend}; returns the activated tokens and
    the factor their attention output is scaled by."""

    def __init__(self, d_model: int, options: SeqBoatConfig):
        super().__init__()
        self.proj = nn.Linear(d_model, 2)
        self.mode = options.router
        self.temperature = options.temperature

    def forward(self, e: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        """e (B, T, D) the EMA output, real (B, T) -> active (B, T) bool, scale (B, T)."""
        if self.mode == "none":
            return torch.zeros_like(real), e.new_zeros(real.shape)
        if self.mode == "all":
            return real, e.new_ones(real.shape)
        probs = (self.proj(e) / self.temperature).softmax(dim=-1)  # (B, T, 2)
        active = (probs.argmax(dim=-1) == ATTEND) & real
        return active, probs[..., ATTEND]


class SeqBoatBlock(nn.Module):
    """The EMA + routed gated-attention sublayer, with its own gated residual."""

    def __init__(self, cfg: ModelConfig, causal: bool):
        super().__init__()
        options = cfg.seqboat
        d, z = cfg.d_model, options.attention_dim
        self.causal, self.chunk, self.d_model, self.z = causal, options.chunk, d, z
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.ema = MultiHeadEMA(d, options.ema_heads, bidirectional=not causal)
        self.gates = Linear(d, 3 * d + z)  # update gate, reset gate, candidate, shared z
        self.value = Linear(d, d)
        self.out = Linear(d, d)
        self.qk_scale = nn.Parameter(torch.randn(2, z) * 0.02 + 1.0)
        self.qk_offset = nn.Parameter(torch.zeros(2, z))
        self.router = Router(d, options)
        self.dropout = cfg.dropout
        self.active: Tensor | None = None  # (B, T) the last pass's activated tokens

    def forward(self, x: Tensor, real: Tensor) -> Tensor:
        """x (B, T, D), real (B, T) True at real tokens -> (B, T, D)."""
        h = self.norm(x)
        e = F.silu(self.ema(h, real))
        update, reset, candidate, shared = linear(self.gates, e).split(
            [self.d_model, self.d_model, self.d_model, self.z], dim=-1
        )
        active, scale = self.router(e, real)
        self.active = active.detach()
        o = self.attend(F.silu(shared), F.silu(linear(self.value, h)), active)
        o = o * scale[..., None]
        candidate = F.silu(candidate + linear(self.out, F.silu(reset) * o))
        if self.training and self.dropout > 0:
            candidate = F.dropout(candidate, self.dropout, True)
        return x + torch.sigmoid(update) * (candidate - x)

    def attend(self, shared: Tensor, values: Tensor, active: Tensor) -> Tensor:
        """Compress the activated tokens, attend in chunks, extract: (B, T, D), zeros at
        tokens not activated."""
        B, T, _ = values.shape
        if not bool(active.any()):
            return values.new_zeros(B, T, values.shape[-1])
        index, valid = compress(active)
        z = gather_rows(shared, index)  # (B, C, Z)
        q = z * self.qk_scale[0] + self.qk_offset[0]
        k = z * self.qk_scale[1] + self.qk_offset[1]
        y = chunked_attention(q, k, gather_rows(values, index), valid, self.chunk, self.causal)
        return extract(y, index, valid, T)


class SeqBoatLayer(nn.Module):
    """A SeqBoat sublayer then the feed-forward block: an encoder layer's drop-in (same
    ``forward(x, mask, rotary)``; positions reach it through the EMA, not RoPE)."""

    def __init__(self, cfg: ModelConfig, causal: bool = False):
        super().__init__()
        self.block = SeqBoatBlock(cfg, causal)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.activation, cfg.activation_dropout)
        self.ffn_res = Residual(cfg.d_model, cfg.norm == "pre", cfg.dropout, cfg.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor | None, rotary=None) -> Tensor:
        """x (B, T, D); mask (B, 1, 1, T) True at real tokens, or None (all real)."""
        B, T, _ = x.shape
        real = (
            torch.ones(B, T, dtype=torch.bool, device=x.device) if mask is None else mask[:, 0, 0]
        )
        x = self.block(x, real)
        return self.ffn_res.output(x, self.ffn.forward(self.ffn_res.input(x)))


class SeqBoat(EncoderDecoder):
    """The encoder-decoder with SeqBoat encoder layers (bidirectional)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.encoder_layers = nn.ModuleList(SeqBoatLayer(cfg) for _ in range(cfg.encoder_layers))

    def activation_masks(self) -> list[Tensor | None]:
        """Per encoder layer, (B, S) the tokens its router activated in the last encode."""
        return [layer.block.active for layer in self.encoder_layers]
