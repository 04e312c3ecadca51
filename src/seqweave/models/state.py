"""The decoder state: a per-row KV cache with ragged lengths.

This is the seam every decoder is written against (see DESIGN.md). Row b of
the cache holds ``base[b]`` prefix slots (the source of a prefix LM; 0 for an
encoder-decoder) followed by ``lengths[b]`` decoded tokens. The slot of a token
is its index in the row, so:

- ``step`` writes K new tokens of row b at slots ``base[b] + lengths[b] + k``;
- ``rollback`` only lowers ``lengths[b]``: slots past it are masked from then on
  and overwritten by the next ``step``, so a rejected draft costs nothing;
- ``reorder`` gathers rows (beam search, and dropping finished rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Memory:
    """What ``encode`` returns and ``start`` consumes.

    Encoder-decoder: ``states`` (B, S, D) are the encoder outputs and ``mask``
    (B, S) is True at real source tokens. Prefix LM: ``keys``/``values`` hold the
    prefilled per-layer cache of the prefix, (B, H, S, Dh) each, and ``lengths``
    (B,) the prefix lengths.
    """

    lengths: Tensor  # (B,) source tokens per row
    states: Tensor | None = None  # (B, S, D)
    mask: Tensor | None = None  # (B, S) bool, True = real token
    keys: list[Tensor] = field(default_factory=list)  # per layer (B, H, S, Dh)
    values: list[Tensor] = field(default_factory=list)
    cross_keys: list[Tensor] = field(default_factory=list)  # per layer (B, H, S, Dh)
    cross_values: list[Tensor] = field(default_factory=list)
    source: Tensor | None = None  # (B, S) the source token ids (encoder-decoder)

    def select(self, index: Tensor) -> Memory:
        """The memory of rows ``index`` (B',), in that order."""
        return Memory(
            lengths=self.lengths.index_select(0, index),
            states=None if self.states is None else self.states.index_select(0, index),
            mask=None if self.mask is None else self.mask.index_select(0, index),
            source=None if self.source is None else self.source.index_select(0, index),
            keys=[k.index_select(0, index) for k in self.keys],
            values=[v.index_select(0, index) for v in self.values],
            cross_keys=[k.index_select(0, index) for k in self.cross_keys],
            cross_values=[v.index_select(0, index) for v in self.cross_values],
        )


@dataclass
class DecoderState:
    """Per-row self-attention cache plus whatever the model attends to besides.

    ``cross_keys``/``cross_values`` are the encoder-decoder's per-layer
    projections of the memory (or a partial-attention LM's of its source),
    (B, H, S, Dh), computed once in ``encode`` or ``start``;
    ``cross_mask`` (B, 1, 1, S) masks padded source positions, or is None when
    no row is padded.

    Two optional dicts carry what a model keeps beside the caches (the
    sequence-to-action head keeps the source ids and encoder states, and its
    source pointer): ``memory_rows`` holds per-row tensors over memory
    positions, (B, S, ...), gathered and trimmed with the cross-attention
    memory; ``slot_values`` holds one value per cache slot, (B, capacity), that
    ``step`` writes at a token's slot like its keys. Since a slot's value may
    depend only on the tokens up to it, ``rollback`` (which only lowers
    ``lengths``) leaves every kept value right, and ``reorder``/``extend``
    gather and stack them like the cache.
    """

    keys: list[Tensor]  # per layer (B, H, capacity, Dh)
    values: list[Tensor]
    lengths: Tensor  # (B,) decoded tokens per row
    base: Tensor  # (B,) prefix slots before the first decoded token
    cross_keys: list[Tensor] = field(default_factory=list)
    cross_values: list[Tensor] = field(default_factory=list)
    cross_mask: Tensor | None = None
    memory_lengths: Tensor | None = None  # (B,) real memory positions per row (enc-dec)
    memory_rows: dict[str, Tensor] = field(default_factory=dict)  # each (B, S, ...)
    slot_values: dict[str, Tensor] = field(default_factory=dict)  # each (B, capacity)

    @property
    def batch_size(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def capacity(self) -> int:
        return int(self.keys[0].shape[2]) if self.keys else 0

    def ensure_capacity(self, needed: int, exact: bool = False) -> None:
        """Grow every layer's cache to at least ``needed`` slots (doubling, amortised;
        to exactly ``needed`` with ``exact``)."""
        if needed <= self.capacity:
            return
        size = needed if exact else max(needed, 2 * self.capacity)
        for cache in (self.keys, self.values):
            for i, old in enumerate(cache):
                B, H, T, Dh = old.shape
                new = old.new_zeros(B, H, size, Dh)
                new[:, :, :T] = old
                cache[i] = new
        for name, old in self.slot_values.items():
            new = old.new_zeros(old.shape[0], size)
            new[:, : old.shape[1]] = old
            self.slot_values[name] = new

    def rollback(self, keep: Tensor) -> None:
        """Forget, per row, every decoded token past ``keep[b]`` (B,)."""
        keep = keep.to(self.lengths.device, self.lengths.dtype)
        if bool((keep > self.lengths).any()) or bool((keep < 0).any()):
            raise ValueError(
                f"rollback keep={keep.tolist()} must lie within 0..lengths={self.lengths.tolist()}"
            )
        self.lengths = keep.clone()

    def used(self, rows: Tensor | None = None) -> int:
        """Cache slots holding real tokens in the longest of ``rows`` (all rows if None)."""
        ends = self.base + self.lengths
        if rows is not None:
            ends = ends.index_select(0, rows)
        return int(ends.max()) if ends.numel() else 0

    def reorder(self, index: Tensor) -> None:
        """Keep rows ``index`` (B',) in that order; rows may repeat (beam search).

        Only the slots in use (plus some headroom) are copied, not the whole
        capacity: continuous batching reorders whenever requests leave.
        """
        index = index.to(self.lengths.device)
        size = min(self.capacity, self.used(index) + HEADROOM)
        self.keys = [k[:, :, :size].index_select(0, index) for k in self.keys]
        self.values = [v[:, :, :size].index_select(0, index) for v in self.values]
        self.slot_values = {
            name: v[:, :size].index_select(0, index) for name, v in self.slot_values.items()
        }
        if self.memory_lengths is not None:
            self.memory_lengths = self.memory_lengths.index_select(0, index)
            span = int(self.memory_lengths.max()) if len(index) else 0
            self.cross_keys = [k[:, :, :span].index_select(0, index) for k in self.cross_keys]
            self.cross_values = [v[:, :, :span].index_select(0, index) for v in self.cross_values]
            self.cross_mask = _memory_mask(self.memory_lengths, span)
            self.memory_rows = {
                name: v[:, :span].index_select(0, index) for name, v in self.memory_rows.items()
            }
        self.lengths = self.lengths.index_select(0, index)
        self.base = self.base.index_select(0, index)

    def extend(self, other: DecoderState) -> None:
        """Append the rows of ``other`` (continuous batching: new requests join a running
        batch). Caches and memories of different sizes are fitted to one size (only
        slots in use are copied); padding is masked."""
        size = max(self.used(), other.used()) + HEADROOM
        self.keys = [_stack(a, b, size) for a, b in zip(self.keys, other.keys, strict=True)]
        self.values = [_stack(a, b, size) for a, b in zip(self.values, other.values, strict=True)]
        self.slot_values = {
            name: _stack_rows(v, other.slot_values[name], size)
            for name, v in self.slot_values.items()
        }
        if self.memory_lengths is not None:
            self.memory_lengths = torch.cat([self.memory_lengths, other.memory_lengths])
            span = int(self.memory_lengths.max())
            pairs = zip(self.cross_keys, other.cross_keys, strict=True)
            self.cross_keys = [_stack(a, b, span) for a, b in pairs]
            pairs = zip(self.cross_values, other.cross_values, strict=True)
            self.cross_values = [_stack(a, b, span) for a, b in pairs]
            self.cross_mask = _memory_mask(self.memory_lengths, span)
            self.memory_rows = {
                name: _stack_rows(v, other.memory_rows[name], span)
                for name, v in self.memory_rows.items()
            }
        self.lengths = torch.cat([self.lengths, other.lengths])
        self.base = torch.cat([self.base, other.base])


HEADROOM = 32  # spare cache slots kept when a state is copied


def _stack(first: Tensor, second: Tensor, size: int) -> Tensor:
    """Rows of two (B, H, T, Dh) tensors in one, their T cut or zero-padded to ``size``."""
    B1, B2 = first.shape[0], second.shape[0]
    out = first.new_zeros(B1 + B2, first.shape[1], size, first.shape[3])
    out[:B1, :, : min(size, first.shape[2])] = first[:, :, :size]
    out[B1:, :, : min(size, second.shape[2])] = second[:, :, :size]
    return out


def _stack_rows(first: Tensor, second: Tensor, size: int) -> Tensor:
    """Rows of two (B, T, ...) tensors in one, their T cut or zero-padded to ``size``."""
    B1, B2 = first.shape[0], second.shape[0]
    out = first.new_zeros(B1 + B2, size, *first.shape[2:])
    out[:B1, : min(size, first.shape[1])] = first[:, :size]
    out[B1:, : min(size, second.shape[1])] = second[:, :size]
    return out


def _memory_mask(lengths: Tensor, span: int) -> Tensor | None:
    """(B, 1, 1, span) True at real memory positions; None when no row is padded."""
    real = torch.arange(span, device=lengths.device)[None, :] < lengths[:, None]
    return None if bool(real.all()) else real[:, None, None, :]


@dataclass
class StepPlan:
    """Where a ``step`` writes and what each new query may see; built once per step
    and shared by every layer.

    ``slots`` (B, K) are the cache slots of the new tokens, ``used`` the number
    of cache slots the attention reads, ``mask`` (B, 1, K, used) is True where a
    query may attend (None when nothing needs masking).

    When rows bring different numbers of real tokens (a draft of 12 beside a
    draft of 0), ``packed`` lists the real positions of the flattened (B * K)
    block: the position-wise work (projections, feed-forward, output layer) runs
    on those alone, and only attention sees the padded (B, K) layout.
    """

    slots: Tensor
    used: int
    mask: Tensor | None
    batch_index: Tensor  # (B, 1) row numbers, for indexed cache writes
    uniform_start: int | None  # first slot when every row writes at the same slots
    packed: Tensor | None = None  # (N,) real positions in the flattened block

    def flat(self, x: Tensor) -> Tensor:
        """(B, K, ...) -> (N, ...) real positions only (identity when not packed)."""
        if self.packed is None:
            return x
        return x.reshape(-1, *x.shape[2:]).index_select(0, self.packed)

    def dense(self, x: Tensor, clear: bool = True) -> Tensor:
        """(N, ...) -> (B, K, ...) (identity when not packed); padding holds zeros, or with
        ``clear=False`` unspecified values (for outputs nobody reads there)."""
        if self.packed is None:
            return x
        B, K = self.slots.shape
        out = (x.new_zeros if clear else x.new_empty)(B * K, *x.shape[1:])
        out.index_copy_(0, self.packed, x)
        return out.view(B, K, *x.shape[1:])


PACK_BELOW = 0.75  # pack a step when real tokens fill less than this share of the block


def plan_step(state: DecoderState, num_new: int, n_new: Tensor | None = None) -> StepPlan:
    """Plan the cache writes and the attention mask for K = ``num_new`` new tokens per row,
    of which the first ``n_new[b]`` are real."""
    B = state.batch_size
    device = state.lengths.device
    start = state.base + state.lengths  # (B,)
    offsets = torch.arange(num_new, device=device)
    slots = start[:, None] + offsets[None, :]  # (B, K)
    first, last = int(start.min()), int(start.max())
    used = last + num_new
    state.ensure_capacity(used)
    uniform = first == last
    if uniform and num_new == 1:
        mask = None  # every row sees exactly its own `used` slots
    else:
        key_slots = torch.arange(used, device=device)
        mask = key_slots[None, None, :] <= slots[:, :, None]  # (B, K, used)
        mask = mask[:, None]
    batch_index = torch.arange(B, device=device)[:, None]
    packed = None
    if n_new is not None and int(n_new.sum()) < PACK_BELOW * B * num_new:
        real = offsets[None, :] < n_new[:, None]  # (B, K)
        packed = real.reshape(-1).nonzero().squeeze(1)
    return StepPlan(slots, used, mask, batch_index, first if uniform else None, packed)
