"""The HTTP API: FastAPI routes over the continuous-batching engine.

Every error is JSON ``{"error": {"type", "message"}}`` with a documented status:
422 malformed or invalid request, 413 input longer than the limit, 429 queue
full (with ``Retry-After``), 503 not ready or shutting down, 504 past the
request's timeout. A client that disconnects frees its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from seqweave.serve.engine import Engine, EngineClosed, EngineFull, Job, Options
from seqweave.serve.metrics import ServerMetrics
from seqweave.serve.schemas import CompletionRequest, GenerateRequest


@dataclass
class Limits:
    max_input_tokens: int = 256
    max_new_tokens: int = 256
    max_inputs: int = 64
    timeout: float = 60.0


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers


class Server:
    """What the routes need: the engine (once loaded), the tokenizer, limits, metrics."""

    def __init__(self, limits: Limits, default_decoder: str):
        self.limits = limits
        self.default_decoder = default_decoder
        self.engine: Engine | None = None
        self.model = None
        self.draining = False
        self.metrics = ServerMetrics(self)

    @property
    def ready(self) -> bool:
        return self.engine is not None and not self.draining

    def attach(self, model, engine: Engine) -> None:
        self.model, self.engine = model, engine
        engine.on_pass = self.metrics.observe_pass

    # -- requests -> jobs ------------------------------------------------------------------

    def jobs(self, texts: list[str], options: Options) -> tuple[list[Job], list[asyncio.Queue]]:
        if not self.ready:
            status = "shutting down" if self.draining else "loading the model"
            raise ApiError(503, "unavailable", f"the server is {status}", {"Retry-After": "1"})
        if not texts or any(not t.strip() for t in texts):
            raise ApiError(422, "invalid_request", "inputs must be non-empty strings")
        if len(texts) > self.limits.max_inputs:
            raise ApiError(
                422,
                "invalid_request",
                f"{len(texts)} inputs; at most {self.limits.max_inputs} per request",
            )
        if options.max_new_tokens > self.limits.max_new_tokens:
            raise ApiError(
                422,
                "invalid_request",
                f"max_new_tokens={options.max_new_tokens} is over the limit "
                f"of {self.limits.max_new_tokens}",
            )
        if options.decoder in ("spec", "gad") and options.decoder != self.engine.draft_decoder:
            kind = "an autoregressive" if options.decoder == "spec" else "a nar_drafter"
            raise ApiError(
                422,
                "invalid_request",
                f"decoder {options.decoder!r} needs the server to run with --draft-model "
                f"of {kind} model",
            )
        sources = self.model.encode_sources(texts, clip=False)
        for i, source in enumerate(sources):
            if len(source) > self.limits.max_input_tokens:
                raise ApiError(
                    413,
                    "input_too_long",
                    f"input {i} has {len(source)} tokens; the limit is "
                    f"{self.limits.max_input_tokens}",
                )
        loop = asyncio.get_running_loop()
        queues, jobs = [], []
        for source in sources:
            queue: asyncio.Queue = asyncio.Queue()
            sink = _threadsafe_sink(loop, queue, self.metrics)
            jobs.append(Job(source=source, options=options, sink=sink))
            queues.append(queue)
        try:
            self.engine.submit(jobs)
        except EngineFull as error:
            raise ApiError(429, "overloaded", str(error), {"Retry-After": "1"}) from None
        except EngineClosed as error:
            raise ApiError(503, "unavailable", str(error), {"Retry-After": "1"}) from None
        return jobs, queues

    def options(self, body: GenerateRequest) -> Options:
        limits = self.limits
        return Options(
            decoder=body.decoder or self.default_decoder,
            max_new_tokens=body.max_new_tokens or min(64, limits.max_new_tokens),
            beam_size=body.beam_size or 4,
            length_penalty=body.length_penalty if body.length_penalty is not None else 1.0,
            temperature=body.temperature if body.temperature is not None else 1.0,
            top_k=body.top_k or 0,
            top_p=body.top_p if body.top_p is not None else 1.0,
            seed=body.seed,
        )

    def text(self, tokens: list[int]) -> str:
        return self.model.tokenizer.decode(tokens)


def _threadsafe_sink(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, metrics):
    """Called in the engine thread; hands tokens to the request's event loop."""

    def sink(tokens: list[int], finish: str | None) -> None:
        metrics.generated(len(tokens))
        loop.call_soon_threadsafe(queue.put_nowait, (tokens, finish))

    return sink


async def collect(
    server: Server, request: Request, jobs: list[Job], queues: list[asyncio.Queue], timeout: float
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
    server: Server, jobs: list[Job], queues: list[asyncio.Queue], timeout: float, shape
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


def create_app(server: Server, on_startup=None) -> FastAPI:
    """The routes; ``on_startup()`` runs when the server starts (it begins loading)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if on_startup is not None:
            on_startup()
        yield

    app = FastAPI(title="seqweave", version="0.1.0", lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        server.metrics.request(request.url.path, error.status)
        body = {"error": {"type": error.kind, "message": error.message}}
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        server.metrics.request(request.url.path, 422)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        body = {"error": {"type": "invalid_request", "message": problems}}
        return JSONResponse(body, status_code=422)

    @app.get("/health")
    async def health():
        ready = server.ready
        body = {
            "status": "ok" if ready else "unavailable",
            "live": True,
            "ready": ready,
            "draining": server.draining,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/health/live")
    async def live():
        return {"live": True}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(server.metrics.render(), media_type=server.metrics.content_type)

    @app.post("/v1/generate")
    async def generate(body: GenerateRequest, request: Request):
        started = time.monotonic()
        texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
        jobs, queues = server.jobs(texts, server.options(body))
        timeout = body.timeout or server.limits.timeout
        if body.stream:

            def shape(i, delta, finish, job):
                event = {"index": i, "text": delta, "finish_reason": finish}
                if job is not None:
                    event["stats"] = job_stats(job)
                return event

            return _streaming(server, jobs, queues, timeout, shape, request.url.path)
        results = await collect(server, request, jobs, queues, timeout)
        server.metrics.finished(request.url.path, started, jobs)
        return {
            "outputs": [server.text(tokens) for tokens, _ in results],
            "results": [
                {"finish_reason": finish, "tokens": len(tokens), "stats": job_stats(job)}
                for (tokens, finish), job in zip(results, jobs, strict=True)
            ],
        }

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        started = time.monotonic()
        texts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        sampling = body.temperature > 0
        options = Options(
            decoder="sample" if sampling else server.default_decoder,
            max_new_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
        )
        jobs, queues = server.jobs(texts, options)
        ident, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        model_name = body.model or "seqweave"

        def completion(choices, usage=None):
            out = {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": model_name,
                "choices": choices,
            }
            if usage is not None:
                out["usage"] = usage
            return out

        if body.stream:

            def shape(i, delta, finish, job):
                return completion(
                    [{"index": i, "text": delta, "finish_reason": finish, "logprobs": None}]
                )

            return _streaming(server, jobs, queues, server.limits.timeout, shape, request.url.path)
        results = await collect(server, request, jobs, queues, server.limits.timeout)
        server.metrics.finished(request.url.path, started, jobs)
        prompt_tokens = sum(len(j.source) for j in jobs)
        completion_tokens = sum(len(tokens) for tokens, _ in results)
        choices = [
            {"index": i, "text": server.text(tokens), "finish_reason": finish, "logprobs": None}
            for i, (tokens, finish) in enumerate(results)
        ]
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return completion(choices, usage)

    return app


def _streaming(server, jobs, queues, timeout, shape, path) -> StreamingResponse:
    server.metrics.request(path, 200)
    events = stream_events(server, jobs, queues, timeout, shape)
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
