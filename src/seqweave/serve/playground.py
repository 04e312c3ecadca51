"""``GET /``: the playground, one page to try the model in a browser.

Plain HTML and JavaScript from ``playground.html`` beside this module (package data: no
build step, no external assets). The page calls ``/v1/generate`` with ``details: true`` and
shows the output's edits against the input (a word-level diff), which tokens came from
accepted drafts and which the model wrote, the decoder passes and the latency. The page
itself is public and holds nothing; with API keys its calls send the key typed into it.
"""

from __future__ import annotations

import json
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from seqweave.serve.openapi import runnable_decoders

PAGE = "playground.html"
SETTINGS_SLOT = "/*SETTINGS*/null"  # where the page's settings are written in


def page_settings(server, needs_key: bool) -> dict:
    """What the page needs from this server: its decoders, its default one, whether its calls
    need a key and its limits."""
    return {
        "decoders": runnable_decoders(server),
        "decoder": server.default_decoder,
        "needsKey": needs_key,
        "maxInputs": server.limits.max_inputs,
        "maxNewTokens": server.limits.max_new_tokens,
    }


def render_page(server, needs_key: bool) -> str:
    template = resources.files("seqweave.serve").joinpath(PAGE).read_text("utf-8")
    settings = json.dumps(page_settings(server, needs_key)).replace("</", "<\\/")
    return template.replace(SETTINGS_SLOT, settings)


def add_playground_route(app: FastAPI, server, needs_key: bool) -> None:
    """``GET /`` (not in the OpenAPI schema: a page, not part of the API). Rendered per
    request, since the decoders are known only once the draft model has loaded."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(render_page(server, needs_key))
