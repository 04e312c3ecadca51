"""Property-based fuzzing of the HTTP API against its own OpenAPI schema (schemathesis).

For requests generated from the schema, valid and invalid alike: never a 5xx, every 4xx in
the documented error shape, every response as the schema describes it (status, content
type, body). The model is a tiny untrained one: what is checked is the server's contract,
not what it generates. Regression tests for the inputs that once answered 500 or 400 follow.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from seqweave.checkpoint import save_model_dir
from seqweave.serve import Limits, ServeConfig, Server, create_app, load_engine
from seqweave.tokenizers import alphabet_tokenizer
from tests.conftest import tiny_model

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from schemathesis import GenerationMode  # noqa: E402

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"content-type": "application/json"}
# a server timeout well below the client's, so that a slow answer under load is the server's
# documented 504, not the client giving up
LIMITS = dict(max_input_tokens=16, max_new_tokens=8, max_inputs=4, timeout=5.0)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A ready server (engine running) over a tiny model, with one API key."""
    letters = "abcdef"
    network = tiny_model(vocab_size=4 + len(letters), max_positions=32)
    directory = save_model_dir(
        tmp_path_factory.mktemp("fuzz") / "m", network, alphabet_tokenizer(letters)
    )
    config = ServeConfig(str(directory), max_batch=4, max_queue=8)
    server = Server(Limits(**LIMITS), config.decoder)
    load_engine(server, config)
    yield create_app(server, api_keys=[KEY]), server
    server.engine.close(drain=False)


@pytest.fixture(scope="module")
def api_schema(served):
    app, _ = served
    # a schema-valid request may still be over the token limit (413, which no schema can
    # state), meet a full queue (429) or run past the timeout it chose itself (504, the one
    # 5xx allowed); a 422 for it would be a schema that lies
    accepted = ["2xx", "413", "429", "504"]
    checks = {
        "positive_data_acceptance": {"expected-statuses": accepted},
        "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "504"]},
    }
    config = schemathesis.Config.from_dict({"checks": checks})
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH, config=config)


def documented_error_shape(ctx, response, case) -> bool:
    """Every 4xx is ``{"error": {"type": str, "message": str}}`` and nothing else."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"type", "message"}, body
        assert all(isinstance(v, str) and v for v in body["error"].values()), body
    return True


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_the_api_keeps_its_schema_on_any_request(api_schema, mode):
    """``mode``: requests the schema allows, or requests it forbids (wrong types, ranges,
    unknown fields), for every operation. Hypothesis drives schemathesis' strategies directly
    (its pytest plugin does not load on this pytest)."""
    strategy = api_schema.as_strategy(GenerationMode(mode), headers=AUTH)

    @given(case=strategy)
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case):
        case.call_and_validate(headers=AUTH, additional_checks=[documented_error_shape], timeout=60)

    check()


# -- regressions -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(served):
    from starlette.testclient import TestClient

    app, _ = served
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client


def assert_error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert fragment in response.json()["error"]["message"], response.text


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/generate", b'{"inputs": "\\ud800 abc"}'),
        ("/v1/generate", b'{"inputs": ["abc", "x\\udc00"]}'),
        ("/v1/completions", b'{"prompt": "\\ud800 abc", "max_tokens": 2}'),
        ("/v1/completions", b'{"prompt": ["\\udbff"], "max_tokens": 2}'),
        ("/v1/completions", b'{"prompt": "ab", "model": "\\udfff", "max_tokens": 2}'),
    ],
)
def test_a_lone_surrogate_is_422_not_500(client, path, body):
    assert_error(client.post(path, content=body, headers=JSON), 422, "lone surrogate")


def test_an_unknown_field_named_by_a_surrogate_is_a_422_that_can_be_encoded(client):
    body = b'{"inputs": "ab", "\\ud800": 1}'
    assert_error(client.post("/v1/generate", content=body, headers=JSON), 422, "")


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b'{"inputs": "\xff\xfe"}', "UTF-8"),
        (b"\xc3(", "UTF-8"),
        # a surrogate's bytes, which Python's json module decodes with "surrogatepass"
        (b'{"inputs": "\xed\xa0\x80"}', "lone surrogate"),
    ],
)
def test_a_body_that_is_not_utf8_is_422_in_the_documented_shape(client, body, fragment):
    assert_error(client.post("/v1/generate", content=body, headers=JSON), 422, fragment)


def test_a_tiny_temperature_samples_instead_of_failing(client):
    """Found by the fuzzer: logits divided by 1e-300 overflowed to NaN probabilities (500)."""
    body = {"prompt": "abc", "max_tokens": 3, "temperature": 1e-300, "seed": 1}
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    greedy = client.post("/v1/completions", json={**body, "temperature": 0})
    assert response.json()["choices"][0]["text"] == greedy.json()["choices"][0]["text"]


@pytest.mark.parametrize(
    "field, value", [("seed", True), ("seed", 2**64), ("max_new_tokens", "3"), ("stream", 1)]
)
def test_numbers_and_booleans_must_be_what_the_schema_says(client, field, value):
    assert_error(client.post("/v1/generate", json={"inputs": "ab", field: value}), 422, field)


def test_completions_without_max_tokens_fit_a_lower_limit(client):
    """OpenAI's default of 16 tokens, over this server's limit of 8, once answered 422."""
    response = client.post("/v1/completions", json={"prompt": "abc", "temperature": 0})
    assert response.status_code == 200 and response.json()["usage"]["completion_tokens"] <= 8


def test_the_schema_states_this_servers_limits(client, served):
    _, server = served
    models = client.get("/openapi.json").json()["components"]["schemas"]
    generate = models["GenerateRequest"]["properties"]
    assert generate["max_new_tokens"]["anyOf"][0]["maximum"] == server.limits.max_new_tokens
    assert generate["inputs"]["anyOf"][1]["maxItems"] == server.limits.max_inputs
    assert set(generate["decoder"]["anyOf"][0]["enum"]) == {"greedy", "iad", "beam", "sample"}
    assert generate["beam_size"]["anyOf"][0]["maximum"] == server.engine.max_batch  # 4 < 16


def test_the_blank_pattern_is_what_the_server_calls_blank():
    """The schema's pattern and the server's ``text.strip()`` must agree on every character."""
    import re
    import sys

    from seqweave.serve.openapi import NOT_BLANK

    pattern = re.compile(NOT_BLANK)
    disagree = [
        c for c in range(sys.maxunicode + 1) if (pattern.match(chr(c)) is None) != chr(c).isspace()
    ]
    assert disagree == []
