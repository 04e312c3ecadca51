"""API keys: with keys configured, every route but ``/health*`` and the playground page ``/``
needs ``Authorization: Bearer KEY``.

That header is what OpenAI clients send with their ``api_key``, so they work unchanged. The
check is an ASGI middleware rather than a route dependency so that it covers every path
(the OpenAPI schema, unknown paths) and never wraps the streaming responses' body.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from seqweave.data.unicode import unencodable
from seqweave.errors import ConfigError
from seqweave.serve.errors import error_response

ENV_VARIABLE = "SEQWEAVE_API_KEY"
SCHEME = "bearer"  # the OpenAPI security scheme's name
log = logging.getLogger("seqweave.serve")


def keys_from(arguments: Iterable[str] | None, environ: dict | None = None) -> tuple[str, ...]:
    """The keys given with ``--api-key`` or, when none is, in ``SEQWEAVE_API_KEY`` (several
    separated by commas). Blank entries are dropped: an empty variable means no keys.

    Raises:
        ConfigError: a key is not valid text (it could never match a request's header).
    """
    given = [key.strip() for key in arguments or ()]
    if not given:
        environ = os.environ if environ is None else environ
        given = [key.strip() for key in environ.get(ENV_VARIABLE, "").split(",")]
    if any(unencodable(key) for key in given):  # bytes that were not UTF-8 on the command line
        raise ConfigError("an API key is not valid UTF-8 text")
    return tuple(key for key in given if key)


def is_public(path: str) -> bool:
    """Health checks answer without a key: load balancers and orchestrators carry none. So
    does the playground page (``/``), which holds no data: its calls send the key."""
    return path in ("/", "/health") or path.startswith("/health/")


def presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (the scheme in any case)."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None


def key_matches(token: bytes | None, keys: tuple[bytes, ...]) -> bool:
    """Compare against every key in constant time, so timing tells nothing about any key."""
    if token is None:
        return False
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(token, key)
    return matched


class BearerAuth:
    """ASGI middleware: 401 in the documented error shape, with ``WWW-Authenticate: Bearer``."""

    def __init__(self, app: ASGIApp, keys: Iterable[str], on_reject=None):
        self.app = app
        self.keys = tuple(key.encode("utf-8") for key in keys)
        self.on_reject = on_reject  # called with the path, for metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            return await self.app(scope, receive, send)
        token = presented_key(scope.get("headers", []))
        if key_matches(token, self.keys):
            return await self.app(scope, receive, send)
        if self.on_reject is not None:
            self.on_reject()
        why = "no API key given" if token is None else "the API key is not valid"
        message = f"{why}; send the header 'Authorization: Bearer KEY'"
        headers = {"WWW-Authenticate": "Bearer"}
        await error_response(401, "unauthorized", message, headers)(scope, receive, send)


def document_security(schema: dict) -> dict:
    """Mark every operation but the health checks as needing the bearer key in the OpenAPI
    schema, so clients and schema-driven tests know to send it."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {"type": "http", "scheme": "bearer"}
    for path, operations in schema.get("paths", {}).items():
        if is_public(path):
            continue
        for operation in operations.values():
            operation["security"] = [{SCHEME: []}]
            operation.setdefault("responses", {}).setdefault(
                "401",
                {
                    "description": "no valid API key",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                        }
                    },
                },
            )
    return schema


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def warn_if_exposed(host: str, keys: tuple[str, ...]) -> bool:
    """Warn when the server listens beyond this machine with no key; True if it warned."""
    if keys or is_loopback(host):
        return False
    log.warning(
        "listening on %s with no API key: anyone who can reach this port can use the model; "
        "pass --api-key (or set %s) or serve behind an authenticating proxy",
        host,
        ENV_VARIABLE,
    )
    return True
