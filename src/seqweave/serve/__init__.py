"""``seqweave serve``: an HTTP server with continuous batching over the lossless decoders.

The model loads in the background so ``/health`` answers (503, not ready) at
once. SIGTERM or SIGINT drains: new requests get 503, requests in flight
finish, then the process exits 0.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

from seqweave.serve.app import Limits, Server, create_app
from seqweave.serve.auth import warn_if_exposed
from seqweave.serve.engine import Engine

log = logging.getLogger("seqweave.serve")


@dataclass
class ServeConfig:
    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    decoder: str = "iad"
    draft_model: str | None = None
    max_batch: int = 32
    max_queue: int = 256
    device: str = "cpu"
    limits: Limits | None = None
    drain_seconds: float = 60.0
    api_keys: tuple[str, ...] = ()  # with keys, every route but /health* needs one
    quantize: str | None = None  # "int8": int8 linear layers (models/quantize.py)
    compile: bool | None = None  # decode.compile over the model's own (None: the model's)


def load_engine(server: Server, config: ServeConfig) -> None:
    """Load the model (and draft model), start the engine and mark the server ready."""
    import seqweave
    from seqweave.models.quantize import quantize_model

    model = quantize_model(seqweave.load(config.model, device=config.device), config.quantize)
    if config.compile is not None:
        model.decode_config = dataclasses.replace(model.decode_config, compile=config.compile)
    draft = seqweave.load(config.draft_model, device=config.device) if config.draft_model else None
    if draft is not None:
        model.attach_draft(draft)
    if model.config.architecture == "sasrec":  # ranks items: /v1/recommend, no engine
        server.attach(model, None)
        log.info("model %s loaded; ready to recommend", config.model)
        return
    if server.limits.max_input_tokens > model.config.max_positions:
        server.limits.max_input_tokens = model.config.max_positions
    if server.limits.max_new_tokens > model.config.max_positions:
        server.limits.max_new_tokens = model.config.max_positions
    limits = server.limits
    engine = Engine(
        model,
        config.max_batch,
        config.max_queue,
        draft,
        limits.max_input_tokens,
        limits.max_new_tokens,
    )
    engine.start()
    server.attach(model, engine)
    log.info("model %s loaded; ready", config.model)


def build(config: ServeConfig, load_now: bool = False):
    """The ASGI app and its Server. The model loads in a background thread, started when
    the app starts (or at once with ``load_now``, for hosts that send no lifespan events)."""
    server = Server(config.limits or Limits(), config.decoder)
    loader = threading.Thread(target=load_engine, args=(server, config), daemon=True)
    started = threading.Lock()

    def start_loading() -> None:
        if started.acquire(blocking=False):  # once, whoever asks first
            loader.start()

    if load_now:
        start_loading()
    return create_app(server, on_startup=start_loading, api_keys=config.api_keys), server


def serve(config: ServeConfig) -> None:
    """Run until SIGTERM/SIGINT, then drain and exit."""
    import uvicorn

    warn_if_exposed(config.host, config.api_keys)
    app, server = build(config)

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if server.draining:  # a second signal: stop now
                return super().handle_exit(sig, frame)
            server.draining = True
            log.info("draining: finishing requests in flight, refusing new ones")

            def drain() -> None:
                if server.engine is not None:
                    server.engine.close(drain=True, timeout=config.drain_seconds)
                # stop without recording the signal: uvicorn would re-raise a recorded one
                # on exit, and the process must end with status 0 after a clean drain
                self.should_exit = True

            threading.Thread(target=drain, daemon=True).start()

    uv = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        timeout_graceful_shutdown=config.drain_seconds,
    )
    DrainingServer(uv).run()
