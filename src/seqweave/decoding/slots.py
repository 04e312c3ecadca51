"""The serving session's slot cache: rows join and leave a preallocated ``SlotPool`` by slot
index (``models/state.py``).

A session given a pool keeps its decoder state as a view of the pool's first rows. A row
that joins takes the lowest free slot (a hole a finished row left, else the next one); a
row that leaves is only forgotten (its length set to 0, so its idle slot writes nothing
past its first cache slots), and the view shrinks when the last rows leave. Holes that no
new row fills by the next pass are closed by moving the last live rows into them
(``move``: one row's cache slots in use and memory each), so the live rows are always slots
0 .. n - 1 and a pass attends over n rows, not over the dead ones. Nothing else is copied,
and the memory is the pool's, bounded when the server starts.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqweave.models.state import HEADROOM, DecoderState, SlotPool


def slot_pool(model, rows: int, max_source: int, max_new_tokens: int) -> SlotPool:
    """A pool of ``rows`` slots for sources of up to ``max_source`` tokens and outputs of up
    to ``max_new_tokens``: each slot holds a prefix LM's prefix and the output, plus
    ``HEADROOM`` cache slots that a pass's padded draft positions may write."""
    device = model.device
    src = torch.full((1, 1), model.config.eos_id, dtype=torch.long, device=device)
    template = model.start(model.encode(src, torch.ones(1, dtype=torch.long, device=device)))
    prefix = max_source if int(template.base.max()) > 0 else 0
    return SlotPool(template, rows, prefix + max_new_tokens + HEADROOM, max_source)


def place(
    pool: SlotPool, state: DecoderState | None, last: Tensor | None, free: list[int], fresh
) -> tuple[list[int], DecoderState, Tensor]:
    """Write the rows of ``fresh`` (a state ``start`` returned, its last tokens beside it:
    ``fresh = (state, last)``) into the free slots (holes first, then past the view) and
    return their slot positions, the new view and the rows' last tokens.

    Raises:
        RuntimeError: more rows than free slots (the engine admits only what fits).
    """
    new, new_last = fresh
    count = state.batch_size if state is not None else 0
    need = new.batch_size
    positions = (free[:need] + list(range(count, count + need)))[:need]
    end = max(count, positions[-1] + 1)
    if end > pool.rows:
        raise RuntimeError(f"{need} rows do not fit in {pool.rows} slots")
    index = torch.tensor(positions, dtype=torch.long, device=new.lengths.device)
    pool.write(index, new)

    def grown(old: Tensor | None, values: Tensor) -> Tensor:
        out = values.new_zeros(end) if old is None else torch.cat([old, old.new_zeros(end - count)])
        return out.index_copy(0, index, values)

    lengths = grown(None if state is None else state.lengths, new.lengths)
    base = grown(None if state is None else state.base, new.base)
    memory = None
    if new.memory_lengths is not None:
        memory = grown(None if state is None else state.memory_lengths, new.memory_lengths)
    last = grown(last, new_last)
    return positions, pool.view(end, lengths, base, memory), last


def release(pool: SlotPool, state: DecoderState, last: Tensor, keep: int, gone: list[int]):
    """Forget the rows at ``gone`` and drop the view's rows from ``keep`` on (all of them
    free). Returns the new view and last tokens."""
    index = torch.tensor(gone, dtype=torch.long, device=state.lengths.device)
    zeros = torch.zeros(len(gone), dtype=torch.long, device=index.device)
    lengths = state.lengths.index_copy(0, index, zeros)[:keep]
    base = state.base.index_copy(0, index, zeros)[:keep]
    memory = state.memory_lengths
    if memory is not None:  # one stale position each: the span shrinks, nothing is all-masked
        memory = memory.index_copy(0, index, zeros + 1)[:keep]
    return pool.view(keep, lengths, base, memory), last[:keep]


def move(
    pool: SlotPool,
    state: DecoderState,
    last: Tensor,
    sources: list[int],
    targets: list[int],
    keep: int,
) -> tuple[DecoderState, Tensor]:
    """Move the rows at slots ``sources`` into the holes at ``targets`` (in pairs) and end
    the view at ``keep`` (every slot from there on is then free). Each move copies the
    row's cache slots in use and slot values (``DecoderState.copy_rows``, writing into the
    pool through the view), its memory positions and memory rows, and its lengths; what
    lies past them in the target slot is stale and masked, as after ``place``. Returns the
    new view and last tokens."""
    device = state.lengths.device
    source = torch.tensor(sources, dtype=torch.long, device=device)
    target = torch.tensor(targets, dtype=torch.long, device=device)
    state.copy_rows(target, source)  # the decoder side: cache slots in use, lengths, base
    memory = state.memory_lengths
    if memory is not None:
        span = int(memory.index_select(0, source).max())
        tensors = [*state.cross_keys, *state.cross_values]
        for t in tensors:  # (B, H, S, Dh)
            t[:, :, :span].index_copy_(0, target, t[:, :, :span].index_select(0, source))
        for t in state.memory_rows.values():  # (B, S, ...)
            t[:, :span].index_copy_(0, target, t[:, :span].index_select(0, source))
        memory = memory.index_copy(0, target, memory.index_select(0, source))[:keep]
    last = last.index_copy(0, target, last.index_select(0, source))[:keep]
    return pool.view(keep, state.lengths[:keep], state.base[:keep], memory), last


def draft_limit(pool: SlotPool, state: DecoderState) -> int:
    """The most draft tokens any row may bring to a pass without a row's padded positions
    running past the pool's cache slots."""
    return pool.capacity - 1 - int((state.base + state.lengths).max())
