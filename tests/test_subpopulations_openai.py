"""The OpenAI-compatible analyst against a fake completions endpoint on a loopback port.

The fake answers like an OpenAI-style ``/v1/completions`` (``choices[].text`` with
``index``, in reverse order to check the reordering) and reads the attribute off each
assignment prompt's text itself, so the whole workflow runs over real HTTP through urllib;
other fakes answer malformed bodies, which must come back as errors that quote them. Last,
a real ``seqweave serve`` app in a test client: its replies must equal the same model's
greedy outputs through the Python API.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from seqweave.subpopulations import Corpus, build_analyst, discover
from seqweave.subpopulations.planted import PLAN, planted_texts, score_recovery
from seqweave.subpopulations.prompted import AnalystError, completions_url

PROPOSAL = json.dumps(
    {
        "dimensions": [
            {"name": "colour", "attributes": [*PLAN["colour"], "Reds"]},
            {"name": "place", "attributes": PLAN["place"]},
        ]
    }
)


def oracle(prompt: str) -> str:
    """A model that follows the format: the proposal as JSON with chatter around it, then
    the attribute of the asked dimension that appears in the text."""
    if prompt.startswith("Texts:"):
        return "Sure! Here is the structure:\n" + PROPOSAL + "\nHope this helps."
    text = prompt.split("\n")[0]
    dimension = prompt.split("\n")[1].removeprefix("Dimension: ")
    found = [value for value in PLAN[dimension] if value in text]
    return f" {found[0].capitalize()}." if found else " no idea"


class Fake:
    def __init__(self, answer):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                fake.requests.append((self.path, json.loads(self.rfile.read(length))))
                status, body = answer(fake.requests[-1][1])
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def openai_style(body) -> tuple[int, str]:
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    choices = [
        {"index": i, "text": oracle(p), "finish_reason": "stop"} for i, p in enumerate(prompts)
    ]
    return 200, json.dumps({"object": "text_completion", "choices": choices[::-1]})


def test_openai_analyst_runs_the_workflow_over_http():
    texts, truth = planted_texts(40, seed=2)
    texts[0] = "An unrelated sentence."
    with Fake(openai_style) as fake:
        analyst = build_analyst(f"openai:{fake.url}/v1", dimensions=4)
        structure, rows, dimensions = discover(
            Corpus(texts, list(range(1, 41))),
            analyst,
            sample_size=10,
            batch_size=16,
            progress=False,
        )
    assert all(path == "/v1/completions" for path, _ in fake.requests)
    assert all(body["temperature"] == 0 for _, body in fake.requests)
    assert [d.name for d in dimensions] == ["colour", "place"]
    assert dimensions[0].names() == PLAN["colour"]  # "Reds" merged into "red"
    report = score_recovery(dimensions, rows[1:], truth[1:])
    assert report["colour"]["accuracy"] == 1.0 and report["place"]["accuracy"] == 1.0
    assert rows[0] == {"colour": "other", "place": "other"}
    # 10 sample texts (refine) and 40 texts, 2 dimensions each; text 0 is in the seed-0
    # sample too, so its 2 unanswerable prompts are asked twice
    assert structure["replies"] == 2 * (10 + 40)
    assert structure["unmatched"] == 4 and "no idea" in structure["unmatched_examples"][0]
    assert all(sum(c.values()) == 40 for c in structure["counts"].values())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda body: (200, "<html>hello</html>"), "not an OpenAI completions response"),
        (lambda body: (200, '{"choices": [{"index": 0}]}'), "not an OpenAI completions"),
        (lambda body: (200, '{"choices": []}'), "0 text choices for 1 prompts"),
        (lambda body: (500, '{"error": "boom"}'), "HTTP 500"),
        (
            lambda body: (200, json.dumps({"choices": [{"index": 0, "text": "colour: red"}]})),
            "the proposal is not JSON",
        ),
        (
            lambda body: (200, json.dumps({"choices": [{"index": 0, "text": '{"dims": 1}'}]})),
            r"'\{\"dims\": 1\}'",
        ),
    ],
)
def test_malformed_replies_are_reported_with_the_reply(answer, message):
    with Fake(answer) as fake:
        analyst = build_analyst(f"openai:{fake.url}")
        with pytest.raises(AnalystError, match=message):
            analyst.propose(["a text", "another"])


def test_unreachable_endpoint_is_a_clear_error():
    with Fake(openai_style) as fake:
        url = fake.url
    with pytest.raises(AnalystError, match="cannot reach the endpoint"):
        build_analyst(f"openai:{url}").propose(["a"])


def test_completions_url():
    assert completions_url("http://h:1") == "http://h:1/v1/completions"
    assert completions_url("http://h:1/v1/") == "http://h:1/v1/completions"
    assert completions_url("http://h:1/x/completions") == "http://h:1/x/completions"


@pytest.fixture(scope="module")
def serve_client(tmp_path_factory):
    """A running ``seqweave serve`` app (tiny untrained model, letters a-f) in a test client."""
    pytest.importorskip("fastapi")
    from starlette.testclient import TestClient

    from seqweave.checkpoint import save_model_dir
    from seqweave.serve import Limits, ServeConfig, Server, create_app, load_engine
    from seqweave.tokenizers import alphabet_tokenizer
    from tests.conftest import single_thread, tiny_model

    letters = "abcdef"
    network = tiny_model(2, vocab_size=4 + len(letters), max_positions=512)
    with torch.no_grad():  # larger weights: greedy outputs that differ between inputs
        for parameter in network.parameters():
            parameter.mul_(3.0)
    directory = save_model_dir(
        tmp_path_factory.mktemp("subpop") / "m", network, alphabet_tokenizer(letters)
    )
    state = Server(Limits(400, 8, 64, 30.0), "greedy")
    with single_thread():
        load_engine(state, ServeConfig(str(directory), max_batch=8))
        with TestClient(create_app(state)) as client:
            yield client, directory
    state.engine.close(drain=False)


def test_openai_analyst_against_seqweave_serve(serve_client):
    """Through serve's real /v1/completions (a list of prompts in one request), the replies
    equal the same model's greedy outputs through the Python API, in order; the untrained
    model's proposal is not JSON and is reported as such, quoting it."""
    from seqweave.subpopulations.prompted import (
        PromptedAnalyst,
        model_completer,
        openai_completer,
    )
    from seqweave.subpopulations.structure import Attribute, Dimension

    client, directory = serve_client

    def post(endpoint, data, timeout):
        response = client.post(endpoint, content=data, headers={"Content-Type": "application/json"})
        return response.status_code, response.text

    served = openai_completer("http://testserver", max_tokens=8, post=post)
    local = model_completer(str(directory), max_new_tokens=8)
    prompts = ["abc", "fed cab", "a b c d e f", "bad"]
    replies = served(prompts)
    assert replies == local(prompts) and len(set(replies)) > 1  # distinct, in order

    analyst = PromptedAnalyst(served, "openai:serve", examples=2)
    with pytest.raises(AnalystError, match="the proposal is not JSON"):
        analyst.propose(["a dab", "a cab"])
    dimension = Dimension("letter", (Attribute("a"), Attribute("b")))
    rows = analyst.assign(["a dab", "a cab", "fed"], [dimension])
    assert len(rows) == 3 and all(row["letter"] in {"a", "b", "other"} for row in rows)
    assert analyst.replies == 3
