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
Grouped decoders (beam search: a request is several rows that reorder together)
do not run here yet; ``decode_batch`` runs them as their own batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from seqweave.config import DecodeConfig
from seqweave.decoding.common import RowStats, length_budget, pad_batch
from seqweave.decoding.loop import (
    Chooser,
    Drafter,
    Event,
    RelaxedAcceptance,
    advance,
    argmax_choice,
)
from seqweave.decoding.registry import check_decoder
from seqweave.errors import ConfigError
from seqweave.models.base import require_step
from seqweave.models.state import Memory


@dataclass(eq=False)
class _Cohort:
    """Rows admitted together, sharing one drafter (whose batch index is ``_Row.index``)
    and one chooser. ``rows`` are its live rows in state order: the drafter's order."""

    drafter: Drafter | None
    chooser: Chooser | None
    rows: list[_Row] = field(default_factory=list)


@dataclass(eq=False)
class _Row:
    id: int
    cohort: _Cohort
    index: int  # the row's batch index within its cohort (its drafter's row key)
    budget: int  # most tokens it may generate
    stats: RowStats
    generated: list[int] = field(default_factory=list)


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
    ``stats`` maps each row id to its counters, kept after the row leaves.
    """

    def __init__(
        self,
        model,
        settings: DecodeConfig | None = None,
        draft_model=None,
        relaxed: RelaxedAcceptance | None = None,
    ):
        require_step(model)
        settings = settings or DecodeConfig()
        check_decoder(settings.decoder, draft_model, settings.relaxed_top)
        self.model = model
        self.settings = settings
        self.draft_model = draft_model
        self.relaxed = relaxed or relaxed_acceptance(settings)
        self.stats: dict[int, RowStats] = {}
        self._rows: list[_Row] = []  # live rows, in state order
        self._state = None
        self._last: Tensor | None = None  # (B,) each live row's last token
        self._pending: list[Event] = []  # rows finished before their first pass
        self._ids = itertools.count()

    @property
    def live(self) -> list[int]:
        """Ids of the rows still decoding, in state order."""
        return [row.id for row in self._rows]

    def __bool__(self) -> bool:
        """Whether a ``run_pass`` has anything to do."""
        return bool(self._rows or self._pending)

    def admit(self, sources: Sequence[Sequence[int]], settings=None) -> list[int]:
        """Encode ``sources`` and add them to the batch with ``settings`` (default: the
        session's): their decoder, length limit, sampling. Returns their row ids.

        Raises:
            ConfigError: the decoder is grouped (beam), or cannot run with this draft model.
        """
        settings = settings or self.settings
        spec = check_decoder(settings.decoder, self.draft_model, settings.relaxed_top)
        if spec.grouped:
            raise ConfigError(f"decoder {settings.decoder!r} is grouped; a session runs rows")
        if relaxed_acceptance(settings) != self.relaxed:
            raise ConfigError("the acceptance rule (decode.relaxed_*) is the session's")
        src, lengths = pad_batch(sources, self.model.config.pad_id, self.model.device)
        memory = self.model.encode(src, lengths)
        budgets = length_budget(self.model, lengths, settings.max_new_tokens)
        drafter = (
            None if spec.drafter is None else spec.drafter(settings, sources, self.draft_model)
        )
        chooser = None if spec.chooser is None else spec.chooser(settings)
        return self.join(memory, budgets, drafter, chooser)

    def join(
        self,
        memory: Memory,
        budgets: Sequence[int],
        drafter: Drafter | None = None,
        chooser: Chooser | None = None,
        stats: Sequence[RowStats] | None = None,
    ) -> list[int]:
        """Add rows already encoded (``memory``), with their budgets, one drafter and one
        chooser for all of them (None: no draft; argmax), and optionally the counters to
        fill in. Returns their row ids; rows with no budget finish at the next pass."""
        cohort = _Cohort(drafter, chooser)
        stats = stats if stats is not None else [RowStats() for _ in budgets]
        rows = [
            _Row(next(self._ids), cohort, b, budget, row_stats)
            for b, (budget, row_stats) in enumerate(zip(budgets, stats, strict=True))
        ]
        for row in rows:
            self.stats[row.id] = row.stats
        self._pending += [Event(row.id, [], "length") for row in rows if row.budget <= 0]
        state = self.model.start(memory)
        cohort.rows = [row for row in rows if row.budget > 0]
        if len(cohort.rows) < len(rows):
            index = [row.index for row in cohort.rows]
            self.model.reorder(state, self._index(index))
            if drafter is not None:
                drafter.select(index)
        if cohort.rows:
            start = self.model.config.decoder_start_id
            last = torch.full((len(cohort.rows),), start, dtype=torch.long, device=self._device)
            if self._rows:
                self._state.extend(state)
                self._last = torch.cat([self._last, last])
            else:
                self._state, self._last = state, last
            self._rows += cohort.rows
        return [row.id for row in rows]

    def run_pass(self) -> list[Event]:
        """One decoder pass for every live row; finished rows leave the batch."""
        events, self._pending = self._pending, []
        rows = self._rows
        if not rows:
            return events
        drafts = self._propose(rows)
        accepted, next_tokens = advance(
            self.model, self._state, self._last, drafts, self._chooser(rows), relaxed=self.relaxed
        )
        next_list = next_tokens.tolist()
        for cohort, positions in _cohorts(rows):
            if cohort.drafter is not None:
                cohort.drafter.observe(
                    [accepted[i] for i in positions], [next_list[i] for i in positions]
                )
        eos = self.model.config.eos_id
        finished = []
        for i, row in enumerate(rows):
            row.stats.passes += 1
            row.stats.drafted += len(drafts[i])
            row.stats.accepted += accepted[i]
            new = [*drafts[i][: accepted[i]], next_list[i]]
            event = _append(row.generated, new, row.budget, eos, row.id)
            events.append(event)
            if event.finish is not None:
                finished.append(row.id)
        self._last = next_tokens
        self.retire(finished)
        return events

    def retire(self, row_ids: Sequence[int]) -> None:
        """Drop rows from the batch (and their drafters) so they stop costing compute."""
        gone = set(row_ids)
        if not any(row.id in gone for row in self._rows):
            return
        keep = [i for i, row in enumerate(self._rows) if row.id not in gone]
        index = self._index(keep)
        self.model.reorder(self._state, index)
        self._last = self._last.index_select(0, index)
        for cohort, _ in _cohorts(self._rows):
            kept = [n for n, row in enumerate(cohort.rows) if row.id not in gone]
            if len(kept) < len(cohort.rows) and cohort.drafter is not None:
                cohort.drafter.select(kept)
            cohort.rows = [cohort.rows[n] for n in kept]
        self._rows = [self._rows[i] for i in keep]

    # -- one pass --------------------------------------------------------------------------

    def _propose(self, rows: list[_Row]) -> list[list[int]]:
        drafts: list[list[int]] = [[] for _ in rows]
        for cohort, positions in _cohorts(rows):
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

    def _chooser(self, rows: list[_Row]) -> Chooser:
        """Argmax, except for the rows of cohorts with their own chooser (sampling): each
        such cohort chooses for its rows in one call, as it would alone."""
        choosing = [(c, p) for c, p in _cohorts(rows) if c.chooser is not None]
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
        return torch.device(self.model.device)

    def _index(self, positions: Sequence[int]) -> Tensor:
        return torch.tensor(list(positions), dtype=torch.long, device=self._device)


def _cohorts(rows: list[_Row]) -> list[tuple[_Cohort, list[int]]]:
    """Each cohort among ``rows`` with its rows' positions, in order of first appearance."""
    found: dict[int, tuple[_Cohort, list[int]]] = {}
    for i, row in enumerate(rows):
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
