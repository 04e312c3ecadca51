"""Decoder-only prefix LM: the source is a prefix, the target is predicted after it.

Attention inside the prefix is bidirectional (or causal, by config); target
tokens attend to the whole prefix and causally to earlier target tokens. The
loss is on the target only. ``encode`` prefills the cache with the prefix, so
the decoders drive this model through the same ``step`` as the encoder-decoder.

Layout: row b of the cache holds its prefix in slots ``0 .. P_b - 1`` and its
target from slot ``P_b`` on (``state.base = P_b``); positions equal slots.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.base import Seq2SeqBase, new_token_positions
from seqweave.models.embedding import Embedder, token_embedding
from seqweave.models.layers import DecoderLayer, padding_mask
from seqweave.models.state import DecoderState, Memory, StepPlan, plan_step


class PrefixLM(Seq2SeqBase):
    def __init__(self, cfg: ModelConfig):
        tokens = token_embedding(cfg)
        super().__init__(cfg, tokens)
        self.embed = Embedder(cfg, tokens)
        self.layers = nn.ModuleList(
            DecoderLayer(cfg, cross=False) for _ in range(cfg.decoder_layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.norm == "pre" else None

    def _prefix_mask(self, src_lengths: Tensor, size: int) -> Tensor:
        """(B, 1, S, S): what each prefix slot may see; only real prefix tokens are keys."""
        real = padding_mask(src_lengths, size)[:, None, None, :]  # (B, 1, 1, S)
        if self.config.prefix_attention == "bidirectional":
            return real.expand(-1, 1, size, size)
        return real & torch.ones(size, size, dtype=torch.bool, device=src_lengths.device).tril()

    def _out(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        return self.logits(x)

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        """Run the prefix src (B, S) once and keep every layer's keys and values."""
        B, S = src.shape
        positions = torch.arange(S, device=src.device).expand(B, S)
        plan = StepPlan(
            slots=positions,
            used=S,
            mask=self._prefix_mask(src_lengths, S),
            batch_index=torch.arange(B, device=src.device)[:, None],
            uniform_start=0,
        )
        keys = self._empty_cache(B, S, self.embed.tokens.weight)
        values = self._empty_cache(B, S, self.embed.tokens.weight)
        x = self.embed.forward(src, positions)
        rotary = self.embed.rotary(positions)
        for i, layer in enumerate(self.layers):
            x = layer.forward_cached(x, keys[i], values[i], plan, rotary)
        return Memory(lengths=src_lengths, keys=keys, values=values)

    def start(self, memory: Memory, capacity: int = 64) -> DecoderState:
        """A cache holding each row's prefix, with room for ``capacity`` target tokens."""
        B, _, S, _ = memory.keys[0].shape
        keys = self._empty_cache(B, S + capacity, memory.keys[0])
        values = self._empty_cache(B, S + capacity, memory.keys[0])
        for cache, prefilled in ((keys, memory.keys), (values, memory.values)):
            for layer_cache, layer_prefix in zip(cache, prefilled, strict=True):
                layer_cache[:, :, :S] = layer_prefix
        return DecoderState(
            keys=keys,
            values=values,
            lengths=torch.zeros_like(memory.lengths),
            base=memory.lengths.clone(),
        )

    def step(self, state: DecoderState, tokens: Tensor, n_new: Tensor | None = None) -> Tensor:
        """Append tokens (B, K) after each row's prefix and target so far; logits (B, K, V),
        unspecified past ``n_new[b]`` as in the encoder-decoder."""
        K = tokens.shape[1]
        plan = plan_step(state, K, n_new)
        positions = new_token_positions(state.base + state.lengths, K)
        x = plan.flat(self.embed.forward(tokens, positions))
        rotary = self.embed.rotary(positions)
        for i, layer in enumerate(self.layers):
            x = layer.forward_cached(x, state.keys[i], state.values[i], plan, rotary)
        state.lengths = state.lengths + (K if n_new is None else n_new)
        return plan.dense(self._out(x), clear=False)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V) of the target, no cache.

        The sequence is [src padded to S ; tgt_in]; the target of row b sits at
        positions ``P_b ..``, right after its real prefix, as in the cache.
        """
        B, S = src.shape
        T = tgt_in.shape[1]
        device = src.device
        src_positions = torch.arange(S, device=device).expand(B, S)
        tgt_positions = new_token_positions(src_lengths, T)
        positions = torch.cat([src_positions, tgt_positions], dim=1)  # (B, S + T)
        x = self.embed.forward(torch.cat([src, tgt_in], dim=1), positions)
        rotary = self.embed.rotary(positions)
        mask = self._full_mask(src_lengths, S, T)
        for layer in self.layers:
            x = layer.forward(x, mask, rotary)
        return self._out(x[:, S:])

    def _full_mask(self, src_lengths: Tensor, S: int, T: int) -> Tensor:
        """(B, 1, S + T, S + T): prefix block as in ``encode``; targets see the real prefix
        and earlier targets."""
        B = src_lengths.shape[0]
        device = src_lengths.device
        mask = torch.zeros(B, 1, S + T, S + T, dtype=torch.bool, device=device)
        mask[:, :, :S, :S] = self._prefix_mask(src_lengths, S)
        mask[:, :, S:, :S] = padding_mask(src_lengths, S)[:, None, None, :]
        mask[:, :, S:, S:] = torch.ones(T, T, dtype=torch.bool, device=device).tril()
        return mask
