"""Encoder-decoder Transformer (Vaswani et al. 2017) on the decoder-state API.

Pre-LN by default; post-LN, embedding layer norm, scaled embeddings, learned
positions with an offset and a final logits bias are options, so BART and
Marian checkpoints map onto it (see ``seqweave.models.hf_import``).

``EncoderDecoderStack`` is the encoder, the decoder layers and the cache they write:
what the non-autoregressive drafter and editor share with the encoder-decoder.
``EncoderDecoder`` adds the decoding API's ``step``, the teacher-forced
``forward`` and the heads of ``models/heads.py``: its readout (the output layer,
or the sequence-to-action head, whose fused log-probabilities ``step`` and
``forward`` then return) and the training heads that objectives read.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.errors import ConfigError
from seqweave.models.base import Seq2SeqBase, causal_mask, new_token_positions
from seqweave.models.e2s2 import RestoreHead, restore_logits
from seqweave.models.embedding import Embedder, token_embedding
from seqweave.models.heads import TOKEN_READOUT, Readout, attach_heads
from seqweave.models.layers import DecoderLayer, EncoderLayer, padding_mask
from seqweave.models.scalars import ScalarHead
from seqweave.models.seq2action import ActionHead, ActionOutputs
from seqweave.models.state import DecoderState, Memory, plan_step


class EncoderDecoderStack(Seq2SeqBase):
    """Encoder, decoder layers and their cache, without a ``step``: the parts the
    encoder-decoder shares with the drafter and the editor."""

    compiled_decoder = None  # models/compiled.py's CompiledDecoder, set by compile_decoder

    def __init__(self, cfg: ModelConfig):
        encoder_tokens = token_embedding(cfg)
        decoder_tokens = encoder_tokens if cfg.share_embeddings else token_embedding(cfg)
        super().__init__(cfg, decoder_tokens)
        self.encoder_embed = Embedder(cfg, encoder_tokens)
        self.decoder_embed = Embedder(cfg, decoder_tokens)
        self.encoder_layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(cfg, cross=True) for _ in range(cfg.decoder_layers)
        )
        pre = cfg.norm == "pre"
        eps = cfg.layer_norm_eps
        self.encoder_norm = nn.LayerNorm(cfg.d_model, eps=eps) if pre else None
        self.decoder_norm = nn.LayerNorm(cfg.d_model, eps=eps) if pre else None

    # -- encoder ---------------------------------------------------------------------------

    def encode(self, src: Tensor, src_lengths: Tensor, scalars: Tensor | None = None) -> Memory:
        """src (B, S) token ids, src_lengths (B,) -> encoder states (B, S, D); ``scalars``
        (B, S): the values of a scalar-head model's ``<scalar>`` tokens (models/scalars.py)."""
        B, S = src.shape
        positions = torch.arange(S, device=src.device).expand(B, S)
        real = padding_mask(src_lengths, S)  # (B, S)
        mask = None if bool(real.all()) else real[:, None, None, :]
        head = getattr(self, "scalar_head", None)
        added = None if head is None else head.embeddings(src, scalars)
        x = self.encoder_embed.forward(src, positions, added=added)
        rotary = self.encoder_embed.rotary(positions)
        if self.compiled_decoder is not None:  # decode.compile: the loop and norm compiled
            x = self.compiled_decoder.encoder(x, real, rotary)
        else:
            for layer in self.encoder_layers:
                x = layer.forward(x, mask, rotary)
            if self.encoder_norm is not None:
                x = self.encoder_norm(x)
        return Memory(lengths=src_lengths, states=x, mask=real, source=src)

    # -- decoder ---------------------------------------------------------------------------

    def _cross_mask(self, memory: Memory) -> Tensor | None:
        return None if bool(memory.mask.all()) else memory.mask[:, None, None, :]

    def final_states(self, x: Tensor) -> Tensor:
        """The last decoder layer's output -> final decoder states (after the final norm)."""
        return x if self.decoder_norm is None else self.decoder_norm(x)

    def _decoder_out(self, x: Tensor) -> Tensor:
        return self.logits(self.final_states(x))

    def start(self, memory: Memory, capacity: int = 64) -> DecoderState:
        """An empty decoder cache for the rows of ``memory``; cross-attention keys and values
        are projected here once."""
        B = memory.states.shape[0]
        cross = [layer.cross.project_memory(memory.states) for layer in self.decoder_layers]
        zeros = torch.zeros(B, dtype=torch.long, device=memory.states.device)
        state = DecoderState(
            keys=self._empty_cache(B, capacity, memory.states),
            values=self._empty_cache(B, capacity, memory.states),
            lengths=zeros,
            base=zeros.clone(),
            cross_keys=[k for k, _ in cross],
            cross_values=[v for _, v in cross],
            cross_mask=self._cross_mask(memory),
            memory_lengths=memory.lengths,
        )
        return state

    def _extend_cache(
        self,
        state: DecoderState,
        tokens: Tensor,
        n_new: Tensor | None,
        embedded: Tensor | None = None,
        positions: Tensor | None = None,
    ):
        """The decoder layers of ``step``: write the new tokens to the cache and return
        their final hidden states (packed as the step's plan says) and the plan.
        ``embedded`` and ``positions`` replace the tokens' own embeddings and position
        ids (GAD's drafter feeds mask slots this way)."""
        K = tokens.shape[1]
        plan = plan_step(state, K, n_new)
        if positions is None:
            positions = new_token_positions(state.lengths, K)  # (B, K)
        if embedded is None:
            embedded = self.decoder_embed.forward(tokens, positions)
        x = plan.flat(embedded)
        rotary = self.decoder_embed.rotary(positions)
        compiled = self.compiled_decoder
        if compiled is not None and compiled.accepts(plan):
            x = compiled.layers(x, state, plan, rotary)
        else:
            for i, layer in enumerate(self.decoder_layers):
                cross_kv = (state.cross_keys[i], state.cross_values[i])
                x = layer.forward_cached(
                    x, state.keys[i], state.values[i], plan, rotary, cross_kv, state.cross_mask
                )
        state.lengths = state.lengths + (K if n_new is None else n_new)
        return x, plan


class EncoderDecoder(EncoderDecoderStack):
    # set by attach_heads from models/heads.py's HEADS (None where the config leaves one off)
    action_head: ActionHead | None
    contrastive_head: nn.Module | None
    restore_head: RestoreHead | None
    scalar_head: ScalarHead | None
    tag_head: nn.Module | None

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        attach_heads(self, cfg)  # after the layers: they start the same with or without heads

    @property
    def readout(self) -> Readout:
        """What ``step`` and ``forward`` return scores through (models/heads.py): the
        action head when the model has one, else the output layer."""
        return TOKEN_READOUT if self.action_head is None else self.action_head

    def restore_logits(self, states: Tensor) -> Tensor:
        """E2S2's token logits (B, S, V) from encoder states (B, S, D): ``models.e2s2``."""
        return restore_logits(self, states)

    def start(self, memory: Memory, capacity: int = 64) -> DecoderState:
        state = super().start(memory, capacity)
        self.readout.start(state, memory)
        return state

    def step(self, state: DecoderState, tokens: Tensor, n_new: Tensor | None = None) -> Tensor:
        """Append tokens (B, K) to each row's cache; return logits (B, K, V).

        Only the first ``n_new[b]`` tokens of row b count: the row's length grows
        by that much, and the rest are stale slots that later steps overwrite.
        Logits at those padding positions are unspecified.
        """
        before = state.lengths
        x, plan = self._extend_cache(state, tokens, n_new)
        return self.readout.step(self, state, plan, before, tokens, x)

    def step_argmax(
        self, state: DecoderState, tokens: Tensor, n_new: Tensor | None = None
    ) -> Tensor:
        """``step`` for callers that read only the argmax: tokens (B, K) long, the argmax
        of the logits ``step`` would return (``decode.screen``; through the readout's
        ``step_argmax`` when it has one, which for the output layer skips most of the
        float32 product, models/argmax_screen.py)."""
        before = state.lengths
        x, plan = self._extend_cache(state, tokens, n_new)
        readout = self.readout
        if hasattr(readout, "step_argmax"):
            return readout.step_argmax(self, state, plan, before, tokens, x)
        return readout.step(self, state, plan, before, tokens, x).argmax(dim=-1)

    # -- training --------------------------------------------------------------------------

    def hidden_states(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor
    ) -> tuple[Memory, Tensor]:
        """Teacher-forced encoder memory and final decoder states (B, T, D), before the
        output projection: the seam for objectives that act on representations rather than
        on logits (encoder-side and contrastive losses); ``logits(hidden)`` gives the
        logits ``forward`` returns."""
        memory = self.encode(src, src_lengths)
        B, T = tgt_in.shape
        positions = torch.arange(T, device=tgt_in.device).expand(B, T)
        mask = causal_mask(T, tgt_in.device)
        cross_mask = self._cross_mask(memory)
        x = self.decoder_embed.forward(tgt_in, positions)
        rotary = self.decoder_embed.rotary(positions)
        for layer in self.decoder_layers:
            cross_kv = layer.cross.project_memory(memory.states)
            x = layer.forward(x, mask, rotary, cross_kv, cross_mask)
        return memory, self.final_states(x)

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        actions: bool = False,
        states: bool = False,
        scalars: Tensor | None = None,
        regression: bool = False,
    ) -> Tensor | ActionOutputs | tuple[Memory, Tensor]:
        """Teacher-forced logits (B, T, V) for decoder inputs tgt_in (B, T), no cache (an
        action model's fused log-probabilities; with ``actions``, its ActionOutputs). With
        ``states``, what ``hidden_states`` returns, through ``forward`` so that a
        data-parallel wrapper sees the pass. With ``regression``, the scalar head's
        outputs (B, M) at the source's ``<mask>`` tokens, encoder only (tgt_in unused),
        ``scalars`` (B, S) the source's float channel."""
        if regression:
            if self.scalar_head is None:
                raise ConfigError("regression needs a model with model.scalar_head = true")
            memory = self.encode(src, src_lengths, scalars)
            return self.scalar_head.predict(memory.states, src)
        memory, hidden = self.hidden_states(src, src_lengths, tgt_in)
        if states:
            return memory, hidden
        return self.readout.teacher_forced(self, memory, hidden, tgt_in, full=actions)
