"""The HTTP server: endpoints, continuous batching equal to offline decoding, every
documented error, streaming, disconnects and graceful shutdown."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from seqweave.serve import ServeConfig, build
from seqweave.serve.app import Limits
from seqweave.serve.engine import Job, Options
from tests.conftest import EngineGate, edit_task_pair
from tests.lossless import assert_lossless

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """A server in a thread of this process, on a free loopback port."""

    def __init__(self, config: ServeConfig):
        self.app, self.state = build(config)
        self.port = config.port
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=config.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{config.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def post(self, path: str, body, **kw) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=60, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.state.engine is not None:
            self.state.engine.close(drain=False)


@pytest.fixture(scope="module")
def model_dir(trained_dirs):
    return trained_dirs["transformer"]


@pytest.fixture(scope="module")
def server(model_dir):
    limits = Limits(max_input_tokens=40, max_new_tokens=60, max_inputs=16, timeout=30)
    running = RunningServer(
        ServeConfig(
            str(model_dir),
            port=free_port(),
            draft_model=str(model_dir),
            max_batch=8,
            max_queue=12,
            limits=limits,
        )
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(7)
    return [edit_task_pair(rng)["source"] for _ in range(12)]


def offline(server, texts, **options):
    model = server.state.model
    return [o.tokens for o in model.generate_tokens(texts, max_new_tokens=60, **options)]


def check_same(server, texts, outputs, **options):
    model = server.state.model
    reference = offline(server, texts, **options)
    sources = model.encode_sources(texts)
    for source, ref, text in zip(sources, reference, outputs, strict=True):
        got = model.tokenizer.encode(text)
        if got != ref:  # texts differ: demand a floating-point near-tie
            assert_lossless(model.network, source, ref, got)


def test_health_and_metrics(server):
    health = httpx.get(server.url + "/health")
    assert health.status_code == 200 and health.json()["ready"] is True
    assert httpx.get(server.url + "/health/live").json() == {"live": True}
    server.post("/v1/generate", {"inputs": "abc", "max_new_tokens": 5})
    metrics = httpx.get(server.url + "/metrics").text
    for name in (
        "seqweave_requests_total",
        "seqweave_queue_depth",
        "seqweave_batch_rows_bucket",
        "seqweave_request_seconds_bucket",
        "seqweave_generated_tokens_total",
        "seqweave_accepted_draft_ratio",
    ):
        assert name in metrics, name


@pytest.mark.parametrize("decoder", ["greedy", "iad", "spec"])
def test_generate_equals_offline_greedy(server, texts, decoder):
    response = server.post(
        "/v1/generate", {"inputs": texts, "decoder": decoder, "max_new_tokens": 60}
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body["outputs"]) == len(texts)
    check_same(server, texts, body["outputs"])
    stats = body["results"][0]["stats"]
    assert stats["passes"] >= 1 and stats["queue_seconds"] >= 0 and stats["compute_seconds"] > 0
    if decoder != "greedy":
        assert sum(r["stats"]["accepted"] for r in body["results"]) > 0


def test_beam_and_seeded_sampling(server, texts):
    beam = server.post(
        "/v1/generate",
        {"inputs": texts[:3], "decoder": "beam", "beam_size": 3, "max_new_tokens": 60},
    ).json()["outputs"]
    model = server.state.model
    assert beam == model.generate(texts[:3], decoder="beam", beam_size=3, max_new_tokens=60)
    body = {
        "inputs": texts[:4],
        "decoder": "sample",
        "temperature": 1.5,
        "seed": 11,
        "max_new_tokens": 20,
    }
    first = server.post("/v1/generate", body).json()["outputs"]
    assert first == server.post("/v1/generate", body).json()["outputs"]


def test_concurrent_clients_get_what_single_requests_get(server, texts):
    singles = [
        server.post("/v1/generate", {"inputs": t, "max_new_tokens": 60}).json()["outputs"][0]
        for t in texts
    ]
    bodies = concurrent_requests(server, texts * 3, ["iad", "greedy", "spec"])
    assert [b["outputs"][0] for b in bodies] == singles * 3


def concurrent_requests(server, texts, decoders) -> list[dict]:
    """One request per text from 8 threads, the decoders taken in turn; the responses."""
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(
                server.post,
                "/v1/generate",
                {"inputs": t, "max_new_tokens": 60, "decoder": decoders[i % len(decoders)]},
            )
            for i, t in enumerate(texts)
        ]
        return [f.result().json() for f in futures]


@pytest.fixture(scope="module")
def gad_server(model_dir, nar_dir):
    limits = Limits(max_input_tokens=40, max_new_tokens=60, max_inputs=16, timeout=30)
    config = ServeConfig(
        str(model_dir), port=free_port(), decoder="gad", draft_model=str(nar_dir), limits=limits
    )
    running = RunningServer(config)
    yield running
    running.stop()


def test_concurrent_gad_iad_and_greedy_requests_get_greedy_outputs(gad_server, texts):
    """Concurrent GAD, IAD and greedy requests of different lengths, as they come; every
    output is greedy's (how they share passes is up to the timing: see the next test)."""
    bodies = concurrent_requests(gad_server, texts * 2, ["gad", "iad", "greedy"])
    check_same(gad_server, texts * 2, [b["outputs"][0] for b in bodies])
    gad_stats = [b["results"][0]["stats"] for i, b in enumerate(bodies) if i % 3 == 0]
    assert sum(s["accepted"] for s in gad_stats) > 0
    spec = gad_server.post("/v1/generate", {"inputs": "abc", "decoder": "spec"})
    assert spec.status_code == 422
    assert "needs the server to run with --draft-model of an autoregressive" in spec.text


def test_rows_that_join_a_running_batch_get_greedy_outputs(gad_server, texts):
    """Hold the engine inside its first pass over two rows (greedy, GAD), queue six more
    (GAD, IAD, greedy), let go: the engine's own counters say the six joined a batch whose
    rows were still decoding, the GAD rows that joined the drafter's running rows had drafts
    accepted, and every output is greedy's."""
    engine, model = gad_server.state.engine, gad_server.state.model
    ordered = sorted(texts, key=len, reverse=True)
    first, later = ordered[:2], ordered[2:8]
    decoders = ["greedy", "gad", *(["gad", "iad", "greedy"] * 2)]
    sources = model.encode_sources([*first, *later])
    outputs: list[list[int]] = [[] for _ in sources]
    finished = [threading.Event() for _ in sources]
    gate = EngineGate()

    def sink_for(i: int):
        def sink(tokens: list[int], finish: str | None) -> None:
            outputs[i].extend(tokens)
            if finish is not None:
                finished[i].set()

        return gate.wrap(sink) if i == 0 else sink

    jobs = [
        Job(source, Options(decoder=decoder, max_new_tokens=60), sink_for(i))
        for i, (source, decoder) in enumerate(zip(sources, decoders, strict=True))
    ]
    before = engine.counters()
    engine.submit(jobs[:2])
    try:
        assert gate.holding.wait(30), "the engine took no pass"
        assert gate.live, "the greedy row must still be decoding"
        engine.submit(jobs[2:])  # at least ADMIT_GROUP of them: they join at the next pass
    finally:
        gate.release()
    assert all(event.wait(60) for event in finished)
    after = engine.counters()
    assert after.submitted - before.submitted == 8
    assert after.admitted - before.admitted == 8
    assert after.joined - before.joined == 6
    assert sum(jobs[i].stats.accepted for i in (2, 5)) > 0
    reference = offline(gad_server, [*first, *later])
    for source, ref, got in zip(sources, reference, outputs, strict=True):
        if got != ref:
            assert_lossless(model.network, source, ref, got)


def sse_events(response) -> list[dict]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    return events


def test_streaming_reassembles_to_the_non_streamed_output(server, texts):
    plain = server.post("/v1/generate", {"inputs": texts[:3], "max_new_tokens": 60}).json()
    body = {"inputs": texts[:3], "max_new_tokens": 60, "stream": True}
    with httpx.stream("POST", server.url + "/v1/generate", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    joined = ["".join(e["text"] for e in events if e["index"] == i) for i in range(3)]
    assert joined == plain["outputs"]
    finals = [e for e in events if e["finish_reason"]]
    assert len(finals) == 3 and all("stats" in e for e in finals)
    assert any(len(e["text"]) > 1 for e in events), "IAD sends several tokens at a time"


def test_completions_is_openai_shaped(server, texts):
    response = server.post(
        "/v1/completions", {"prompt": texts[:2], "temperature": 0, "max_tokens": 60, "model": "m"}
    )
    body = response.json()
    assert body["object"] == "text_completion" and body["model"] == "m"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    plain = server.post("/v1/generate", {"inputs": texts[:2], "max_new_tokens": 60}).json()
    assert [c["text"] for c in body["choices"]] == plain["outputs"]
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    stream = {"prompt": texts[0], "temperature": 0, "max_tokens": 60, "stream": True}
    with httpx.stream("POST", server.url + "/v1/completions", json=stream, timeout=60) as r:
        events = sse_events(r)
    assert "".join(e["choices"][0]["text"] for e in events) == plain["outputs"][0]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"inputs": ""}, 422, "non-empty"),
        ({"inputs": []}, 422, "non-empty"),
        ({"inputs": 5}, 422, "inputs"),
        ({"inputs": "abc", "decoder": "magic"}, 422, "decoder"),
        ({"inputs": "abc", "max_new_tokens": 61}, 422, "limit of 60"),
        ({"inputs": "abc", "max_new_tokens": "lots"}, 422, "max_new_tokens"),
        ({"inputs": "abc", "temperature": -1}, 422, "temperature"),
        ({"inputs": "abc", "surprise": 1}, 422, "surprise"),
        ({"inputs": "a" * 60}, 413, "limit is 40"),
        ({"inputs": ["abc"] * 17}, 422, "at most 16"),
        ({"inputs": ["abc"] * 13}, 429, "limit 12"),
    ],
)
def test_documented_errors(server, body, status, fragment):
    response = server.post("/v1/generate", body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"]
    if status == 429:
        assert response.headers["retry-after"] == "1"


def test_malformed_json_is_422(server):
    response = httpx.post(
        server.url + "/v1/generate", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and "error" in response.json()


def test_timeout_is_504_and_frees_the_rows(server):
    body = {"inputs": ["abcdefab" * 4] * 4, "max_new_tokens": 60, "timeout": 0.001}
    response = server.post("/v1/generate", body)
    assert response.status_code == 504 and "longer than" in response.json()["error"]["message"]
    assert wait_until(lambda: server.state.engine.running == 0)


def test_disconnected_stream_frees_its_row(server):
    body = {"inputs": "abcdefabcdef", "max_new_tokens": 60, "stream": True, "decoder": "greedy"}
    with httpx.stream("POST", server.url + "/v1/generate", json=body, timeout=60) as response:
        next(response.iter_lines())  # one event, then hang up
    assert wait_until(lambda: server.state.engine.running == 0)
    assert server.post("/v1/generate", {"inputs": "abc"}).status_code == 200  # still serving


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_sigterm_drains_in_flight_requests_and_exits_zero(model_dir, texts):
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seqweave",
            "serve",
            "--model",
            str(model_dir),
            "--port",
            str(port),
            "--max-new-tokens",
            "60",
            "--max-batch",
            "8",  # many batches' worth of work: still decoding when the signal comes
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _ready(url), 60), "server did not start"
        body = {"inputs": texts * 4, "max_new_tokens": 60, "decoder": "greedy"}
        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(httpx.post, url + "/v1/generate", json=body, timeout=60)
                for _ in range(4)
            ]
            queued = 4 * len(body["inputs"])  # every request is in the engine's queue
            assert wait_until(lambda: _metric(url, "seqweave_submitted_inputs") >= queued, 30)
            process.send_signal(signal.SIGTERM)
            assert wait_until(lambda: not _ready(url), 10), "the server did not start draining"
            late = _post_or_refused(url, {"inputs": "abc"})
            results = [f.result() for f in futures]
        assert all(r.status_code == 200 for r in results)
        assert all(len(r.json()["outputs"]) == len(texts) * 4 for r in results)
        assert late in (503, "refused")
        assert process.wait(timeout=60) == 0
        # the engine's own record: the signal came while inputs were waiting or decoding
        log = re.search(
            r"closing: (\d+) inputs waiting, (\d+) rows decoding", process.stdout.read()
        )
        assert log is not None and int(log[1]) + int(log[2]) > 0
    finally:
        if process.poll() is None:
            process.kill()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health").status_code == 200
    except httpx.TransportError:
        return False


def _metric(url: str, name: str) -> float:
    """A sample's value from the server's /metrics (0 when it cannot be read)."""
    try:
        text = httpx.get(url + "/metrics").text
    except httpx.TransportError:
        return 0.0
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def _post_or_refused(url: str, body):
    try:
        return httpx.post(url + "/v1/generate", json=body, timeout=10).status_code
    except httpx.TransportError:
        return "refused"
