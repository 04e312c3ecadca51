"""Continuous batching over the decoder-state API.

One engine thread owns the model and one ``DecodeSession`` (``decoding/session.py``),
which keeps the rows. Every iteration it admits waiting requests into the
session (encoded together, each with its own settings), takes one session pass
for all rows (each row feeds its last token and its own draft, and accepts its
own number of tokens) and retires abandoned rows. Rows live in a slot cache
preallocated for ``max_batch`` rows (``decoding/slots.py``): they join and leave by
slot index, nothing is copied or grown while they decode. Rows of different
decoders share the pass: greedy rows draft nothing, IAD rows draft from their
source, speculative or GAD rows from the draft model (an autoregressive one or a
nar_drafter, whichever the server was given), sampling rows sample, and a
beam-search request is ``beam_size`` rows of the session that follow their beams
together, so it shares the passes too and never stalls the other rows. Room in
the batch is counted in rows: a request that does not fit waits in the queue.

With ``decode.compile`` (``seqweave serve --compile``) the decoder step is compiled and
every graph a pass can need is built when the engine is made (``serve/warmup.py``).

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
from seqweave.decoding.common import RowStats
from seqweave.decoding.registry import DECODER_SPECS, draft_decoder
from seqweave.decoding.session import DecodeSession
from seqweave.decoding.slots import slot_pool

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
    tokens: list[int] = field(default_factory=list)  # the output so far
    from_draft: list[bool] = field(default_factory=list)  # per output token: an accepted draft


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


class Engine:
    """``max_batch`` rows decode at once in a slot cache allocated here for sources of up to
    ``max_input_tokens`` and outputs of up to ``max_new_tokens`` (default: the model's
    ``max_positions``); ``cache_bytes`` is its size, logged at start-up."""

    def __init__(
        self,
        model,
        max_batch: int = 32,
        max_queue: int = 256,
        draft=None,
        max_input_tokens: int | None = None,
        max_new_tokens: int | None = None,
    ):
        self.model = model  # a seqweave.Seq2Seq
        self.network = model.network
        self.max_batch = max_batch
        longest = model.network.config.max_positions
        with torch.inference_mode():
            self._slots = slot_pool(
                self.network, max_batch, max_input_tokens or longest, max_new_tokens or longest
            )
        self.cache_bytes = self._slots.nbytes
        log.info(
            "slot cache: %d rows x %d cache slots x %d memory positions = %.1f MiB",
            max_batch,
            self._slots.capacity,
            self._slots.span,
            self.cache_bytes / 2**20,
        )
        self.decode_defaults = model.decode_config
        # decode.compile: compiled and warmed up here, before the server says it is ready
        self.warm_up_seconds = self._compile() if self.decode_defaults.compile else None
        self.max_queue = max_queue
        self.draft = draft.network if draft is not None else None
        # the decoder whose rows draft with the draft model: one drafter for all its rows
        self.draft_decoder = draft_decoder(self.draft)
        self._waiting: collections.deque[Job] = collections.deque()
        self._lock = threading.Condition()
        self._session = self._new_session()
        self._jobs: dict[int, Job] = {}  # the session's row id -> its job
        self._closing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="seqweave-engine", daemon=True)
        self._counters = Counters()
        self.on_pass: Callable[[int, int, int], None] | None = None  # rows, drafted, accepted

    def _compile(self) -> float:
        """Compile the decoder step (``decode.compile``) and build its graphs now, so that
        no request waits for the compiler; returns the seconds that took."""
        from seqweave.models.compiled import compile_decoder
        from seqweave.serve.warmup import warm_up

        compile_decoder(self.network)
        seconds = warm_up(self.network, self._slots)
        log.info("compiled encoder and decoder step: warm-up %.1f s", seconds)
        return seconds

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
        """Rows decoding (a beam request counts its beams)."""
        return self._session.size

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
                    if self._session:
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
        taken, rows = [], 0
        while self._waiting:
            need = _rows(self._waiting[0])
            if rows + need > room and (taken or self.running):
                break  # no room: it waits (a request wider than the batch goes in alone)
            taken.append(self._waiting.popleft())
            rows += need
        return taken

    def _new_session(self) -> DecodeSession:
        """Rows join and leave the engine's slot cache by slot index."""
        settings = dataclasses.replace(self.decode_defaults, decoder="greedy", relaxed_top=1)
        return DecodeSession(self.network, settings, self.draft, slots=self._slots)

    def _admit(self, jobs: list[Job]) -> None:
        now = time.monotonic()
        live = [j for j in jobs if not j.cancelled]
        for job in jobs:
            job.started = now
            if job.cancelled:
                job.sink([], "cancelled")
        if not live:
            return
        joined = len(live) if self.running else 0
        settings = [self._settings(job.options) for job in live]
        rows = self._session.admit([job.source for job in live], settings)
        for row, job in zip(rows, live, strict=True):
            self._jobs[row] = job
            job.stats = self._session.stats[row]
        self._count(admitted=len(live), joined=joined)

    def _settings(self, options: Options) -> DecodeConfig:
        """A request's decode settings: its options over the server's defaults. One object
        per request, so a sampling request keeps its own generator (its seed reproduces)."""
        return dataclasses.replace(
            self.decode_defaults,
            decoder=options.decoder,
            max_new_tokens=options.max_new_tokens,
            temperature=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            seed=options.seed,
            beam_size=options.beam_size,
            length_penalty=options.length_penalty,
            relaxed_top=1,
        )

    def _pass(self) -> None:
        """One session pass; tokens go to each request's sink, cancelled rows leave."""
        passed = bool(self._session.live)
        events = self._session.run_pass()
        if passed:
            self._count(passes=1)
            if self.on_pass is not None:
                self.on_pass(*self._session.last_pass)
        now, cancelled = time.monotonic(), []
        for event in events:
            job = self._jobs[event.row]
            if job.cancelled:
                cancelled.append(event.row)
            else:
                if event.finish is not None:
                    job.finished = now
                written = len(event.tokens) - event.drafted
                job.tokens += event.tokens
                job.from_draft += [True] * event.drafted + [False] * written
                job.sink(event.tokens, event.finish)
            if job.cancelled or event.finish is not None:
                del self._jobs[event.row]
        self._session.retire(cancelled)

    def _fail_all(self) -> None:
        for job in self._jobs.values():
            job.sink([], "error")
        self._jobs, self._session = {}, self._new_session()


def _rows(job: Job) -> int:
    """The rows a job takes in the batch: its beams for a grouped decoder (beam search)."""
    return job.options.beam_size if DECODER_SPECS[job.options.decoder].grouped else 1
