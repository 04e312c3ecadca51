"""The routes: health and metrics, ``/v1/generate``, the OpenAI-compatible ``/v1/completions``, and
``/v1/recommend`` for a model that ranks items (sasrec).

Each route's OpenAPI entry names its real request and response bodies and every error it
can answer, so the schema is a contract that the fuzz tests hold the server to.
"""

from __future__ import annotations

import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from seqweave.serve.errors import ERROR_RESPONSES
from seqweave.serve.schemas import (
    CompletionRequest,
    CompletionResponse,
    GenerateRequest,
    GenerateResponse,
    Health,
    Live,
    RecommendRequest,
    RecommendResponse,
)
from seqweave.serve.streams import collect, job_stats, streaming_response, token_spans

# one server-sent event: ``data`` is a JSON chunk ({index, text, finish_reason[, stats, spans]} or a
# completion with one choice), and the last event's is ``[DONE]``
EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string", "contentMediaType": "application/json"}},
}
EVENTS = {"text/event-stream": {"schema": EVENT}}
STREAMED = {200: {"content": EVENTS, "description": "JSON, or server-sent events with stream"}}


def add_routes(app: FastAPI, server) -> None:
    add_health_routes(app, server)
    add_generate_route(app, server)
    add_completions_route(app, server)
    add_recommend_route(app, server)


def add_health_routes(app: FastAPI, server) -> None:
    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health():
        ready = server.ready
        body = {
            "status": "ok" if ready else "unavailable",
            "live": True,
            "ready": ready,
            "draining": server.draining,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/health/live", response_model=Live)
    async def live():
        return {"live": True}

    text = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}

    @app.get("/metrics", response_class=PlainTextResponse, responses=text)
    async def metrics():
        return PlainTextResponse(server.metrics.render(), media_type=server.metrics.content_type)


def add_generate_route(app: FastAPI, server) -> None:
    responses = {**ERROR_RESPONSES, **STREAMED}

    @app.post(
        "/v1/generate",
        response_model=GenerateResponse,
        response_model_exclude_unset=True,  # spans only when asked for
        responses=responses,
    )
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
                    if body.details:
                        event["spans"] = token_spans(job.tokens, job.from_draft, server.text)
                return event

            return streaming_response(server, jobs, queues, timeout, shape, request.url.path)
        results = await collect(server, request, jobs, queues, timeout)
        server.metrics.finished(request.url.path, started, jobs)
        described = []
        for (tokens, finish), job in zip(results, jobs, strict=True):
            result = {"finish_reason": finish, "tokens": len(tokens), "stats": job_stats(job)}
            if body.details:
                result["spans"] = token_spans(job.tokens, job.from_draft, server.text)
            described.append(result)
        return {"outputs": [server.text(tokens) for tokens, _ in results], "results": described}


def add_completions_route(app: FastAPI, server) -> None:
    responses = {**ERROR_RESPONSES, **STREAMED}

    @app.post("/v1/completions", response_model=CompletionResponse, responses=responses)
    async def completions(body: CompletionRequest, request: Request):
        started = time.monotonic()
        texts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        jobs, queues = server.jobs(texts, server.completion_options(body))
        header = {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.model or "seqweave",
        }
        timeout = server.limits.timeout
        if body.stream:

            def shape(i, delta, finish, job):
                choice = {"index": i, "text": delta, "finish_reason": finish, "logprobs": None}
                return {**header, "choices": [choice]}

            return streaming_response(server, jobs, queues, timeout, shape, request.url.path)
        results = await collect(server, request, jobs, queues, timeout)
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
        return {**header, "choices": choices, "usage": usage}


def add_recommend_route(app: FastAPI, server) -> None:
    @app.post("/v1/recommend", response_model=RecommendResponse, responses=ERROR_RESPONSES)
    def recommend(body: RecommendRequest, request: Request):
        """Runs in the framework's thread pool: one pass of the ranker, no engine."""
        started = time.monotonic()
        items = server.recommend(body.history, body.top_k)
        server.metrics.finished(request.url.path, started, [])
        return {"items": items}
