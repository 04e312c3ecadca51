"""Grouped requests inside a ``DecodeSession``: a beam search as ``beam_size`` rows of one
id whose chooser is its ``BeamGroup`` (``decoding/beam.py``).

The group shares every pass with the row-wise decoders' rows. After a pass its rows
become copies of the beams that survive (``DecoderState.copy_rows``, the group's rows
only, so no other row is touched), and when its search is done one event carries the
best hypothesis and the group leaves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqweave.decoding.beam import BeamGroup
from seqweave.decoding.constraint import Constraint
from seqweave.decoding.loop import Event
from seqweave.decoding.rows import Cohort, Group


def beam_group(
    settings,
    budget: int,
    source: Sequence[int],
    first: int,
    eos_id: int,
    constraint: Constraint | None,
) -> Group:
    """One beam request: ``settings.beam_size`` rows from batch row ``first`` on, chosen
    by its ``BeamGroup`` (``constraint``, if any, limits its tokens given ``source``)."""
    width = settings.beam_size
    rules = (settings.length_penalty, settings.early_stopping, constraint, source)
    beam = BeamGroup(width, budget, eos_id, *rules)
    return Group(chooser=beam, positions=list(range(first, first + width)), beam=beam)


def follow_beams(state, cohorts: list[tuple[Cohort, list[int]]], events: list[Event]) -> list[int]:
    """After a pass: each beam group's rows become copies of the beams they continue,
    or, when its search is done, the group's best hypothesis is one event (appended to
    ``events``). Returns the ids of the groups that are done."""
    done = []
    for cohort, positions in cohorts:
        beam = cohort.beam
        if beam is None:
            continue
        if beam.done:
            row_id = cohort.rows[0].id
            best = beam.result()
            events.append(Event(row_id, best.tokens, "stop" if best.finished else "length"))
            done.append(row_id)
            continue
        rows = torch.tensor(positions, dtype=torch.long, device=state.lengths.device)
        state.copy_rows(rows, rows.index_select(0, beam.origin))
    return done
