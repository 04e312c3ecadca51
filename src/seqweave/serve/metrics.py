"""Prometheus metrics of the server, in a registry of its own (one per server)."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, server):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "seqweave_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        queue = Gauge("seqweave_queue_depth", "inputs waiting for a batch slot", registry=r)
        queue.set_function(lambda: server.engine.queue_depth if server.engine else 0)
        running = Gauge("seqweave_running_rows", "inputs in the running batch", registry=r)
        running.set_function(lambda: server.engine.running if server.engine else 0)
        cache = Gauge("seqweave_cache_bytes", "the slot cache, allocated at start", registry=r)
        cache.set_function(lambda: server.engine.cache_bytes if server.engine else 0)
        submitted = Gauge(
            "seqweave_submitted_inputs", "inputs accepted into the queue so far", registry=r
        )
        submitted.set_function(lambda: server.engine.counters().submitted if server.engine else 0)
        self.batch = Histogram(
            "seqweave_batch_rows",
            "rows per decoder pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.latency = Histogram(
            "seqweave_request_seconds",
            "request latency (non-streaming)",
            ["endpoint"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.tokens = Counter("seqweave_generated_tokens", "tokens generated", registry=r)
        self.drafted = Counter("seqweave_draft_tokens", "draft tokens proposed", registry=r)
        self.accepted = Counter(
            "seqweave_accepted_draft_tokens", "draft tokens accepted", registry=r
        )
        ratio = Gauge(
            "seqweave_accepted_draft_ratio", "accepted / proposed draft tokens", registry=r
        )
        ratio.set_function(self._ratio)

    def _ratio(self) -> float:
        drafted = self.drafted._value.get()
        return self.accepted._value.get() / drafted if drafted else 0.0

    def request(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint, str(status)).inc()

    def generated(self, count: int) -> None:
        self.tokens.inc(count)

    def finished(self, endpoint: str, started: float, jobs) -> None:
        self.request(endpoint, 200)
        self.latency.labels(endpoint).observe(time.monotonic() - started)

    def observe_pass(self, rows: int, drafted: int, accepted: int) -> None:
        self.batch.observe(rows)
        self.drafted.inc(drafted)
        self.accepted.inc(accepted)

    def render(self) -> bytes:
        return generate_latest(self.registry)
