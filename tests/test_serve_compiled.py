"""``seqweave serve --compile``: the served compiled model answers eager greedy's tokens, its
graphs are all built before the server is ready, and a pass no graph covers runs eagerly.

The compiled model is switched to torch's ``fail_on_recompile`` stance once the server is
ready, so any pass of the requests below that would need a graph the warm-up did not build
raises (and its request fails) instead of compiling quietly: what passes here ran on the
warm-up's graphs (ragged rows in the slot cache, packed drafts, one row and several; the
encoder's one source and several padded ones), but a batch's first one-slot pass, which is
eager by design. Compiling costs tens of seconds on a
shared CPU, hence the ``slow`` marker on the tests that serve.
"""

from __future__ import annotations

import random
import threading

import pytest
from starlette.testclient import TestClient

import seqweave
from seqweave.serve import Limits, ServeConfig, Server, create_app, load_engine
from seqweave.serve.engine import Job, Options
from tests.conftest import edit_task_pair
from tests.lossless import assert_lossless


def test_the_serve_command_passes_compile_over_the_models_own_setting(monkeypatch):
    import seqweave.serve
    from seqweave.cli import main

    configs = []
    monkeypatch.setattr(seqweave.serve, "serve", configs.append)
    for flag in (["--compile"], ["--no-compile"], []):
        assert main(["serve", "--model", "m", *flag]) == 0
    assert [c.compile for c in configs] == [True, False, None]  # None: decode.compile's


@pytest.fixture(scope="module")
def model_dir(trained_dirs):
    return trained_dirs["transformer"]


@pytest.fixture(scope="module")
def compiled_server(model_dir, one_torch_thread):
    state = Server(Limits(40, 60, 16, 60.0), "iad")
    load_engine(state, ServeConfig(str(model_dir), max_batch=8, compile=True))
    decoder = state.engine.network.compiled_decoder
    assert decoder is not None and state.engine.warm_up_seconds > 0
    encoder_kinds = [kind for kind in decoder._served if kind[0] == id(decoder._encoder)]
    assert len(encoder_kinds) == 2  # the warm-up encoded one source, and several with a mask
    decoder.stance = "fail_on_recompile"  # from here on, a missing graph is an error
    with TestClient(create_app(state)) as client:
        yield state, client
    state.engine.close(drain=False)


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(5)
    return [edit_task_pair(rng)["source"] for _ in range(8)]


def check_equal_to_eager_greedy(model_dir, texts, outputs):
    eager = seqweave.load(model_dir)
    reference = eager.generate_tokens(texts, decoder="greedy", max_new_tokens=60)
    for source, ref, got in zip(eager.encode_sources(texts), reference, outputs, strict=True):
        assert_lossless(eager.network, source, ref.tokens, got)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["greedy", "iad"])
def test_served_compiled_model_answers_eager_greedy_tokens(
    compiled_server, model_dir, texts, decoder
):
    """One row, then eight rows of different lengths (ragged slot rows) in one request."""
    state, client = compiled_server
    for inputs in (texts[:1], texts):
        body = {"inputs": inputs, "decoder": decoder, "max_new_tokens": 60}
        response = client.post("/v1/generate", json=body)
        assert response.status_code == 200, response.text
        outputs = [state.model.tokenizer.encode(text) for text in response.json()["outputs"]]
        check_equal_to_eager_greedy(model_dir, inputs, outputs)


@pytest.mark.slow
def test_greedy_and_iad_rows_sharing_compiled_passes(compiled_server, model_dir, texts):
    """Greedy and IAD rows admitted together: packed passes, a draft beside single tokens."""
    state, _ = compiled_server
    outputs = [[] for _ in texts]
    finished = threading.Semaphore(0)
    reasons = []

    def sink_of(i):
        def sink(tokens, finish):
            outputs[i].extend(tokens)
            if finish is not None:
                reasons.append(finish)
                finished.release()

        return sink

    jobs = [
        Job(state.model.encode_sources([text])[0], Options(decoder, 60), sink_of(i))
        for i, (text, decoder) in enumerate(zip(texts, ["greedy", "iad"] * 4, strict=True))
    ]
    state.engine.submit(jobs)
    for _ in jobs:
        assert finished.acquire(timeout=120)
    assert "error" not in reasons
    check_equal_to_eager_greedy(model_dir, texts, outputs)


@pytest.mark.slow
def test_a_beam_request_on_compiled_passes_equals_eager_beam(compiled_server, model_dir, texts):
    """Beam rows follow their beams in the slot cache (rows copied between passes): still
    passes the warm-up's graphs serve, and eager beam search's outputs."""
    _, client = compiled_server
    body = {"inputs": texts[:3], "decoder": "beam", "beam_size": 3, "max_new_tokens": 60}
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 200, response.text
    eager = seqweave.load(model_dir)
    expected = eager.generate(texts[:3], decoder="beam", beam_size=3, max_new_tokens=60)
    assert response.json()["outputs"] == expected
