"""Decoder-only prefix LM: the source is a prefix, the target is predicted after it.

Attention inside the prefix is bidirectional (or causal, by config); target
tokens attend to the whole prefix and causally to earlier target tokens. The
loss is on the target only. ``encode`` prefills the cache with the prefix, so
the decoders drive this model through the same ``step`` as the encoder-decoder.

Layout: row b of the cache holds its prefix in slots ``0 .. P_b - 1`` and its
target from slot ``P_b`` on (``state.base = P_b``).

With ``model.partial_attention`` it is the partial-attention LM (PALM) of Fu et
al. (2023), "Decoder-Only or Encoder-Decoder? Interpreting Language Model as a
Regularized Encoder-Decoder": a decoder-only LM loses sight of its source as the
target grows (attention degeneration), so every layer gets a partial-attention
sublayer over the source alone (:class:`PartialAttentionLayer`), target
positions restart at 0 instead of continuing after the source, and a segment
embedding marks source and target tokens. ``encode`` then also keeps each
layer's partial-attention keys and values, which ``start`` puts into the state's
cross-attention slots, so ``rollback``/``reorder``/``extend`` treat them as the
encoder-decoder's memory. Without it, positions equal cache slots.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.base import Seq2SeqBase, new_token_positions
from seqweave.models.embedding import Embedder, token_embedding
from seqweave.models.layers import DecoderLayer, PartialAttentionLayer, padding_mask
from seqweave.models.state import DecoderState, Memory, StepPlan, plan_step

SOURCE, TARGET = 0, 1  # segment ids


class PrefixLM(Seq2SeqBase):
    def __init__(self, cfg: ModelConfig):
        tokens = token_embedding(cfg)
        super().__init__(cfg, tokens)
        self.partial = cfg.partial_attention
        self.embed = Embedder(cfg, tokens)
        self.layers = nn.ModuleList(
            PartialAttentionLayer(cfg) if self.partial else DecoderLayer(cfg, cross=False)
            for _ in range(cfg.decoder_layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.norm == "pre" else None

    def _prefix_mask(self, src_lengths: Tensor, size: int) -> Tensor:
        """(B, 1, S, S): what each prefix slot may see; only real prefix tokens are keys."""
        real = padding_mask(src_lengths, size)[:, None, None, :]  # (B, 1, 1, S)
        if self.config.prefix_attention == "bidirectional":
            return real.expand(-1, 1, size, size)
        return real & torch.ones(size, size, dtype=torch.bool, device=src_lengths.device).tril()

    def _segments(self, segment: int, size: int, device: torch.device) -> Tensor | None:
        """(size,) segment ids, or None without a segment embedding."""
        if not self.partial:
            return None
        return torch.full((size,), segment, dtype=torch.long, device=device)

    def _target_positions(self, src_lengths: Tensor, done: Tensor, count: int) -> Tensor:
        """(B, count) position ids of the next ``count`` target tokens after ``done`` (B,):
        after the source, or from 0 with partial attention."""
        return new_token_positions(done if self.partial else src_lengths + done, count)

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
        x = self.embed.forward(src, positions, self._segments(SOURCE, S, src.device))
        rotary = self.embed.rotary(positions)
        memory = Memory(lengths=src_lengths, keys=keys, values=values)
        for i, layer in enumerate(self.layers):
            if self.partial:
                x, (partial_k, partial_v) = layer.forward_source_cached(
                    x, keys[i], values[i], plan, rotary
                )
                memory.cross_keys.append(partial_k)
                memory.cross_values.append(partial_v)
            else:
                x = layer.forward_cached(x, keys[i], values[i], plan, rotary)
        if self.partial:
            memory.mask = padding_mask(src_lengths, S)
        return memory

    def start(self, memory: Memory, capacity: int = 64) -> DecoderState:
        """A cache holding each row's prefix, with room for ``capacity`` target tokens."""
        B, _, S, _ = memory.keys[0].shape
        keys = self._empty_cache(B, S + capacity, memory.keys[0])
        values = self._empty_cache(B, S + capacity, memory.keys[0])
        for cache, prefilled in ((keys, memory.keys), (values, memory.values)):
            for layer_cache, layer_prefix in zip(cache, prefilled, strict=True):
                layer_cache[:, :, :S] = layer_prefix
        state = DecoderState(
            keys=keys,
            values=values,
            lengths=torch.zeros_like(memory.lengths),
            base=memory.lengths.clone(),
        )
        if self.partial:
            state.cross_keys = list(memory.cross_keys)
            state.cross_values = list(memory.cross_values)
            state.cross_mask = _source_mask(memory.mask)
            state.memory_lengths = memory.lengths
        return state

    def step(self, state: DecoderState, tokens: Tensor, n_new: Tensor | None = None) -> Tensor:
        """Append tokens (B, K) after each row's prefix and target so far; logits (B, K, V),
        unspecified past ``n_new[b]`` as in the encoder-decoder."""
        K = tokens.shape[1]
        plan = plan_step(state, K, n_new)
        positions = self._target_positions(state.base, state.lengths, K)
        segments = self._segments(TARGET, K, tokens.device)
        x = plan.flat(self.embed.forward(tokens, positions, segments))
        rotary = self.embed.rotary(positions)
        for i, layer in enumerate(self.layers):
            partial_kv = (state.cross_keys[i], state.cross_values[i]) if self.partial else None
            x = layer.forward_cached(
                x, state.keys[i], state.values[i], plan, rotary, partial_kv, state.cross_mask
            )
        state.lengths = state.lengths + (K if n_new is None else n_new)
        return plan.dense(self._out(x), clear=False)

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, segments: Tensor | None = None
    ) -> Tensor:
        """Teacher-forced logits (B, T, V) of the target, no cache.

        The sequence is [src padded to S ; tgt_in]; the target of row b has the
        positions it has in the cache (right after its real prefix, or from 0).
        ``segments`` (B, T), for packed rows (``data.pack_sequences``), numbers the
        sequences packed into a row's target: a target token then sees only the prefix
        and the earlier tokens of its own sequence, and its position restarts with the
        sequence, so each packed sequence gets the logits it would get alone.
        """
        B, S = src.shape
        T = tgt_in.shape[1]
        device = src.device
        own = torch.ones(T, T, dtype=torch.bool, device=device).tril()  # (T, T)
        done = torch.zeros_like(tgt_in) + torch.arange(T, device=device)  # (B, T)
        if segments is not None:
            own = own & (segments[:, :, None] == segments[:, None, :])  # (B, T, T)
            done = own.sum(-1) - 1  # (B, T) earlier tokens of the same sequence
        src_positions = torch.arange(S, device=device).expand(B, S)
        tgt_positions = done if self.partial else src_lengths[:, None] + done
        positions = torch.cat([src_positions, tgt_positions], dim=1)  # (B, S + T)
        segment_ids = None
        if self.partial:
            segment_ids = torch.cat(
                [self._segments(SOURCE, S, device), self._segments(TARGET, T, device)]
            )
        x = self.embed.forward(torch.cat([src, tgt_in], dim=1), positions, segment_ids)
        rotary = self.embed.rotary(positions)
        mask = self._full_mask(src_lengths, S, own)
        source_mask = _source_mask(padding_mask(src_lengths, S))
        for layer in self.layers:
            if self.partial:
                x = layer.forward_joint(x, mask, rotary, S, source_mask)
            else:
                x = layer.forward(x, mask, rotary)
        return self._out(x[:, S:])

    def _full_mask(self, src_lengths: Tensor, S: int, own: Tensor) -> Tensor:
        """(B, 1, S + T, S + T): prefix block as in ``encode``; targets see the real prefix
        and what ``own`` (T, T) or (B, T, T) allows of the targets."""
        B = src_lengths.shape[0]
        T = own.shape[-1]
        device = src_lengths.device
        mask = torch.zeros(B, 1, S + T, S + T, dtype=torch.bool, device=device)
        mask[:, :, :S, :S] = self._prefix_mask(src_lengths, S)
        mask[:, :, S:, :S] = padding_mask(src_lengths, S)[:, None, None, :]
        mask[:, :, S:, S:] = own if own.dim() == 2 else own[:, None]
        return mask


def _source_mask(real: Tensor) -> Tensor | None:
    """(B, S) True at real source tokens -> (B, 1, 1, S), or None when no row is padded."""
    return None if bool(real.all()) else real[:, None, None, :]
