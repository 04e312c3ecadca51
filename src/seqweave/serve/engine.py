"""Continuous batching over the decoder-state API.

One engine thread owns the model and one running decoder state. Every
iteration it admits waiting requests into the batch (encoding them and
appending their rows with ``DecoderState.extend``), takes one decoder pass for
all rows (``loop.advance``: each row feeds its last token and its own draft,
and accepts its own number of tokens) and drops finished or abandoned rows
with ``reorder``. Rows of different decoders share the pass: greedy rows
draft nothing, IAD rows draft from their source, speculative or GAD rows from
the draft model (an autoregressive one or a nar_drafter, whichever the server
was given), sampling rows sample. Beam-search requests do not fit a row-wise
batch (a request is several rows that reorder together); they run as their
own batch between passes.

Tokens are handed to each request's ``sink`` as they are accepted, from the
engine thread; the HTTP layer turns them into responses or SSE events.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_batch
from seqweave.decoding.common import RowStats, length_budget, pad_batch
from seqweave.decoding.loop import Drafter, advance
from seqweave.decoding.registry import DECODER_SPECS, draft_decoder

log = logging.getLogger("seqweave.serve")

Sink = Callable[[list[int], str | None], None]  # accepted tokens, finish reason or None


ADMIT_GROUP = 4  # newcomers that join a busy batch at once
ADMIT_AFTER = 0.02  # seconds a newcomer waits at most for others to join with


class EngineFull(Exception):
    """The waiting queue is full: the caller should retry later (HTTP 429)."""


class EngineClosed(Exception):
    """The engine is draining or stopped: no new work (HTTP 503)."""


@dataclass
class Options:
    decoder: str = "iad"
    max_new_tokens: int = 64
    beam_size: int = 4
    length_penalty: float = 1.0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Job:
    """One input sequence in flight."""

    source: list[int]
    options: Options
    sink: Sink
    id: int = field(default_factory=itertools.count().__next__)
    cancelled: bool = False
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    stats: RowStats = field(default_factory=RowStats)


@dataclass(frozen=True)
class Counters:
    """What the engine has done since it started, for tests and metrics to wait on
    instead of sleeping: inputs accepted into the queue, rows admitted into the batch,
    rows admitted while other rows were already decoding (joined a running batch), and
    decoder passes."""

    submitted: int = 0
    admitted: int = 0
    joined: int = 0
    passes: int = 0


@dataclass
class _Row:
    job: Job
    budget: int
    generated: list[int] = field(default_factory=list)
    done: bool = False  # finished or abandoned, parked until the next compaction
    drafter: Drafter | None = None  # its own drafter (IAD), not the draft model's shared one
    sampler: Callable | None = None


class Engine:
    def __init__(self, model, max_batch: int = 32, max_queue: int = 256, draft=None):
        self.model = model  # a seqweave.Seq2Seq
        self.network = model.network
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.draft = draft.network if draft is not None else None
        # the decoder whose rows draft with the draft model: one drafter for all its rows
        self.draft_decoder = draft_decoder(self.draft)
        self.decode_defaults = model.decode_config
        self._waiting: collections.deque[Job] = collections.deque()
        self._lock = threading.Condition()
        self._rows: list[_Row] = []
        self._state = None
        self._last: torch.Tensor | None = None
        self._drafter = None  # the draft model's drafter, shared by the rows that use it
        self._closing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="seqweave-engine", daemon=True)
        self._counters = Counters()
        self.on_pass: Callable[[int, int, int], None] | None = None  # rows, drafted, accepted

    # -- public ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, jobs: list[Job]) -> None:
        """Queue jobs (all or none). Raises EngineClosed or EngineFull."""
        with self._lock:
            if self._closing:
                raise EngineClosed("the server is shutting down")
            if len(self._waiting) + len(jobs) > self.max_queue:
                raise EngineFull(f"{len(self._waiting)} requests waiting (limit {self.max_queue})")
            self._waiting.extend(jobs)
            self._count(submitted=len(jobs))
            self._lock.notify()

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return sum(not row.done for row in self._rows)

    @property
    def idle(self) -> bool:
        return not self._waiting and not self.running

    def counters(self) -> Counters:
        """A snapshot of the engine's counters (read-only)."""
        return self._counters

    def _count(self, **increments: int) -> None:
        with self._lock:  # a re-entrant lock: submit() counts while holding it
            values = {k: getattr(self._counters, k) + n for k, n in increments.items()}
            self._counters = dataclasses.replace(self._counters, **values)

    def close(self, drain: bool = True, timeout: float = 60.0) -> None:
        """Stop taking work; with ``drain`` finish what is queued or running first."""
        with self._lock:
            log.info(
                "closing: %d inputs waiting, %d rows decoding", len(self._waiting), self.running
            )
            self._closing = True
            if not drain:
                for job in self._waiting:
                    job.sink([], "cancelled")
                self._waiting.clear()
            self._lock.notify()
        deadline = time.monotonic() + timeout
        while drain and not self.idle and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            self._stopped = True
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    # -- engine thread ---------------------------------------------------------------------

    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._lock:
                while not self._waiting and not self.running and not self._stopped:
                    self._lock.wait(timeout=0.5)
                if self._stopped:
                    return
                admitted = self._take_waiting()
            try:
                with torch.inference_mode():
                    self._admit(admitted)
                    if self.running:
                        self._pass()
            except Exception:  # a failing batch must not take the server down
                log.exception("decoding failed; the affected requests get an error")
                self._fail_all()

    def _take_waiting(self) -> list[Job]:
        """Waiting jobs that join now. A busy batch lets newcomers gather for a moment
        (``ADMIT_AFTER`` seconds, or ``ADMIT_GROUP`` of them): encoding them together
        and extending the batch once costs far less than one by one."""
        room = self.max_batch - self.running
        gathering = self.running and 0 < len(self._waiting) < min(room, ADMIT_GROUP)
        if gathering and time.monotonic() - self._waiting[0].submitted < ADMIT_AFTER:
            return []
        taken = []
        while self._waiting and (len(taken) < room or _grouped(self._waiting[0])):
            taken.append(self._waiting.popleft())
        return taken

    def _admit(self, jobs: list[Job]) -> None:
        now = time.monotonic()
        live = [j for j in jobs if not j.cancelled]
        for job in jobs:
            job.started = now
            if job.cancelled:
                job.sink([], "cancelled")
        self._run_beams([j for j in live if _grouped(j)])
        rowwise = [j for j in live if not _grouped(j)]
        if not rowwise:
            return
        src, lengths = pad_batch(
            [j.source for j in rowwise], self.network.config.pad_id, self.network.device
        )
        state = self.network.start(self.network.encode(src, lengths))
        budgets = [
            length_budget(self.network, lengths[i : i + 1], j.options.max_new_tokens)[0]
            for i, j in enumerate(rowwise)
        ]
        start = torch.full(
            (len(rowwise),),
            self.network.config.decoder_start_id,
            dtype=torch.long,
            device=self.network.device,
        )
        drafting = [j.source for j in rowwise if j.options.decoder == self.draft_decoder]
        if drafting:
            build = DECODER_SPECS[self.draft_decoder].drafter
            drafter = build(self.decode_defaults, drafting, self.draft)
            if self._drafter is None:
                self._drafter = drafter
            else:
                self._drafter.extend(drafter)
        if any(row.done for row in self._rows):
            self._compact()
        if self._state is None or not self._rows:
            self._state, self._last = state, start
        else:
            self._state.extend(state)
            self._last = torch.cat([self._last, start])
        joined = len(rowwise) if self.running else 0
        for job, budget in zip(rowwise, budgets, strict=True):
            self._rows.append(self._new_row(job, budget))
        self._count(admitted=len(rowwise), joined=joined)

    def _new_row(self, job: Job, budget: int) -> _Row:
        options, defaults = job.options, self.decode_defaults
        row = _Row(job, budget)
        spec = DECODER_SPECS[options.decoder]
        if spec.drafter is not None and spec.draft_model == "none":
            row.drafter = spec.drafter(defaults, [job.source], None)
        if spec.chooser is not None:
            row.sampler = spec.chooser(options)
        return row

    def _pass(self) -> None:
        rows = self._rows
        live = [i for i, row in enumerate(rows) if not row.done]
        share = max(2, self.decode_defaults.draft_tokens_per_pass // max(len(live), 1))
        drafts: list[list[int]] = [[] for _ in rows]
        for i in live:
            row = rows[i]
            if row.drafter is not None:
                room = min(share, row.budget - len(row.generated) - 1)
                drafts[i] = row.drafter.propose([0], [row.generated], [room])[0]
        shared = self._drafting_rows()
        if shared:
            rooms = [rows[i].budget - len(rows[i].generated) - 1 for i in shared]
            proposed = self._drafter.propose(shared, [rows[i].generated for i in shared], rooms)
            for i, draft in zip(shared, proposed, strict=True):
                drafts[i] = draft
        idle = torch.tensor([row.done for row in rows], device=self.network.device)
        accepted, next_tokens = advance(
            self.network, self._state, self._last, drafts, self._chooser(rows), idle
        )
        next_list = next_tokens.tolist()
        if shared:
            self._drafter.observe([accepted[i] for i in shared], [next_list[i] for i in shared])
        self._count(passes=1)
        if self.on_pass is not None:
            self.on_pass(len(live), sum(map(len, drafts)), sum(accepted))
        self._last = next_tokens
        for i in live:
            row = rows[i]
            if row.drafter is not None:
                row.drafter.observe([accepted[i]], [next_list[i]])
            row.job.stats.passes += 1
            row.job.stats.drafted += len(drafts[i])
            row.job.stats.accepted += accepted[i]
            finish = self._append(row, [*drafts[i][: accepted[i]], next_list[i]])
            if finish is not None or row.job.cancelled:
                self._retire(i)
        if sum(row.done for row in rows) * 2 >= len(rows):
            self._compact()

    def _drafting_rows(self) -> list[int]:
        """Live rows that draft with the draft model, in batch order: the drafter's rows,
        one to one."""
        decoder = self.draft_decoder
        return [
            i for i, r in enumerate(self._rows) if not r.done and r.job.options.decoder == decoder
        ]

    def _retire(self, i: int) -> None:
        """Park a finished row: it stays in the batch, idle (no work, no growth), until the
        next compaction; a row that drafts with the draft model leaves its drafter at once."""
        if self._rows[i].job.options.decoder == self.draft_decoder:
            before = self._drafting_rows()
            self._rows[i].done = True
            self._drafter.select([n for n, j in enumerate(before) if j != i])
        self._rows[i].done = True

    def _chooser(self, rows: list[_Row]):
        samplers = [(i, row.sampler) for i, row in enumerate(rows) if row.sampler is not None]
        if not samplers:
            return lambda logits: logits.argmax(dim=-1)

        def choose(logits: torch.Tensor) -> torch.Tensor:
            tokens = logits.argmax(dim=-1)
            for i, sampler in samplers:
                tokens[i] = sampler(logits[i : i + 1])[0]
            return tokens

        return choose

    def _append(self, row: _Row, new: list[int]) -> str | None:
        """Hand a row's accepted tokens to its request; return its finish reason, if any."""
        eos = self.network.config.eos_id
        take = new[: row.budget - len(row.generated)]
        finish = None
        if eos in take:
            take, finish = take[: take.index(eos)], "stop"
        row.generated.extend(take)
        if finish is None and len(row.generated) >= row.budget:
            finish = "length"
        if row.job.cancelled:
            return "cancelled"
        if finish is not None:
            row.job.finished = time.monotonic()
        row.job.sink(take, finish)
        return finish

    def _compact(self) -> None:
        """Drop parked rows from the batch (one copy of the live rows' caches)."""
        keep = [i for i, row in enumerate(self._rows) if not row.done]
        index = torch.tensor(keep, dtype=torch.long, device=self.network.device)
        self.network.reorder(self._state, index)
        self._last = self._last.index_select(0, index)
        self._rows = [self._rows[i] for i in keep]

    def _run_beams(self, jobs: list[Job]) -> None:
        for job in jobs:
            o = job.options
            cfg = DecodeConfig(
                decoder=o.decoder,
                beam_size=o.beam_size,
                length_penalty=o.length_penalty,
                max_new_tokens=o.max_new_tokens,
            )
            (output,) = decode_batch(self.network, [job.source], cfg)
            job.stats = output.stats
            job.finished = time.monotonic()
            job.sink(output.tokens, "stop" if output.finished else "length")

    def _fail_all(self) -> None:
        for row in self._rows:
            if not row.done:
                row.job.sink([], "error")
        self._rows, self._state, self._last, self._drafter = [], None, None, None


def _grouped(job: Job) -> bool:
    """A job whose decoder needs several rows that reorder together (beam search)."""
    return DECODER_SPECS[job.options.decoder].grouped
