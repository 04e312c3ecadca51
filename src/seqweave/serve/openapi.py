"""The OpenAPI schema of one server: the request models' schema narrowed to what this server
accepts (its limits, the decoders it can run), and the API key where it needs one.

The request models cannot know the limits, which are the server's settings; without them a
client, or a schema-driven fuzzer, would read ``max_new_tokens: 10000`` as valid and get a
422. A schema-valid request can then be refused only for what a schema cannot say: an
input over the token limit (413), a full queue (429), a server not ready (503).
"""

from __future__ import annotations

from collections.abc import Callable

from seqweave.decoding.registry import DECODER_SPECS
from seqweave.serve.auth import document_security

# "holds a character that str.strip() keeps", spelled out: \s means less in the ECMA regexes
# that JSON Schema validators use (no \x1c-\x1f, no \x85) and more (\ufeff)
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def server_openapi(app, server, with_keys: bool) -> Callable[[], dict]:
    """``app.openapi`` for ``server``: cached once the model has loaded (the limits are then
    final, clipped to the model's positions, and the draft model's kind is known)."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        app.openapi_schema = None  # FastAPI caches the plain one; ours replaces it
        describe_limits(schema["components"]["schemas"], server)
        drop_unserved(schema, server)
        if with_keys:
            document_security(schema)
        if server.ready:
            app.openapi_schema = schema
        return schema

    return openapi


def describe_limits(models: dict, server) -> None:
    """Narrow the request bodies' JSON schemas to this server's limits, in place."""
    limits = server.limits
    for name, field in (("GenerateRequest", "inputs"), ("CompletionRequest", "prompt")):
        for branch in _branches(models[name]["properties"][field]):
            if branch.get("type") == "array":
                branch.update(minItems=1, maxItems=limits.max_inputs)
                branch["items"]["pattern"] = NOT_BLANK
            else:
                branch["pattern"] = NOT_BLANK
    generate = models["GenerateRequest"]["properties"]
    for branch in _branches(generate["max_new_tokens"]):
        branch["maximum"] = limits.max_new_tokens
    completion = models["CompletionRequest"]["properties"]
    for branch in _branches(completion["max_tokens"]):
        branch["maximum"] = limits.max_new_tokens
    for branch in _branches(generate["decoder"]):
        branch["enum"] = runnable_decoders(server)
    if server.engine is not None:  # a beam's rows share the batch: at most max_batch of them
        for branch in _branches(generate["beam_size"]):
            branch["maximum"] = min(
                branch.get("maximum", server.engine.max_batch), server.engine.max_batch
            )


def runnable_decoders(server) -> list[str]:
    """The decoders this server can run: those without a draft model, and the one its draft
    model (if any) serves."""
    draft = _draft_decoder(server)
    return [n for n, s in DECODER_SPECS.items() if s.draft_model == "none" or n == draft]


def drop_unserved(schema: dict, server) -> None:
    """Once the model is loaded, leave out the routes it cannot serve: a text model's server
    does not recommend, a ranker's (sasrec, no engine) does not write text."""
    if not server.ready:
        return
    if server.engine is not None:
        unserved = ("/v1/recommend",)
    else:
        unserved = ("/v1/generate", "/v1/completions")
    for path in unserved:
        schema["paths"].pop(path, None)


def _branches(prop: dict) -> list[dict]:
    """The non-null alternatives of a property's schema (``anyOf`` of an optional field)."""
    return [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]


def _draft_decoder(server) -> str | None:
    return server.engine.draft_decoder if server.engine is not None else None
