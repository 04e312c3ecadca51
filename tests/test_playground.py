"""The playground page (``GET /``) and what it shows: each output's spans (accepted drafts vs
tokens the model wrote, ``details: true``), the page public while its calls need the key, and
the page itself driven in a real headless browser (the system's Chromium)."""

from __future__ import annotations

import json
import random
import re
import shutil

import httpx
import pytest

from seqweave.serve import ServeConfig
from seqweave.serve.app import Limits
from seqweave.serve.streams import token_spans
from tests.conftest import edit_task_pair
from tests.test_serve import RunningServer, free_port

KEY = "playground-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(trained_dirs):
    limits = Limits(max_input_tokens=40, max_new_tokens=40, max_inputs=8, timeout=120)
    config = ServeConfig(
        str(trained_dirs["transformer"]), port=free_port(), limits=limits, api_keys=(KEY,)
    )
    running = RunningServer(config)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(3)
    return [edit_task_pair(rng)["source"] for _ in range(6)]


def generate(server, body: dict) -> dict:
    response = httpx.post(server.url + "/v1/generate", json=body, headers=AUTH, timeout=150)
    assert response.status_code == 200, response.text
    return response.json()


def test_token_spans_group_runs_and_join_into_the_text():
    pieces = {1: "", 2: "ab", 3: "c", 4: "d", 5: "\ufffd"}  # 1: a special token, 5: half a char

    def decode(tokens):
        text = "".join(pieces[t] for t in tokens)
        return text.replace("\ufffd\ufffd", "é")  # two 5s make one character

    tokens, from_draft = [2, 3, 1, 4, 5, 5, 3], [True, True, False, True, True, False, False]
    spans = token_spans(tokens, from_draft, decode)
    assert "".join(s["text"] for s in spans) == decode(tokens) == "abcdéc"
    assert sum(s["tokens"] for s in spans) == len(tokens)
    # the written special token adds no text, so it joins the drafted run before it; the
    # character split between a drafted and a written token goes with the one completing it
    assert spans == [
        {"text": "abcd", "tokens": 4, "drafted": True},
        {"text": "éc", "tokens": 3, "drafted": False},
    ]
    # a leading token without text joins the first run
    assert token_spans([1, 3], [False, True], decode) == [
        {"text": "c", "tokens": 2, "drafted": True}
    ]
    assert token_spans([], [], decode) == []


@pytest.mark.parametrize("decoder", ["greedy", "iad", "beam"])
def test_details_mark_accepted_draft_tokens(server, texts, decoder):
    if decoder == "beam":  # beam search runs between passes, one request at a time: keep it short
        texts = texts[:2]
    body = {"inputs": texts, "decoder": decoder, "beam_size": 2}
    plain = generate(server, body)
    detailed = generate(server, {**body, "details": True})
    assert all("spans" not in r for r in plain["results"])  # opt-in
    assert detailed["outputs"] == plain["outputs"]
    drafted_total = 0
    for output, result in zip(detailed["outputs"], detailed["results"], strict=True):
        spans = result["spans"]
        assert "".join(s["text"] for s in spans) == output
        assert sum(s["tokens"] for s in spans) == result["tokens"]
        drafted = sum(s["tokens"] for s in spans if s["drafted"])
        assert drafted <= result["stats"]["accepted"]
        drafted_total += drafted
    if decoder == "iad":  # the edit task mostly copies: most tokens come from the source
        tokens = sum(r["tokens"] for r in detailed["results"])
        assert drafted_total > tokens / 2, (drafted_total, tokens)
    else:
        assert drafted_total == 0


def test_streamed_details_come_with_each_inputs_last_event(server, texts):
    body = {"inputs": texts[:3], "decoder": "iad", "details": True}
    reference = generate(server, body)
    events = []
    with httpx.stream(
        "POST",
        server.url + "/v1/generate",
        json={**body, "stream": True},
        headers=AUTH,
        timeout=150,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[len("data: ") :]))
    last = {e["index"]: e for e in events if e["finish_reason"] is not None}
    for i, result in enumerate(reference["results"]):
        assert last[i]["spans"] == result["spans"]


def test_the_page_is_public_and_its_calls_need_the_key(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    settings = json.loads(re.search(r"const SETTINGS = (.*);", page.text).group(1))
    assert settings["needsKey"] is True
    assert set(settings["decoders"]) == {"greedy", "iad", "beam", "sample"}  # no draft model
    refused = httpx.post(server.url + "/v1/generate", json={"inputs": "abc"})
    assert refused.status_code == 401
    schema = httpx.get(server.url + "/openapi.json", headers=AUTH).json()
    assert "/" not in schema["paths"]  # a page, not part of the API
    assert "details" in schema["components"]["schemas"]["GenerateRequest"]["properties"]


def test_the_page_loads_nothing_from_elsewhere(server):
    page = httpx.get(server.url + "/").text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page


def chromium() -> str:
    """The system's Chromium (Playwright cannot download one here); skips where there is none,
    even under SEQWEAVE_REQUIRE_SHARED: a browser is a system package, not shared data."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on PATH (install the system's chromium package)")


def test_the_page_in_a_headless_browser(server, texts):
    """Type two inputs, pick IAD, give the key, run: the page shows the API's outputs, its
    drafted/written tokens and passes, and a diff that rebuilds both input and output."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    inputs = texts[:2]
    reference = generate(server, {"inputs": inputs, "decoder": "iad", "details": True})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            assert page.is_visible("#key")  # the server has keys
            page.fill("#text", "\n".join(inputs))
            page.select_option("#decoder", "iad")
            page.fill("#key", KEY)
            page.click("#run")
            page.wait_for_selector(".result:nth-child(2) .stats", timeout=150_000)
            shown = page.eval_on_selector_all(
                ".result",
                """boxes => boxes.map(box => ({
                    output: box.querySelector('.output').textContent,
                    spans: [...box.querySelectorAll('.tokens span')].map(s => ({
                        text: s.textContent, tokens: +s.dataset.tokens,
                        drafted: s.classList.contains('drafted')})),
                    passes: +box.querySelector('.stats').dataset.passes,
                    kept: [...box.querySelector('.diff').childNodes]
                        .filter(n => n.nodeName !== 'INS').map(n => n.textContent).join(''),
                    made: [...box.querySelector('.diff').childNodes]
                        .filter(n => n.nodeName !== 'DEL').map(n => n.textContent).join(''),
                    edits: box.querySelectorAll('.diff ins, .diff del').length,
                }))""",
            )
        finally:
            browser.close()
    assert [s["output"] for s in shown] == reference["outputs"]
    for box, text, result in zip(shown, inputs, reference["results"], strict=True):
        assert box["spans"] == result["spans"]
        assert box["passes"] == result["stats"]["passes"]
        assert box["kept"].split() == text.split()  # the diff without insertions: the input
        assert box["made"].split() == box["output"].split()  # without deletions: the output
        assert (box["edits"] > 0) == (text.split() != box["output"].split())
