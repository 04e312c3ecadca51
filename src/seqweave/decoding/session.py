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

Rows admitted together form a cohort (``decoding/rows.py``): one drafter and one
chooser built from the decoders' table for its settings, so rows of different decoders
share a pass; ``decoding/passes.py`` gathers a pass's drafts, allowed tokens and chooser
from them. A grouped decoder's request (beam search) is a cohort of its own
(``decoding/grouped.py``): ``beam_size`` rows of one id whose chooser is its
``BeamGroup``, copied onto the surviving beams after each pass. So a beam request shares
every pass with the greedy and IAD rows instead of stalling them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from seqweave.config import DecodeConfig
from seqweave.decoding.common import RowStats, length_budget, pad_batch
from seqweave.decoding.constraint import Constraint, require_constraint
from seqweave.decoding.grouped import beam_group, follow_beams
from seqweave.decoding.loop import Event, RelaxedAcceptance, advance
from seqweave.decoding.passes import allowed_tokens, batch_chooser, propose
from seqweave.decoding.registry import check_decoder
from seqweave.decoding.rows import (
    Cohort,
    Group,
    Row,
    append_tokens,
    live_cohorts,
    relaxed_acceptance,
)
from seqweave.decoding.slots import draft_limit, move, place, release
from seqweave.errors import ConfigError
from seqweave.models.base import require_step
from seqweave.models.state import Memory, SlotPool

__all__ = ["DecodeSession", "Group", "relaxed_acceptance"]


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
        self._rows: list[Row] = []  # rows in the state, in state order (parked ones too)
        self._state = None
        self._last: Tensor | None = None  # (B,) each live row's last token
        self._pending: list[Event] = []  # rows finished before their first pass
        self._ids = itertools.count()
        self._cohorts: list[tuple[Cohort, list[int]]] | None = None  # of the live rows

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
        eos = self.model.config.eos_id
        return beam_group(settings, budget, source, first, eos, constraint)

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
        rows: list[Row | None] = [None] * len(budgets)
        cohorts = []
        for group in groups or [Group()]:
            positions = group.positions if group.positions is not None else range(len(budgets))
            cohort = Cohort(group.drafter, group.chooser, group.merge, len(positions))
            cohort.beam = group.beam
            if group.beam is not None:  # one id and counters for all its rows
                beam_id = next(self._ids)
                for index, b in enumerate(positions):
                    rows[b] = Row(beam_id, cohort, index, budgets[b], group.beam.stats)
            else:
                for index, b in enumerate(positions):
                    rows[b] = Row(next(self._ids), cohort, index, budgets[b], stats[b])
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

    def _extend(self, state, last: Tensor, rows: list[Row]) -> None:
        """The new rows join after the others (parked rows leave first)."""
        if self._rows:
            if any(row.parked for row in self._rows):
                self._compact()
            self._state.extend(state)
            self._last = torch.cat([self._last, last])
        else:
            self._state, self._last = state, last
        self._rows += rows

    def _place(self, state, last: Tensor, rows: list[Row]) -> None:
        """Slot mode: the new rows take free slots (holes first), no other row moves."""
        free = [i for i, row in enumerate(self._rows) if row.parked]
        fresh = (state, last)
        positions, self._state, self._last = place(self.slots, self._state, self._last, free, fresh)
        self._rows += [rows[0]] * (len(self._state.lengths) - len(self._rows))  # held below
        for position, row in zip(positions, rows, strict=True):
            self._rows[position] = row

    def _merge(self, cohort: Cohort) -> None:
        """Fold a new cohort into a live one of the same decoder whose drafter can extend
        (its rows are keyed after the other's; calls follow the cohort's order, not the
        slots', so where the new rows sit does not matter)."""
        if cohort.merge is None or cohort.chooser is not None or not cohort.rows:
            return
        for other, _ in live_cohorts(self._rows):
            if other is cohort or other.merge != cohort.merge or other.chooser is not None:
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
        if self.slots is not None:
            self._fill_holes()
        rows = self._rows
        live = [i for i, row in enumerate(rows) if not row.parked]
        if not live:
            return events
        if self._cohorts is None:  # rows joined or left since the last pass
            self._cohorts = live_cohorts(rows)
        cohorts = self._cohorts
        drafts = propose(rows, cohorts)
        if self.slots is not None:  # padded draft positions stay inside the slots
            limit = draft_limit(self.slots, self._state)
            drafts = [draft[:limit] for draft in drafts]
        cfg = self.model.config
        allowed = allowed_tokens(rows, drafts, cfg.vocab_size, cfg.eos_id)
        idle = None
        if len(live) < len(rows):
            idle = torch.tensor([row.parked for row in rows], device=self._device)
        choose = batch_chooser(cohorts, self._device)
        screen = self.settings.screen
        accepted, next_tokens = advance(
            self.model, self._state, self._last, drafts, choose, idle, self.relaxed, allowed, screen
        )
        next_list = next_tokens.tolist()
        for cohort, positions in cohorts:
            if cohort.drafter is not None:
                cohort.drafter.observe(
                    [accepted[i] for i in positions], [next_list[i] for i in positions]
                )
        finished = follow_beams(self._state, cohorts, events)
        finished += self._take(live, drafts, accepted, next_list, events)
        self.last_pass = (len(live), sum(map(len, drafts)), sum(accepted))
        self._last = next_tokens
        self.retire(finished)
        return events

    def _take(self, live, drafts, accepted, next_list, events: list[Event]) -> list[int]:
        """Each row-wise row at state positions ``live`` takes its accepted draft tokens and
        the model's next token (one event each, counters updated); returns the ids of the
        rows that finished."""
        eos = self.model.config.eos_id
        finished = []
        for i in live:
            row = self._rows[i]
            if row.cohort.beam is not None:
                continue
            row.stats.passes += 1
            row.stats.drafted += len(drafts[i])
            row.stats.accepted += accepted[i]
            new = [*drafts[i][: accepted[i]], next_list[i]]
            event = append_tokens(row.generated, new, row.budget, eos, row.id)
            event.drafted = min(accepted[i], len(event.tokens))
            events.append(event)
            if event.finish is not None:
                finished.append(row.id)
        return finished

    def retire(self, row_ids: Sequence[int]) -> None:
        """Take rows out of decoding (and out of their drafters). Without ``park`` they
        leave the state at once; with it they stay, idle (no work, no growth), until half
        the rows are parked, so that one compaction (a copy of the live caches) serves many.
        With a slot pool a row that leaves makes its slot a hole: a row admitted before the
        next pass takes it, else the last live row moves in (``_fill_holes``)."""
        gone = set(row_ids)
        if not gone or not any(row.id in gone and not row.parked for row in self._rows):
            return
        for cohort, _ in live_cohorts(self._rows):
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

    def _fill_holes(self) -> None:
        """Slot mode, before a pass: the last live rows move into the holes that finished
        rows left below them (each a copy of one row's cache slots in use, its memory and
        its lengths), so the pass runs over the live rows only, in slots 0 .. n - 1. Done
        here rather than in ``retire``: rows admitted between passes take the holes first,
        and only the holes nobody filled cost a copy."""
        live = sum(not row.parked for row in self._rows)
        if live == len(self._rows):
            return
        holes = [i for i in range(live) if self._rows[i].parked]
        movers = [i for i in range(len(self._rows) - 1, live - 1, -1) if not self._rows[i].parked]
        moved = move(self.slots, self._state, self._last, movers, holes, live)
        self._state, self._last = moved
        for source, target in zip(movers, holes, strict=True):
            self._rows[target] = self._rows[source]
        del self._rows[live:]
        self._cohorts = None

    def _compact(self) -> None:
        """Drop parked rows from the state (one copy of the live rows' caches)."""
        keep = [i for i, row in enumerate(self._rows) if not row.parked]
        index = self._index(keep)
        self.model.reorder(self._state, index)
        self._last = self._last.index_select(0, index)
        self._rows = [self._rows[i] for i in keep]
        self._cohorts = None

    @property
    def _device(self) -> torch.device:
        return self._last.device if self._last is not None else torch.device(self.model.device)

    def _index(self, positions: Sequence[int]) -> Tensor:
        return torch.tensor(list(positions), dtype=torch.long, device=self._device)
