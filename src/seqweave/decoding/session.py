"""One decoding session: rows join, each pass drafts and verifies them all, rows leave.

``DecodeSession`` owns the row bookkeeping that every driver needs (the CLI and
the Python API through ``decode_batch``, the benchmark, the decode loop's
``draft_verify``): which rows are live and in what state order, their budgets,
tokens and counters, their drafters, and compacting the decoder state when rows
finish. A driver only calls

- ``admit(sources, settings)``: encode, start, join the batch -> row ids;
- ``run_pass()``: drafts from each row's drafter, one ``loop.advance`` for all
  rows, the pass's :class:`Event` list out (tokens accepted, row finished);
  finished rows leave the batch at once;
- ``retire(row_ids)``: drop rows the driver no longer wants (a cancelled request).

Rows admitted together form a cohort: one drafter and one chooser built from the
decoders' table for its settings, so rows of different decoders share a pass.
A grouped decoder's request (beam search) is a cohort of its own: ``beam_size``
rows of one id whose chooser is its ``BeamGroup``; after each pass the group's
rows are copied onto the beams that survive (``DecoderState.copy_rows``, the
group's rows only), and when its search is done one event carries the best
hypothesis and the group leaves. So a beam request shares every pass with the
greedy and IAD rows instead of stalling them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from seqweave.config import DecodeConfig
from seqweave.decoding.beam import BeamGroup
from seqweave.decoding.common import RowStats, length_budget, pad_batch
from seqweave.decoding.constraint import Constraint, draft_masks, require_constraint
from seqweave.decoding.loop import (
    Chooser,
    Drafter,
    Event,
    RelaxedAcceptance,
    advance,
    argmax_choice,
)
from seqweave.decoding.registry import check_decoder
from seqweave.decoding.slots import draft_limit, place, release
from seqweave.errors import ConfigError
from seqweave.models.base import require_step
from seqweave.models.state import Memory, SlotPool


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
class _Cohort:
    """Live rows sharing one drafter (whose row key is ``_Row.index``) and one chooser;
    ``rows`` in state order, which is the drafter's order; ``size`` rows were ever keyed."""

    drafter: Drafter | None
    chooser: Chooser | None
    merge: str | None
    size: int
    rows: list[_Row] = field(default_factory=list)
    beam: BeamGroup | None = None


@dataclass(eq=False)
class _Row:
    id: int
    cohort: _Cohort
    index: int  # the row's key in its cohort's drafter
    budget: int  # most tokens it may generate
    stats: RowStats
    source: Sequence[int] = ()  # framed source ids, for the constraint
    constraint: Constraint | None = None
    generated: list[int] = field(default_factory=list)
    parked: bool = False  # retired, still in the state until the next compaction


def relaxed_acceptance(settings) -> RelaxedAcceptance | None:
    """GAD++'s acceptance rule when ``relaxed_top`` > 1, else None (exact, lossless)."""
    if settings.relaxed_top <= 1:
        return None
    return RelaxedAcceptance(settings.relaxed_top, settings.relaxed_gap)


class DecodeSession:
    """Row-wise decoding of any number of rows that join and leave between passes.

    ``settings`` (a DecodeConfig, default: greedy's) are the defaults of ``admit``; the
    acceptance rule (exact, or GAD++'s relaxed one from ``settings.relaxed_top`` or
    ``relaxed``) holds for the whole session, since one ``advance`` verifies every row.
    ``stats`` maps each row id to its counters, kept after the row leaves. ``constraint``
    (``decoding/constraint.py``) is the default allowed-token function of admitted rows; it
    must be given when ``settings.constraint`` names a grammar, which needs the tokenizer.
    """

    def __init__(
        self,
        model,
        settings: DecodeConfig | None = None,
        draft_model=None,
        relaxed: RelaxedAcceptance | None = None,
        park: bool = False,
        constraint: Constraint | None = None,
        slots: SlotPool | None = None,
    ):
        require_step(model)
        settings = settings or DecodeConfig()
        check_decoder(settings.decoder, draft_model, settings.relaxed_top)
        require_constraint(settings, constraint)
        self.model = model
        self.settings = settings
        self.draft_model = draft_model
        self.relaxed = relaxed or relaxed_acceptance(settings)
        self.park = park
        self.slots = slots  # serving: rows join and leave this pool by slot index
        self.constraint = constraint
        self.stats: dict[int, RowStats] = {}
        self.last_pass = (0, 0, 0)  # the last pass's live rows, draft tokens, accepted ones
        self._rows: list[_Row] = []  # rows in the state, in state order (parked ones too)
        self._state = None
        self._last: Tensor | None = None  # (B,) each live row's last token
        self._pending: list[Event] = []  # rows finished before their first pass
        self._ids = itertools.count()
        self._cohorts: list[tuple[_Cohort, list[int]]] | None = None  # of the live rows

    @property
    def live(self) -> list[int]:
        """Ids of the rows still decoding, in state order (a beam group's id once)."""
        return list(dict.fromkeys(row.id for row in self._rows if not row.parked))

    @property
    def size(self) -> int:
        """Rows of the decoder state still decoding (a beam group counts its beams)."""
        return sum(not row.parked for row in self._rows)

    def __bool__(self) -> bool:
        """Whether a ``run_pass`` has anything to do."""
        return bool(self._pending) or any(not row.parked for row in self._rows)

    def admit(
        self, sources: Sequence[Sequence[int]], settings=None, constraint: Constraint | None = None
    ) -> list[int]:
        """Encode ``sources`` (in one batch) and add them with ``settings``: one DecodeConfig
        for all (default: the session's) or one per source; sources given the same object
        share a drafter and a chooser (one sampling generator). ``constraint`` (default: the
        session's) limits what they may generate. Returns their row ids.

        Raises:
            ConfigError: a decoder is grouped (beam), or cannot run with this draft model, or
                the settings name a constraint that was not given.
        """
        if settings is None or isinstance(settings, DecodeConfig):
            settings = [settings or self.settings] * len(sources)
        constraint = constraint or self.constraint
        groups: dict[int, tuple[object, list[int]]] = {}
        for i, row_settings in enumerate(settings):
            groups.setdefault(id(row_settings), (row_settings, []))[1].append(i)
        specs = {key: self._check(s, constraint) for key, (s, _) in groups.items()}
        widths = [s.beam_size if specs[id(s)].grouped else 1 for s in settings]
        starts = list(itertools.accumulate(widths, initial=0))  # each source's first row
        src, lengths = pad_batch(sources, self.model.config.pad_id, self.model.device)
        memory = self.model.encode(src, lengths)
        limits = {row_settings.max_new_tokens for row_settings in settings}
        by_limit = {limit: length_budget(self.model, lengths, limit) for limit in limits}
        budgets = [by_limit[row.max_new_tokens][i] for i, row in enumerate(settings)]
        plans = []
        for key, (row_settings, positions) in groups.items():
            if specs[key].grouped:
                plans += [
                    self._beam(row_settings, budgets[i], sources[i], starts[i], constraint)
                    for i in positions
                ]
            else:
                chosen = [sources[i] for i in positions]
                plans.append(self._group(row_settings, chosen, [starts[i] for i in positions]))
        if starts[-1] > len(sources):  # beams: one memory row per beam
            index = torch.repeat_interleave(torch.tensor(widths, device=lengths.device))
            memory = memory.select(torch.arange(len(sources), device=lengths.device)[index])
            budgets = [budgets[i] for i in index.tolist()]
            sources = [sources[i] for i in index.tolist()]
        ids = self.join(memory, budgets, plans, sources=sources, constraint=constraint)
        return [ids[start] for start in starts[:-1]]

    def _check(self, settings, constraint: Constraint | None):
        """Fail before encoding: the decoder cannot run here, or a grammar is missing."""
        require_constraint(settings, constraint)
        spec = check_decoder(settings.decoder, self.draft_model, settings.relaxed_top)
        if relaxed_acceptance(settings) != self.relaxed:
            raise ConfigError("the acceptance rule (decode.relaxed_*) is the session's")
        if spec.grouped and settings.beam_size < 1:
            raise ConfigError(f"decode.beam_size must be >= 1, got {settings.beam_size}")
        return spec

    def _group(self, settings, sources, positions: list[int]) -> Group:
        spec = check_decoder(settings.decoder, self.draft_model, settings.relaxed_top)
        drafter = chooser = None
        if spec.drafter is not None:
            drafter = spec.drafter(settings, sources, self.draft_model)
        if spec.chooser is not None:
            chooser = spec.chooser(settings)
        return Group(drafter, chooser, positions, settings.decoder)

    def _beam(self, settings, budget: int, source, first: int, constraint) -> Group:
        """One beam request: ``beam_size`` rows from ``first`` on, chosen by its group."""
        width = settings.beam_size
        eos = self.model.config.eos_id
        rules = (settings.length_penalty, settings.early_stopping, constraint, source)
        beam = BeamGroup(width, budget, eos, *rules)
        return Group(chooser=beam, positions=list(range(first, first + width)), beam=beam)

    def join(
        self,
        memory: Memory,
        budgets: Sequence[int],
        groups: Sequence[Group] = (),
        stats: Sequence[RowStats] | None = None,
        sources: Sequence[Sequence[int]] = (),
        constraint: Constraint | None = None,
    ) -> list[int]:
        """Add rows already encoded (``memory``) with their budgets and groups (default:
        one group without drafter or chooser), and optionally the counters to fill in.
        ``constraint`` (default: the session's) needs the rows' framed ``sources``.
        Returns their row ids; rows with no budget finish at the next pass."""
        stats = stats if stats is not None else [RowStats() for _ in budgets]
        constraint = constraint or self.constraint
        if constraint is not None and len(sources) != len(budgets):
            raise ValueError("a constraint needs the framed source of every row")
        rows: list[_Row | None] = [None] * len(budgets)
        cohorts = []
        for group in groups or [Group()]:
            positions = group.positions if group.positions is not None else range(len(budgets))
            cohort = _Cohort(group.drafter, group.chooser, group.merge, len(positions))
            cohort.beam = group.beam
            if group.beam is not None:  # one id and counters for all its rows
                beam_id = next(self._ids)
                for index, b in enumerate(positions):
                    rows[b] = _Row(beam_id, cohort, index, budgets[b], group.beam.stats)
            else:
                for index, b in enumerate(positions):
                    rows[b] = _Row(next(self._ids), cohort, index, budgets[b], stats[b])
                    if constraint is not None:
                        rows[b].source, rows[b].constraint = sources[b], constraint
            cohorts.append(cohort)
        for row in rows:
            self.stats[row.id] = row.stats
        ended = dict.fromkeys(row.id for row in rows if row.budget <= 0)
        self._pending += [Event(row_id, [], "length") for row_id in ended]
        state = self.model.start(memory)
        live = [b for b, row in enumerate(rows) if row.budget > 0]
        if len(live) < len(rows):
            self.model.reorder(state, self._index(live))
        for cohort in cohorts:
            members = [row for row in rows if row.cohort is cohort]
            cohort.rows = [row for row in members if row.budget > 0]
            if len(cohort.rows) < len(members) and cohort.drafter is not None:
                cohort.drafter.select([n for n, row in enumerate(members) if row.budget > 0])
        if live:
            start = self.model.config.decoder_start_id
            last = torch.full((len(live),), start, dtype=torch.long, device=self._device)
            if self.slots is not None:
                self._place(state, last, [rows[b] for b in live])
            else:
                self._extend(state, last, [rows[b] for b in live])
            for cohort in cohorts:
                self._merge(cohort)
        self._cohorts = None
        return [row.id for row in rows]

    def _extend(self, state, last: Tensor, rows: list[_Row]) -> None:
        """The new rows join after the others (parked rows leave first)."""
        if self._rows:
            if any(row.parked for row in self._rows):
                self._compact()
            self._state.extend(state)
            self._last = torch.cat([self._last, last])
        else:
            self._state, self._last = state, last
        self._rows += rows

    def _place(self, state, last: Tensor, rows: list[_Row]) -> None:
        """Slot mode: the new rows take free slots (holes first), no other row moves."""
        free = [i for i, row in enumerate(self._rows) if row.parked]
        fresh = (state, last)
        positions, self._state, self._last = place(self.slots, self._state, self._last, free, fresh)
        self._rows += [rows[0]] * (len(self._state.lengths) - len(self._rows))  # held below
        for position, row in zip(positions, rows, strict=True):
            self._rows[position] = row

    def _merge(self, cohort: _Cohort) -> None:
        """Fold a new cohort into a live one of the same decoder whose drafter can extend and
        whose rows all come before it in state order (a drafter's rows are in state order)."""
        if cohort.merge is None or cohort.chooser is not None or not cohort.rows:
            return
        first = self._rows.index(cohort.rows[0])
        for other, positions in _cohorts(self._rows):
            if other is cohort or other.merge != cohort.merge or other.chooser is not None:
                continue
            if positions[-1] > first:
                continue
            if other.drafter is not None and not hasattr(other.drafter, "extend"):
                continue
            if other.drafter is not None:
                other.drafter.extend(cohort.drafter)
            for row in cohort.rows:
                row.cohort, row.index = other, other.size + row.index
            other.rows += cohort.rows
            other.size += cohort.size
            return

    def run_pass(self) -> list[Event]:
        """One decoder pass for every live row; finished rows leave the batch."""
        events, self._pending = self._pending, []
        rows = self._rows
        live = [i for i, row in enumerate(rows) if not row.parked]
        if not live:
            return events
        if self._cohorts is None:  # rows joined or left since the last pass
            self._cohorts = _cohorts(rows)
        cohorts = self._cohorts
        drafts = self._propose(rows, cohorts)
        if self.slots is not None:  # padded draft positions stay inside the slots
            limit = draft_limit(self.slots, self._state)
            drafts = [draft[:limit] for draft in drafts]
        allowed = self._allowed(rows, drafts)
        idle = None
        if len(live) < len(rows):
            idle = torch.tensor([row.parked for row in rows], device=self._device)
        choose = self._chooser(cohorts)
        accepted, next_tokens = advance(
            self.model, self._state, self._last, drafts, choose, idle, self.relaxed, allowed
        )
        next_list = next_tokens.tolist()
        for cohort, positions in cohorts:
            if cohort.drafter is not None:
                cohort.drafter.observe(
                    [accepted[i] for i in positions], [next_list[i] for i in positions]
                )
        eos = self.model.config.eos_id
        finished = self._follow_beams(cohorts, events)
        for i in live:
            row = rows[i]
            if row.cohort.beam is not None:
                continue
            row.stats.passes += 1
            row.stats.drafted += len(drafts[i])
            row.stats.accepted += accepted[i]
            new = [*drafts[i][: accepted[i]], next_list[i]]
            event = _append(row.generated, new, row.budget, eos, row.id)
            event.drafted = min(accepted[i], len(event.tokens))
            events.append(event)
            if event.finish is not None:
                finished.append(row.id)
        self.last_pass = (len(live), sum(map(len, drafts)), sum(accepted))
        self._last = next_tokens
        self.retire(finished)
        return events

    def _follow_beams(self, cohorts, events: list[Event]) -> list[int]:
        """After a pass: each beam group's rows become copies of the beams they continue,
        or, when its search is done, the group's best hypothesis is one event. Returns the
        ids of the groups that are done."""
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
            rows = self._index(positions)
            self._state.copy_rows(rows, rows.index_select(0, beam.origin))
        return done

    def retire(self, row_ids: Sequence[int]) -> None:
        """Take rows out of decoding (and out of their drafters). Without ``park`` they
        leave the state at once; with it they stay, idle (no work, no growth), until half
        the rows are parked, so that one compaction (a copy of the live caches) serves many."""
        gone = set(row_ids)
        if not gone or not any(row.id in gone and not row.parked for row in self._rows):
            return
        for cohort, _ in _cohorts(self._rows):
            kept = [n for n, row in enumerate(cohort.rows) if row.id not in gone]
            if len(kept) < len(cohort.rows) and cohort.drafter is not None:
                cohort.drafter.select(kept)
            cohort.rows = [cohort.rows[n] for n in kept]
        for row in self._rows:
            row.parked = row.parked or row.id in gone
        self._cohorts = None
        if self.slots is not None:
            self._release([i for i, row in enumerate(self._rows) if row.id in gone])
            return
        parked = sum(row.parked for row in self._rows)
        if not self.park or parked * 2 >= len(self._rows):
            self._compact()

    def _release(self, positions: list[int]) -> None:
        """Slot mode: forget the rows that left; the view ends after the last live row."""
        keep = max((i + 1 for i, row in enumerate(self._rows) if not row.parked), default=0)
        self._state, self._last = release(self.slots, self._state, self._last, keep, positions)
        self._rows = self._rows[:keep]

    def _compact(self) -> None:
        """Drop parked rows from the state (one copy of the live rows' caches)."""
        keep = [i for i, row in enumerate(self._rows) if not row.parked]
        index = self._index(keep)
        self.model.reorder(self._state, index)
        self._last = self._last.index_select(0, index)
        self._rows = [self._rows[i] for i in keep]
        self._cohorts = None

    # -- one pass --------------------------------------------------------------------------

    def _propose(self, rows: list[_Row], cohorts) -> list[list[int]]:
        drafts: list[list[int]] = [[] for _ in rows]
        for cohort, positions in cohorts:
            if cohort.drafter is None:
                continue
            members = [rows[i] for i in positions]
            proposed = cohort.drafter.propose(
                [row.index for row in members],
                [row.generated for row in members],
                [row.budget - len(row.generated) - 1 for row in members],
            )
            for i, draft in zip(positions, proposed, strict=True):
                drafts[i] = draft
        return drafts

    def _allowed(self, rows: list[_Row], drafts: list[list[int]]) -> Tensor | None:
        """The allowed tokens of this pass, (B, 1 + K, V), or None when no row is constrained."""
        if all(row.constraint is None for row in rows):
            return None
        width = 1 + max(map(len, drafts), default=0)
        found = [
            (None if row.parked else row.constraint, row.source, row.generated, draft)
            for row, draft in zip(rows, drafts, strict=True)
        ]
        return draft_masks(found, width, self.model.config.vocab_size, self.model.config.eos_id)

    def _chooser(self, cohorts) -> Chooser:
        """Argmax, except for the rows of cohorts with their own chooser (sampling): each
        such cohort chooses for its rows in one call, as it would alone."""
        choosing = [(c, p) for c, p in cohorts if c.chooser is not None]
        if not choosing:
            return argmax_choice

        def choose(logits: Tensor) -> Tensor:  # (B, V) -> (B,)
            tokens = logits.argmax(dim=-1)
            for cohort, positions in choosing:
                index = self._index(positions)
                tokens[index] = cohort.chooser(logits.index_select(0, index))
            return tokens

        return choose

    @property
    def _device(self) -> torch.device:
        return self._last.device if self._last is not None else torch.device(self.model.device)

    def _index(self, positions: Sequence[int]) -> Tensor:
        return torch.tensor(list(positions), dtype=torch.long, device=self._device)


def _cohorts(rows: list[_Row]) -> list[tuple[_Cohort, list[int]]]:
    """Each cohort among the live ``rows`` with its rows' positions, in order of first
    appearance."""
    found: dict[int, tuple[_Cohort, list[int]]] = {}
    for i, row in enumerate(rows):
        if not row.parked:
            found.setdefault(id(row.cohort), (row.cohort, []))[1].append(i)
    return list(found.values())


def _append(out: list[int], new: list[int], budget: int, eos_id: int, row: int) -> Event:
    """Add accepted tokens to a row, stopping at the end token or the budget."""
    take = new[: budget - len(out)]
    if eos_id in take:
        take = take[: take.index(eos_id)]
        out.extend(take)
        return Event(row, take, "stop")
    out.extend(take)
    return Event(row, take, "length" if len(out) >= budget else None)
