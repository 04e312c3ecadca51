"""The non-autoregressive block drafter of generalized aggressive decoding (Ge et al. 2022).

Given the source and the tokens accepted so far, it predicts the next
``draft_block`` tokens in one pass, mask-predict style: the decoder input is
the accepted prefix followed by k mask slots, and every slot predicts its own
position. The autoregressive model then verifies the block in one ``step``
(``decoding.generalized``), so the drafter's mistakes cost speed, never
correctness.

Attention inside the decoder: prefix tokens attend causally to earlier prefix
tokens (so a prefix token's state does not depend on where the block starts),
and mask slots attend to the whole prefix and to the slots before them. Because prefix
states do not depend on the block, one teacher-forced pass trains every block
of a target at once: the target is cut into blocks of k (at a random offset
per batch), and the slot for position p sees the prefix up to its block's
start. ``forward`` therefore has the training loop's signature and returns
logits aligned with the target, so the drafter trains with the ordinary
cross-entropy on sequence-level distillation data (the verifier's own greedy
outputs), as the paper does.

Drafting keeps the prefix in the decoder-state cache (``draft_cached``):
accepted tokens are final, so each pass feeds only the newly accepted ones and
the k slots behind them (with that mask, one ordinary causal ``step``), and
rolls the slots back. ``draft`` recomputes the
whole prefix and is the reference the tests compare against. The drafter does
not decode on its own: it shares the encoder-decoder's layers and cache
(``EncoderDecoderStack``) but has no ``step``, and what decoding asks of it is
the ``BlockDrafter`` protocol.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import torch
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.state import DecoderState, Memory
from seqweave.models.transformer import EncoderDecoderStack

CrossMemory = list[tuple[Tensor, Tensor]]  # per decoder layer: keys, values (B, H, S, Dh)


class BlockDrafter(Protocol):
    """What generalized aggressive decoding (``decoding.generalized``) asks of a drafter:
    a cache of accepted tokens per row, and the next ``block`` tokens' logits from it."""

    config: ModelConfig
    block: int

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory: ...

    def start(self, memory: Memory, capacity: int = 64) -> DecoderState: ...

    def draft_cached(
        self, state: DecoderState, tokens: Tensor, n_new: Tensor, slots: int | None = None
    ) -> Tensor: ...

    def reorder(self, state: DecoderState, index: Tensor) -> None: ...


class NARDrafter(EncoderDecoderStack):
    not_a_decoder: ClassVar[str] = (
        "a nar_drafter model drafts for another model (--decoder gad --draft-model DIR); "
        "it does not decode on its own"
    )

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.mask_vector = nn.Parameter(torch.randn(cfg.d_model) * cfg.d_model**-0.5)

    @property
    def block(self) -> int:
        return self.config.draft_block

    def cross_memory(self, memory: Memory) -> CrossMemory:
        """Cross-attention keys and values of every decoder layer, projected once per source."""
        return [layer.cross.project_memory(memory.states) for layer in self.decoder_layers]

    # -- training ----------------------------------------------------------------------------

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Logits (B, T, V) aligned with the decoder outputs of ``tgt_in`` (B, T).

        Position p is predicted by a mask slot of the block that starts at
        ``cut[p]``: it sees ``tgt_in[:, : cut[p] + 1]`` (the start token and the
        target up to the block) and the other slots of its block.
        """
        memory = self.encode(src, src_lengths)
        B, T = tgt_in.shape
        device = tgt_in.device
        k = self.block
        offset = int(torch.randint(k, (1,))) if self.training else 0
        # slots run on to the end of the last block, so that every block but a first one
        # cut short by the offset has its k slots, as in drafting
        last_cut = max(0, T - 1 - (T - 1 + offset) % k)
        p = torch.arange(last_cut + k, device=device)  # the position each slot predicts
        cut = (p - (p + offset) % k).clamp(min=0)  # block start of the slot predicting p
        j = torch.arange(T, device=device)
        prefix_sees = j[None, :] <= j[:, None]  # (T, T) causal
        slot_sees_prefix = j[None, :] <= cut[:, None]
        slot_sees_slot = (cut[None, :] == cut[:, None]) & (p[None, :] <= p[:, None])
        mask = torch.cat(
            [
                torch.cat([prefix_sees, prefix_sees.new_zeros(T, len(p))], dim=1),
                torch.cat([slot_sees_prefix, slot_sees_slot], dim=1),
            ]
        )[None, None]  # (1, 1, T + slots, T + slots)
        slot_positions = (p + 1).clamp(max=self.config.max_positions - 1).expand(B, len(p))
        cross = self.cross_memory(memory)
        return self._slots(cross, memory.mask, tgt_in, slot_positions, mask)[:, :T]

    # -- drafting ----------------------------------------------------------------------------

    def draft(
        self, cross: CrossMemory, source_mask: Tensor, prefix: Tensor, prefix_lengths: Tensor
    ) -> Tensor:
        """Logits (B, k, V) for the k tokens after each row's prefix.

        ``prefix`` (B, P) holds the start token and the accepted tokens, padded;
        ``prefix_lengths`` (B,) counts the real ones.
        """
        B, P = prefix.shape
        k = self.block
        device = prefix.device
        j = torch.arange(P, device=device)
        prefix_sees = (j[None, :] <= j[:, None]).expand(B, P, P)
        real = (j[None, :] < prefix_lengths[:, None])[:, None, :].expand(B, k, P)
        top = torch.cat([prefix_sees, prefix_sees.new_zeros(B, P, k)], dim=2)
        slots_see = torch.ones(k, k, dtype=torch.bool, device=device).tril().expand(B, k, k)
        bottom = torch.cat([real, slots_see], dim=2)
        mask = torch.cat([top, bottom], dim=1)[:, None]  # (B, 1, P + k, P + k)
        slot_positions = prefix_lengths[:, None] + torch.arange(k, device=device)[None, :]
        return self._slots(cross, source_mask, prefix, slot_positions, mask)

    def draft_cached(
        self, state: DecoderState, tokens: Tensor, n_new: Tensor, slots: int | None = None
    ) -> Tensor:
        """Logits (B, s, V) for the first s <= k tokens after each row's prefix (s =
        ``slots``, all k by default), with the prefix in a cache: ``tokens`` (B, T) are
        each row's accepted tokens not yet in ``state`` (the first ``n_new[b]`` count; the
        first call brings the start token). Equal to ``draft`` over the whole prefix; only
        the new tokens and the slots cost work.

        One pass through the layers: each row feeds its new tokens followed by its
        slots (causal attention is exactly the drafter's mask, so the first s slots do
        not depend on the rest), then the slots are rolled back out of the cache.
        """
        k = self.block if slots is None else min(slots, self.block)
        device = tokens.device
        width = int(n_new.max()) + k
        j = torch.arange(width, device=device)[None, :]
        real = j < n_new[:, None]
        slot = ~real & (j < n_new[:, None] + k)
        feed = torch.full((tokens.shape[0], width), self.config.pad_id, device=device)
        feed[:, : tokens.shape[1]] = tokens[:, :width]
        feed = feed.masked_fill(~real, self.config.pad_id)  # the pad embedding is zero
        positions = (state.lengths[:, None] + j).clamp(max=self.config.max_positions - 1)
        x = self.decoder_embed.forward(feed, positions) + slot[..., None] * self.mask_vector
        hidden, plan = self._extend_cache(state, feed, n_new + k, x, positions)
        state.lengths = state.lengths - k  # the slots leave the cache
        at = n_new[:, None] + torch.arange(k, device=device)[None, :]  # (B, k)
        hidden = plan.dense(hidden, clear=False)
        slots = hidden.gather(1, at[..., None].expand(-1, -1, hidden.shape[-1]))
        return self._decoder_out(slots)

    def _slots(
        self,
        cross: CrossMemory,
        source_mask: Tensor,
        prefix: Tensor,
        slot_positions: Tensor,
        mask: Tensor,
    ) -> Tensor:
        """Run the decoder over prefix tokens and mask slots; logits of the slots."""
        B, P = prefix.shape
        prefix_positions = torch.arange(P, device=prefix.device).expand(B, P)
        pad = torch.full_like(slot_positions, self.config.pad_id)  # the pad embedding is zero
        x = torch.cat(
            [
                self.decoder_embed.forward(prefix, prefix_positions),
                self.decoder_embed.forward(pad, slot_positions) + self.mask_vector,
            ],
            dim=1,
        )
        positions = torch.cat([prefix_positions, slot_positions], dim=1)
        rotary = self.decoder_embed.rotary(positions)
        cross_mask = None if bool(source_mask.all()) else source_mask[:, None, None, :]
        for layer, cross_kv in zip(self.decoder_layers, cross, strict=True):
            x = layer.forward(x, mask, rotary, cross_kv, cross_mask)
        return self._decoder_out(x[:, P:])
