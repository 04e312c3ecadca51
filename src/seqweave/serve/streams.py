"""Waiting on a request's jobs: all outputs at once (``collect``) or as server-sent events
(``stream_events``), with the request's timeout and client disconnects cancelling its rows."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from seqweave.serve.engine import Job
from seqweave.serve.errors import ApiError


async def collect(
    server, request: Request, jobs: list[Job], queues: list[asyncio.Queue], timeout: float
) -> list[tuple[list[int], str]]:
    """Wait for every job to finish; cancel them on timeout (504) or client disconnect."""
    tokens: list[list[int]] = [[] for _ in jobs]
    finishes: list[str | None] = [None] * len(jobs)
    deadline = time.monotonic() + timeout
    merged: asyncio.Queue = asyncio.Queue()
    pumps = [asyncio.create_task(_pump(i, q, merged)) for i, q in enumerate(queues)]
    try:
        while any(f is None for f in finishes):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(504, "timeout", f"the request took longer than {timeout:g} s")
            try:
                i, new, finish = await asyncio.wait_for(merged.get(), min(remaining, 0.25))
            except TimeoutError:
                if await request.is_disconnected():
                    raise asyncio.CancelledError from None
                continue
            tokens[i].extend(new)
            finishes[i] = finish
    finally:
        for pump in pumps:
            pump.cancel()
        if any(f is None for f in finishes):
            for job in jobs:
                job.cancelled = True
    if "error" in finishes:
        raise ApiError(500, "internal_error", "decoding failed; see the server log")
    return list(zip(tokens, finishes, strict=True))  # type: ignore[arg-type]


async def stream_events(
    server, jobs: list[Job], queues: list[asyncio.Queue], timeout: float, shape
) -> AsyncIterator[str]:
    """Server-sent events: text as it is accepted (several tokens at a time after a draft)."""
    tokens: list[list[int]] = [[] for _ in jobs]
    sent = [""] * len(jobs)
    done = [False] * len(jobs)
    deadline = time.monotonic() + timeout
    merged: asyncio.Queue = asyncio.Queue()
    pumps = [asyncio.create_task(_pump(i, q, merged)) for i, q in enumerate(queues)]
    try:
        while not all(done):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                yield _sse(shape(-1, "", "timeout", None))
                break
            try:
                i, new, finish = await asyncio.wait_for(merged.get(), remaining)
            except TimeoutError:
                continue
            tokens[i].extend(new)
            text = server.text(tokens[i])
            if finish is None and text.endswith("\ufffd"):
                continue  # a character split across tokens: wait for the rest
            delta, sent[i] = text[len(sent[i]) :], text
            if delta or finish is not None:
                yield _sse(shape(i, delta, finish, jobs[i] if finish else None))
            done[i] = finish is not None
        yield "data: [DONE]\n\n"
    finally:
        for pump in pumps:
            pump.cancel()
        for i, job in enumerate(jobs):
            if not done[i]:
                job.cancelled = True


async def _pump(i: int, queue: asyncio.Queue, merged: asyncio.Queue) -> None:
    while True:
        new, finish = await queue.get()
        await merged.put((i, new, finish))
        if finish is not None:
            return


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def job_stats(job: Job) -> dict:
    started = job.started or job.submitted
    finished = job.finished or time.monotonic()
    return {
        **job.stats.as_dict(),
        "queue_seconds": round(started - job.submitted, 6),
        "compute_seconds": round(finished - started, 6),
    }


def token_spans(tokens: list[int], from_draft: list[bool], decode) -> list[dict]:
    """Runs of ``tokens`` of one origin (``from_draft[i]``: an accepted draft token), each with
    its text. A token's text is what it adds to ``decode`` of the prefix, so the texts join
    into the output: a token that adds none (a special token) joins the run before it, and a
    character split across tokens belongs to the token that completes it."""
    spans: list[dict] = []
    shown, waiting = "", 0  # the text so far; tokens of a character not yet complete
    for end in range(1, len(tokens) + 1):
        text = decode(tokens[:end])
        if end < len(tokens) and (text.endswith("\ufffd") or not text.startswith(shown)):
            waiting += 1
            continue
        delta, shown = text[len(shown) :], text
        count, waiting = waiting + 1, 0
        drafted = from_draft[end - 1]
        if spans and (not delta or spans[-1]["drafted"] == drafted):
            spans[-1]["text"] += delta
            spans[-1]["tokens"] += count
        elif delta:
            spans.append({"text": delta, "tokens": count, "drafted": drafted})
        else:
            waiting = count  # nothing shown yet: it joins the first run
    return spans


def streaming_response(server, jobs, queues, timeout, shape, path) -> StreamingResponse:
    server.metrics.request(path, 200)
    events = stream_events(server, jobs, queues, timeout, shape)
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
