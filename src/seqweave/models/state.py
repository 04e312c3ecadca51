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
    fixed: bool = False  # a view of a SlotPool: its caches never grow

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
        if self.fixed:
            raise RuntimeError(f"a slot cache of {self.capacity} slots cannot hold {needed}")
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

    def copy_rows(self, rows: Tensor, sources: Tensor) -> None:
        """Row ``rows[i]`` becomes a copy of row ``sources[i]`` (B',) (a beam group inside a
        larger batch: its rows follow their surviving beams while every other row stays
        where it is, so nothing else is copied). The rows must share their memory (a
        group's rows have one source), so only the decoder side is copied: cache slots in
        use, slot values, lengths."""
        rows, sources = rows.to(self.lengths.device), sources.to(self.lengths.device)
        size = self.used(sources)
        for cache in (self.keys, self.values):
            for k in cache:
                k[:, :, :size].index_copy_(0, rows, k[:, :, :size].index_select(0, sources))
        for v in self.slot_values.values():
            v[:, :size].index_copy_(0, rows, v[:, :size].index_select(0, sources))
        self.lengths = self.lengths.index_copy(0, rows, self.lengths.index_select(0, sources))
        self.base = self.base.index_copy(0, rows, self.base.index_select(0, sources))

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


class SlotPool:
    """Decoder memory preallocated for serving: ``rows`` slots, each with ``capacity`` cache
    slots per layer and ``span`` memory positions (cross-attention keys and values, and
    ``memory_rows``), shaped after ``template`` (a state ``start`` returned).

    Rows join by writing a fresh state into free slot rows (``write``: the new rows only) and
    leave by being forgotten; the decoding state is a ``view`` of the first rows, so no row
    already decoding is ever copied and the memory never grows past ``nbytes``.
    """

    def __init__(self, template: DecoderState, rows: int, capacity: int, span: int):
        self.rows, self.capacity, self.span = rows, capacity, span

        def like(t: Tensor, length: int, dim: int) -> Tensor:
            shape = list(t.shape)
            shape[0], shape[dim] = rows, length
            return t.new_zeros(shape)

        self.keys = [like(k, capacity, 2) for k in template.keys]
        self.values = [like(v, capacity, 2) for v in template.values]
        self.slot_values = {n: like(v, capacity, 1) for n, v in template.slot_values.items()}
        self.cross_keys = [like(k, span, 2) for k in template.cross_keys]
        self.cross_values = [like(v, span, 2) for v in template.cross_values]
        self.memory_rows = {n: like(v, span, 1) for n, v in template.memory_rows.items()}
        self.has_memory = template.memory_lengths is not None

    @property
    def nbytes(self) -> int:
        """Bytes the pool holds: its bound, allocated once."""
        tensors = [*self.keys, *self.values, *self.cross_keys, *self.cross_values]
        tensors += [*self.slot_values.values(), *self.memory_rows.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def write(self, slots: Tensor, state: DecoderState) -> None:
        """Put the rows of a fresh ``state`` (its cache slots in use, its memory) into slot
        rows ``slots`` (B,); what lies past them in those rows is stale and masked."""
        used = state.used()
        span = int(state.cross_keys[0].shape[2]) if state.cross_keys else 0
        if state.memory_rows:
            span = max(span, *(int(v.shape[1]) for v in state.memory_rows.values()))
        if used > self.capacity or span > self.span:
            raise ValueError(f"rows of {used} slots / {span} memory positions do not fit")
        caches = [
            *zip(self.keys, state.keys, strict=True),
            *zip(self.values, state.values, strict=True),
        ]
        for pool, new in caches:
            pool.narrow(2, 0, used).index_copy_(0, slots, new.narrow(2, 0, used))
        memory = [*zip(self.cross_keys, state.cross_keys, strict=True)]
        memory += [*zip(self.cross_values, state.cross_values, strict=True)]
        for pool, new in memory:
            pool.narrow(2, 0, new.shape[2]).index_copy_(0, slots, new)
        for name, new in state.slot_values.items():
            self.slot_values[name].narrow(1, 0, used).index_copy_(0, slots, new.narrow(1, 0, used))
        for name, new in state.memory_rows.items():
            width = int(new.shape[1])
            self.memory_rows[name].narrow(1, 0, width).index_copy_(0, slots, new)

    def view(self, count: int, lengths: Tensor, base: Tensor, memory_lengths) -> DecoderState:
        """The decoder state of slot rows 0 .. count - 1 (views: steps write into the pool);
        ``lengths``, ``base`` and ``memory_lengths`` (count,) are the rows' own."""
        span = int(memory_lengths.max()) if self.has_memory and count else 0
        return DecoderState(
            keys=[k[:count] for k in self.keys],
            values=[v[:count] for v in self.values],
            lengths=lengths,
            base=base,
            cross_keys=[k[:count, :, :span] for k in self.cross_keys],
            cross_values=[v[:count, :, :span] for v in self.cross_values],
            cross_mask=_memory_mask(memory_lengths, span) if self.has_memory else None,
            memory_lengths=memory_lengths if self.has_memory else None,
            memory_rows={n: v[:count, :span] for n, v in self.memory_rows.items()},
            slot_values={n: v[:count] for n, v in self.slot_values.items()},
            fixed=True,
        )


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
