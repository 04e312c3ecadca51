"""API keys: every route but /health* needs ``Authorization: Bearer KEY`` when the server has
keys, refusals are 401 in the documented shape, keys come from --api-key or the environment,
and without keys the server answers as it always did."""

from __future__ import annotations

import logging
import string
import time

import pytest
from starlette.testclient import TestClient

from seqweave.checkpoint import save_model_dir
from seqweave.errors import ConfigError
from seqweave.serve import Limits, ServeConfig, Server, create_app, load_engine
from seqweave.serve import auth as auth_module
from seqweave.serve.auth import keys_from, warn_if_exposed
from seqweave.tokenizers import alphabet_tokenizer
from tests.conftest import tiny_model

KEYS = ("first-key", "second-key")
BODY = {"inputs": "abc", "max_new_tokens": 3, "decoder": "greedy"}
COMPLETION = {"prompt": "abc", "max_tokens": 3, "temperature": 0}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    letters = string.ascii_lowercase[:6]
    network = tiny_model(vocab_size=4 + len(letters), max_positions=32)
    directory = tmp_path_factory.mktemp("auth") / "m"
    return save_model_dir(directory, network, alphabet_tokenizer(letters))


@pytest.fixture(scope="module")
def server(model_dir):
    state = Server(Limits(16, 8, 4, 10.0), "greedy")
    load_engine(state, ServeConfig(str(model_dir), max_batch=4))
    yield state
    state.engine.close(drain=False)


@pytest.fixture(scope="module")
def locked(server):
    with TestClient(create_app(server, api_keys=KEYS)) as client:
        yield client


@pytest.fixture(scope="module")
def open_client(server):
    with TestClient(create_app(server)) as client:
        yield client


def bearer(key: str, scheme: str = "Bearer") -> dict:
    return {"Authorization": f"{scheme} {key}"}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert set(response.json()) == {"error"} and error["type"] == "unauthorized"
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/v1/generate", BODY),
        ("POST", "/v1/completions", COMPLETION),
        ("GET", "/metrics", None),
        ("GET", "/openapi.json", None),
        ("GET", "/docs", None),
        ("GET", "/no/such/path", None),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-key"), bearer(KEYS[0][:-1]), bearer(KEYS[0], "Basic"), bearer("")],
)
def test_every_route_but_health_refuses_a_missing_or_wrong_key(locked, method, path, body, headers):
    assert_unauthorized(locked.request(method, path, json=body, headers=headers))


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_each_key_opens_every_route_and_answers_as_without_keys(locked, open_client, key, scheme):
    for path, body in (("/v1/generate", BODY), ("/v1/completions", COMPLETION)):
        with_key = locked.post(path, json=body, headers=bearer(key, scheme))
        without_keys = open_client.post(path, json=body)
        assert with_key.status_code == 200 == without_keys.status_code, with_key.text
        if path == "/v1/generate":  # greedy: the same text whoever asks
            assert with_key.json()["outputs"] == without_keys.json()["outputs"]
    assert locked.get("/metrics", headers=bearer(key, scheme)).status_code == 200


def test_health_answers_without_a_key(locked):
    assert locked.get("/health").json()["ready"] is True
    assert locked.get("/health/live").json() == {"live": True}


def test_an_openai_client_with_its_api_key_gets_completions(locked):
    """What the OpenAI SDK sends: a bearer token, a JSON body, extra fields it always adds."""
    headers = {**bearer(KEYS[1]), "OpenAI-Organization": "org", "User-Agent": "OpenAI/Python"}
    body = {**COMPLETION, "model": "seqweave", "n": 1, "logprobs": None, "echo": False}
    response = locked.post("/v1/completions", json=body, headers=headers)
    assert response.status_code == 200 and response.json()["object"] == "text_completion"


def test_without_keys_nothing_asks_for_one(open_client):
    assert open_client.post("/v1/generate", json=BODY).status_code == 200
    assert open_client.get("/metrics").status_code == 200
    assert "securitySchemes" not in open_client.get("/openapi.json").json()["components"]


def test_the_schema_says_which_routes_need_the_key(locked):
    schema = locked.get("/openapi.json", headers=bearer(KEYS[0])).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            needs_key = operation.get("security") == [{"bearer": []}]
            assert needs_key == (not path.startswith("/health")), path
            assert ("401" in operation["responses"]) == needs_key


def test_every_key_is_compared_in_constant_time_even_after_a_match(monkeypatch):
    """No early exit: the time taken does not tell which key, or whether any, matched."""
    calls = []

    def compare(given, key):
        calls.append(key)
        return given == key

    monkeypatch.setattr(auth_module.hmac, "compare_digest", compare)
    keys = tuple(k.encode() for k in ("k1", "k2", "k3"))
    assert auth_module.key_matches(b"k1", keys)
    assert calls == list(keys)
    calls.clear()
    assert not auth_module.key_matches(b"nope", keys) and calls == list(keys)


@pytest.mark.parametrize(
    "arguments, environment, keys",
    [
        (["a"], "b,c", ("a",)),  # --api-key wins over the environment
        (["a", "b"], "", ("a", "b")),
        (None, "b, c,,", ("b", "c")),
        (None, " ", ()),
        (None, None, ()),
    ],
)
def test_keys_come_from_the_options_or_the_environment(arguments, environment, keys):
    environ = {} if environment is None else {"SEQWEAVE_API_KEY": environment}
    assert keys_from(arguments, environ) == keys


def test_a_key_that_is_not_text_is_a_config_error():
    key = b"k\xff".decode("utf-8", "surrogateescape")  # how argv holds bytes that are not UTF-8
    with pytest.raises(ConfigError, match="API key"):
        keys_from([key], {})


def test_the_serve_command_passes_its_keys_to_the_server_and_to_ray(monkeypatch):
    import seqweave.serve
    import seqweave.serve.ray_deployment
    from seqweave.cli import main

    configs = []
    monkeypatch.setattr(seqweave.serve, "serve", configs.append)
    monkeypatch.setattr(seqweave.serve.ray_deployment, "run", lambda c, n: configs.append(c))
    monkeypatch.setenv("SEQWEAVE_API_KEY", "from-env")
    assert main(["serve", "--model", "m", "--api-key", "k1", "--api-key", "k2"]) == 0
    assert main(["serve", "--model", "m", "--ray"]) == 0
    assert [c.api_keys for c in configs] == [("k1", "k2"), ("from-env",)]


def test_ray_replicas_build_their_app_with_the_keys(model_dir):
    from seqweave.serve.ray_deployment import _replica_app

    app = _replica_app(ServeConfig(str(model_dir), api_keys=("replica-key",)))
    with TestClient(app) as client:
        assert_unauthorized(client.get("/metrics"))
        assert client.get("/metrics", headers=bearer("replica-key")).status_code == 200
    state = app.state.server
    deadline = time.monotonic() + 60
    while state.engine is None and time.monotonic() < deadline:  # the replica's loader thread
        time.sleep(0.02)
    state.engine.close(drain=False)


@pytest.mark.parametrize(
    "host, keys, warns",
    [
        ("0.0.0.0", (), True),
        ("::", (), True),
        ("example.internal", (), True),
        ("0.0.0.0", ("k",), False),
        ("127.0.0.1", (), False),
        ("127.0.0.2", (), False),
        ("::1", (), False),
        ("localhost", (), False),
    ],
)
def test_a_warning_when_listening_beyond_loopback_without_a_key(caplog, host, keys, warns):
    with caplog.at_level(logging.WARNING, logger="seqweave.serve"):
        assert warn_if_exposed(host, keys) is warns
    assert ("no API key" in caplog.text) is warns
