"""The server's one error shape, ``{"error": {"type", "message"}}``, for every error it answers:
its own (``ApiError``), pydantic's request validation, and the framework's own (a body that
is not UTF-8 JSON, an unknown path, a wrong method), which would otherwise answer
``{"detail": ...}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from seqweave.serve.schemas import ErrorResponse

# the framework's statuses, by the type the error body names
HTTP_KINDS = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "input_too_long",
    415: "invalid_request",
}

# documented in the OpenAPI schema of every route that takes a request body
ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        401: "no valid API key (only when the server runs with keys)",
        413: "an input longer than the token limit",
        422: "malformed JSON, a body that is not UTF-8, a wrong field or value",
        429: "queue full; retry after Retry-After seconds",
        500: "decoding failed",
        503: "loading the model or shutting down",
        504: "past the request's timeout",
    }.items()
}


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers


def error_response(
    status: int, kind: str, message: str, headers: dict | None = None
) -> JSONResponse:
    """The error body. A message may quote request text (an unknown field's name) that is
    not valid Unicode; it is escaped so that the answer itself can always be encoded."""
    safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
    body = {"error": {"type": kind, "message": safe}}
    return JSONResponse(body, status_code=status, headers=headers)


def endpoint(request: Request) -> str:
    """The metrics label: the matched route, never a client-chosen path."""
    route = request.scope.get("route")
    return getattr(route, "path", "other")


def validation_message(error: RequestValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors()
    )


def install_error_handlers(app: FastAPI, metrics) -> None:
    """Answer every error in the documented shape and count it by endpoint and status."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        metrics.request(endpoint(request), error.status)
        return error_response(error.status, error.kind, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        metrics.request(endpoint(request), 422)
        return error_response(422, "invalid_request", validation_message(error))

    @app.exception_handler(HTTPException)
    async def framework(request: Request, error: HTTPException):
        # FastAPI answers 400 only for a body it cannot parse (not UTF-8): for the client,
        # that is one more malformed request, like malformed JSON (422)
        status = 422 if error.status_code == 400 else error.status_code
        metrics.request(endpoint(request), status)
        kind = HTTP_KINDS.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code == 400:
            message = f"{message}: the body must be JSON in UTF-8"
        return error_response(status, kind, message, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        metrics.request(endpoint(request), 500)
        return error_response(500, "internal_error", "internal error; see the server log")
