"""Compiling before the first request (``seqweave serve --compile``).

A compiled model (``models/compiled.py``) builds each of its graphs the first time a pass
of that kind comes: seconds on a tiny model, tens of seconds on a real one, during which
every row of the batch would wait. ``warm_up`` runs one pass of each kind the engine's
passes can take, on rows of the engine's own slot cache (the graphs see the cache's
strides), before the server says it is ready: one row or three, one token or a draft,
rows at the same cache slot or at different ones, drafts of one length or packed ones of
different lengths, sources of one length or padded ones. Encoding each pass's sources
builds the compiled encoder's graphs too (one row; several, with a mask). Then it settles
the model: a pass of a kind no graph covers runs eagerly rather than compiling in front of
requests.
"""

from __future__ import annotations

import time

import torch

from seqweave.decoding.slots import place
from seqweave.models.state import SlotPool

DRAFT = 4  # draft tokens per row in the warm-up's verification passes
# (rows, source lengths, cache lengths before the pass, tokens per row, real tokens per row)
PASSES = (
    ((6,), (3,), 1, None),
    ((6,), (0,), DRAFT, None),  # a row's first pass, with a draft
    ((6,), (3,), DRAFT, None),
    ((6, 6, 6), (3, 3, 3), 1, None),  # no source padded: the mask is added all true
    ((5, 6, 7), (3, 3, 3), 1, None),
    ((5, 6, 7), (0, 0, 0), DRAFT, None),
    ((5, 6, 7), (3, 4, 5), 1, None),
    ((5, 6, 7), (3, 4, 5), DRAFT, None),
    ((5, 6, 7), (3, 4, 5), DRAFT, (DRAFT, 1, 1)),  # packed: a draft beside two tokens
)


def warm_up(network, pool: SlotPool) -> float:
    """Compile ``network``'s encoder and decoder graphs (on the slots of ``pool``) and settle
    it; returns the seconds it took. The pool's rows hold nothing afterwards that a new row's
    ``place`` does not overwrite."""
    began = time.perf_counter()
    device, eos = network.device, network.config.eos_id
    with torch.inference_mode():
        for source_lengths, cache_lengths, width, real in PASSES:
            rows = len(source_lengths)
            src = torch.full((rows, max(source_lengths)), network.config.pad_id, device=device)
            for row, length in enumerate(source_lengths):
                src[row, :length] = eos
            lengths = torch.tensor(source_lengths, device=device)
            fresh = network.start(network.encode(src, lengths))
            last = torch.full((rows,), eos, device=device)
            _, state, _ = place(pool, None, None, [], (fresh, last))
            state.lengths = torch.tensor(cache_lengths, device=device)
            tokens = torch.full((rows, width), eos, device=device)
            n_new = None if real is None else torch.tensor(real, device=device)
            network.step(state, tokens, n_new)
    network.compiled_decoder.settle()
    return time.perf_counter() - began
