"""The HTTP API: FastAPI routes over the continuous-batching engine.

Every error is JSON ``{"error": {"type", "message"}}`` with a documented status:
401 no valid API key (when the server has keys), 422 malformed or invalid request
(text that is not valid Unicode included), 413 input longer than the limit, 429 queue
full (with ``Retry-After``), 503 not ready or shutting down, 504 past the
request's timeout. A client that disconnects frees its rows.

The parts: ``routes`` (the endpoints), ``streams`` (waiting on jobs), ``errors`` (the error
shape), ``auth`` (API keys), ``schemas`` (the bodies); this module holds the server's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import FastAPI

from seqweave.decoding.registry import DECODER_SPECS, needs_words
from seqweave.errors import DataError
from seqweave.serve.auth import BearerAuth
from seqweave.serve.engine import Engine, EngineClosed, EngineFull, Job, Options
from seqweave.serve.errors import ApiError, install_error_handlers
from seqweave.serve.metrics import ServerMetrics
from seqweave.serve.openapi import server_openapi
from seqweave.serve.playground import add_playground_route
from seqweave.serve.routes import add_routes
from seqweave.serve.schemas import CompletionRequest, GenerateRequest

__all__ = ["ApiError", "Limits", "Server", "create_app"]

MIN_TEMPERATURE = 1e-3  # indistinguishable from argmax but for near-exact ties


@dataclass
class Limits:
    max_input_tokens: int = 256
    max_new_tokens: int = 256
    max_inputs: int = 64
    timeout: float = 60.0


class Server:
    """What the routes need: the engine (once loaded), the tokenizer, limits, metrics. A model
    that ranks items (sasrec) has no engine and answers ``/v1/recommend`` only."""

    def __init__(self, limits: Limits, default_decoder: str):
        self.limits = limits
        self.default_decoder = default_decoder
        self.engine: Engine | None = None
        self.model = None
        self.draining = False
        self.metrics = ServerMetrics(self)
        self._ranking = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.model is not None and not self.draining

    def attach(self, model, engine: Engine | None) -> None:
        self.model, self.engine = model, engine
        if engine is not None:
            engine.on_pass = self.metrics.observe_pass

    def recommend(self, history: str | list[str], top_k: int) -> list[dict]:
        """The ``top_k`` best next items for a history; raises ApiError if refused (an
        unknown item id is a 422 that names it)."""
        from seqweave.recommend import top_items

        self._check_ready()
        if self.engine is not None:
            raise ApiError(
                422,
                "invalid_request",
                "this server's model writes text; /v1/recommend needs a sasrec model",
            )
        try:
            with self._ranking:
                return top_items(self.model, [history], top_k)[0]
        except DataError as error:
            raise ApiError(422, "invalid_request", str(error)) from None

    def _check_ready(self) -> None:
        if not self.ready:
            status = "shutting down" if self.draining else "loading the model"
            raise ApiError(503, "unavailable", f"the server is {status}", {"Retry-After": "1"})

    # -- requests -> jobs ------------------------------------------------------------------

    def jobs(self, texts: list[str], options: Options) -> tuple[list[Job], list[asyncio.Queue]]:
        """Validate a request and submit one job per input; raises ApiError if refused."""
        self.check(texts, options)
        try:
            sources = self.model.encode_sources(texts, clip=False)
        except DataError as error:  # text the schema let through that the tokenizer refuses
            raise ApiError(422, "invalid_request", str(error)) from None
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

    def check(self, texts: list[str], options: Options) -> None:
        """What can be refused before tokenizing: not ready, empty inputs, over the limits."""
        self._check_ready()
        if self.engine is None:
            raise ApiError(
                422, "invalid_request", "this server's model ranks items: use POST /v1/recommend"
            )
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
        spec = DECODER_SPECS[options.decoder]
        if spec.grouped and options.beam_size > self.engine.max_batch:  # its rows never fit
            raise ApiError(
                422,
                "invalid_request",
                f"beam_size={options.beam_size} is over the batch of {self.engine.max_batch} rows",
            )
        if spec.draft_model != "none" and options.decoder != self.engine.draft_decoder:
            kind = needs_words(options.decoder)
            raise ApiError(
                422,
                "invalid_request",
                f"decoder {options.decoder!r} needs the server to run with --draft-model "
                f"of {kind} model",
            )

    def options(self, body: GenerateRequest) -> Options:
        limits = self.limits
        return Options(
            decoder=body.decoder or self.default_decoder,
            max_new_tokens=body.max_new_tokens or min(64, limits.max_new_tokens),
            beam_size=body.beam_size or 4,
            length_penalty=body.length_penalty if body.length_penalty is not None else 1.0,
            temperature=_temperature(body.temperature if body.temperature is not None else 1.0),
            top_k=body.top_k or 0,
            top_p=body.top_p if body.top_p is not None else 1.0,
            seed=body.seed,
        )

    def completion_options(self, body: CompletionRequest) -> Options:
        """OpenAI's temperature: 0 decodes with the server's (lossless) decoder, above 0
        samples; without ``max_tokens``, OpenAI's 16 or the server's limit if that is lower."""
        return Options(
            decoder="sample" if body.temperature > 0 else self.default_decoder,
            max_new_tokens=body.max_tokens or min(16, self.limits.max_new_tokens),
            temperature=_temperature(body.temperature),
            top_p=body.top_p,
            seed=body.seed,
        )

    def text(self, tokens: list[int]) -> str:
        return self.model.tokenizer.decode(tokens)


def _temperature(temperature: float) -> float:
    """0 is greedy; a positive temperature below MIN_TEMPERATURE samples at MIN_TEMPERATURE,
    since dividing float32 logits by it would overflow to inf (and then NaN probabilities)."""
    return max(temperature, MIN_TEMPERATURE) if temperature > 0 else 0.0


def _threadsafe_sink(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, metrics):
    """Called in the engine thread; hands tokens to the request's event loop."""

    def sink(tokens: list[int], finish: str | None) -> None:
        metrics.generated(len(tokens))
        loop.call_soon_threadsafe(queue.put_nowait, (tokens, finish))

    return sink


def create_app(server: Server, on_startup=None, api_keys: Iterable[str] = ()) -> FastAPI:
    """The routes; ``on_startup()`` runs when the server starts (it begins loading). With
    ``api_keys`` every route but ``/health*`` and the page ``/`` needs
    ``Authorization: Bearer KEY``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if on_startup is not None:
            on_startup()
        yield

    app = FastAPI(title="seqweave", version="0.1.0", lifespan=lifespan)
    app.state.server = server
    install_error_handlers(app, server.metrics)
    add_routes(app, server)
    keys = tuple(api_keys)
    add_playground_route(app, server, needs_key=bool(keys))
    if keys:
        reject = lambda: server.metrics.request("other", 401)
        app.add_middleware(BearerAuth, keys=keys, on_reject=reject)
    app.openapi = server_openapi(app, server, with_keys=bool(keys))  # type: ignore[method-assign]
    return app
