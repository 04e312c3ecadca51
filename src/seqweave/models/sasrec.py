"""SASRec with ReaRec's latent reasoning steps: a causal item encoder for next-item ranking.

SASRec (Kang & McAuley 2018) reads a user's item history with causal
self-attention over item embeddings plus learned positions; the last item's
output state, scored against the same item embeddings (tied output), ranks every
item as the next one. ReaRec (Tang et al. 2025, "Think before recommend") keeps
going after the history: the last output state (after the final layer norm: the state
that scores items) is fed back as the next input,
plus a reasoning-position embedding of its own, for ``model.reasoning_steps``
(K) steps, each attending to the whole history and the steps before it. Step 0
is SASRec's state, so K = 0 *is* SASRec (no extra parameter), and a K > 0
model's step 0 is exactly what its weights give as a plain SASRec.

What ranks items (``model.reasoning_readout``): ``last``, the last step's state
(PRL), or ``mean``, the mean of the K + 1 step states (ERL).

Inputs are framed sources as everywhere in seqweave (the items, then ``</s>``);
the end token is not read, so a row's history is its first ``src_lengths - 1``
tokens and must hold at least one item. Rows are right-padded; positions count
from the first item. The reasoning steps reuse each layer's keys and values of
the history (computed once) instead of re-running it per step: ``tests``
compare that against re-running the whole ``[items ; steps]`` sequence.

This model ranks items and does not decode token by token, so it has no ``step``
(``seqweave recommend`` and ``POST /v1/recommend`` use it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.base import Seq2SeqBase
from seqweave.models.embedding import Embedder, token_embedding
from seqweave.models.layers import DecoderLayer, _merge_heads, attend, linear, padding_mask

Past = list[tuple[Tensor, Tensor]]  # per layer: keys, values (B, H, T, Dh)


class SASRec(Seq2SeqBase):
    not_a_decoder = (
        "a sasrec model ranks items instead of writing tokens: use `seqweave recommend` "
        "or POST /v1/recommend"
    )

    def __init__(self, cfg: ModelConfig):
        tokens = token_embedding(cfg)
        super().__init__(cfg, tokens)
        self.embed = Embedder(cfg, tokens)
        self.layers = nn.ModuleList(
            DecoderLayer(cfg, cross=False) for _ in range(cfg.decoder_layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.norm == "pre" else None
        self.reasoning = None  # (K, D): one input embedding per reasoning step
        if cfg.reasoning_steps:
            self.reasoning = nn.Parameter(torch.empty(cfg.reasoning_steps, cfg.d_model))
            nn.init.normal_(self.reasoning, std=cfg.d_model**-0.5)

    def _final(self, x: Tensor) -> Tensor:
        return x if self.norm is None else self.norm(x)

    def item_states(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Past]:
        """The history through every layer: output states (B, S, D) after the final norm, and
        each layer's keys and values for the reasoning steps. Position t sees items 0..t."""
        B, S = src.shape
        items = src_lengths - 1  # (B,) the framed source ends with </s>
        positions = torch.arange(S, device=src.device).expand(B, S)
        causal = torch.ones(S, S, dtype=torch.bool, device=src.device).tril()
        mask = causal[None, None] & padding_mask(items, S)[:, None, None, :]  # (B, 1, S, S)
        x = self.embed.forward(src, positions)
        past: Past = []
        for layer in self.layers:
            x, kv = _layer_with_past(layer, x, None, mask)
            past.append(kv)
        return self._final(x), past

    def step_states(self, src: Tensor, src_lengths: Tensor, noise_std: float = 0.0) -> Tensor:
        """(B, K + 1, D): the last item's state (step 0, SASRec's) and each reasoning step's."""
        return self.reason(*self._history(src, src_lengths), noise_std)

    def _history(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Past, Tensor]:
        """The last item's state (B, D), the history's keys and values, and which of its
        slots are items (B, 1, 1, S)."""
        states, past = self.item_states(src, src_lengths)
        B, S, _ = states.shape
        items = src_lengths - 1
        last = states[torch.arange(B, device=src.device), items - 1]
        return last, past, padding_mask(items, S)[:, None, None, :]

    def reason(self, last: Tensor, past: Past, seen: Tensor, noise_std: float = 0.0) -> Tensor:
        """K reasoning steps after the history (``_history``'s outputs); ``noise_std`` > 0
        adds Gaussian noise to every state fed back (PRL's views of the reasoning states),
        which step 0 never sees. Returns (B, K + 1, D)."""
        B = last.shape[0]
        steps = [last]
        past = list(past)
        for k in range(self.config.reasoning_steps):
            fed = steps[-1]
            if noise_std > 0:
                fed = fed + noise_std * torch.randn_like(fed)
            x = (fed + self.reasoning[k])[:, None, :]  # (B, 1, D)
            if self.training and self.config.dropout > 0:
                x = F.dropout(x, self.config.dropout, True)
            mask = torch.cat([seen, seen.new_ones(B, 1, 1, k + 1)], dim=-1)  # (B, 1, 1, S+k+1)
            for i, layer in enumerate(self.layers):
                x, past[i] = _layer_with_past(layer, x, past[i], mask)
            steps.append(self._final(x)[:, 0])
        return torch.stack(steps, dim=1)

    def readout(self, steps: Tensor) -> Tensor:
        """(B, K + 1, D) step states -> (B, D) the user state that ranks items."""
        return steps.mean(1) if self.config.reasoning_readout == "mean" else steps[:, -1]

    def scores(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """(B, V): every token's score as the next item (specials included; rankers drop
        them)."""
        return self.logits(self.readout(self.step_states(src, src_lengths)))

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor | None = None,
        views: int = 0,
        noise_std: float = 0.0,
    ) -> tuple[Tensor, list[Tensor]]:
        """The training pass: the step states (B, K + 1, D) and ``views`` more of them with
        noise fed back, all from one pass over the history (``tgt_in`` is not read: the
        target is one item, which the loss scores, ``objectives/rearec.py``)."""
        history = self._history(src, src_lengths)
        clean = self.reason(*history)
        return clean, [self.reason(*history, noise_std) for _ in range(views)]


def _layer_with_past(
    layer: DecoderLayer, x: Tensor, past: tuple[Tensor, Tensor] | None, mask: Tensor
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One decoder layer over new positions x (B, T, D) attending to ``past`` keys and values
    and to themselves under ``mask`` (B, 1, T, P + T); returns the output and all keys and
    values. Unlike the cached path of ``layers.py`` nothing is written in place, so it
    trains. It uses the layer's own pieces (``SelfAttention._split`` and
    ``DecoderLayer._rest``), so it computes exactly what ``DecoderLayer.forward`` does;
    the tests hold it to that. Learned positions only: no RoPE angles."""
    attention = layer.attn
    q, k, v = attention._split(linear(attention.qkv, layer.attn_res.input(x)), None)
    if past is not None:
        k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
    p = attention.dropout if attention.training else 0.0
    y = linear(attention.out, _merge_heads(attend(q, k, v, mask, p, None)))
    x = layer.attn_res.output(x, y)
    return layer._rest(x, None, None), (k, v)
