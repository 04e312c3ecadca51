"""The rows of a ``DecodeSession`` and how they are grouped (``decoding/session.py``).

A ``Row`` is one output being decoded: its id, budget, tokens and counters, and the key
its drafter knows it by. Rows admitted together with the same settings form a
``Cohort``: one drafter and one chooser for all of them. A driver that builds its own
rows (``loop.draft_verify``, the constrained-decoding tests) describes them with
``Group``; the session turns each group into a cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from seqweave.decoding.beam import BeamGroup
from seqweave.decoding.common import RowStats
from seqweave.decoding.constraint import Constraint
from seqweave.decoding.loop import Chooser, Drafter, Event, RelaxedAcceptance


@dataclass
class Group:
    """Rows of one ``join`` that share one drafter and one chooser (None: no draft; the
    argmax). ``positions`` are the rows of the joined batch (default: all of them); the
    drafter knows them as 0, 1, ... in that order. Groups with the same ``merge`` key
    become one when the drafter has ``extend`` (rows of one decoder then draft in one
    call); None never merges."""

    drafter: Drafter | None = None
    chooser: Chooser | None = None
    positions: list[int] | None = None
    merge: str | None = None
    beam: BeamGroup | None = None  # a grouped request: its rows are its beams, one row id


@dataclass(eq=False)
class Cohort:
    """Live rows sharing one drafter (whose row key is ``Row.index``) and one chooser.
    ``rows`` are in the drafter's order, which calls to the drafter and the chooser follow
    whatever slots the rows hold (``live_cohorts``); ``size`` rows were ever keyed."""

    drafter: Drafter | None
    chooser: Chooser | None
    merge: str | None
    size: int
    rows: list[Row] = field(default_factory=list)
    beam: BeamGroup | None = None


@dataclass(eq=False)
class Row:
    id: int
    cohort: Cohort
    index: int  # the row's key in its cohort's drafter
    budget: int  # most tokens it may generate
    stats: RowStats
    source: Sequence[int] = ()  # framed source ids, for the constraint
    constraint: Constraint | None = None
    generated: list[int] = field(default_factory=list)
    parked: bool = False  # retired, its slot still in the state until compaction


def relaxed_acceptance(settings) -> RelaxedAcceptance | None:
    """GAD++'s acceptance rule when ``relaxed_top`` > 1, else None (exact, lossless)."""
    if settings.relaxed_top <= 1:
        return None
    return RelaxedAcceptance(settings.relaxed_top, settings.relaxed_gap)


def live_cohorts(rows: list[Row]) -> list[tuple[Cohort, list[int]]]:
    """Each cohort among the live ``rows`` (the state's rows, in state order) with the state
    positions of its rows in the cohort's own order; cohorts in order of first appearance.

    A cohort's order is its drafter's (and a beam group's the order of its beams). The
    slot cache moves a row into the hole a finished row left, so the two orders may
    differ; every per-cohort call goes through these positions, so no drafter is told."""
    where = {id(row): i for i, row in enumerate(rows)}
    found: dict[int, Cohort] = {}
    for row in rows:
        if not row.parked:
            found.setdefault(id(row.cohort), row.cohort)
    return [(cohort, [where[id(row)] for row in cohort.rows]) for cohort in found.values()]


def append_tokens(out: list[int], new: list[int], budget: int, eos_id: int, row: int) -> Event:
    """Add accepted tokens to a row, stopping at the end token or the budget."""
    take = new[: budget - len(out)]
    if eos_id in take:
        take = take[: take.index(eos_id)]
        out.extend(take)
        return Event(row, take, "stop")
    out.extend(take)
    return Event(row, take, "length" if len(out) >= budget else None)
