"""Analysts that ask a language model: a seqweave model, or any OpenAI-compatible
completions endpoint (``seqweave serve``'s ``/v1/completions`` included).

Both reduce to a *completer*: a function from a list of prompts to a list of replies, in
order. ``PromptedAnalyst`` writes the SSD-LLM prompts on top of it:

- propose: numbered sample texts, and a request for JSON
  ``{"dimensions": [{"name": ..., "attributes": [...]}]}``; a reply with no such JSON object
  is an ``AnalystError`` that quotes the reply (a model that cannot follow the format should
  be noticed, not read as "no structure");
- assign: one prompt per text and dimension, listing the attributes; the reply names one. A
  reply naming none of them counts as ``other`` and is counted and quoted in ``describe()``
  (``unmatched``), because one odd reply among thousands should not stop the run.

The endpoint is reached with ``urllib`` from the standard library, temperature 0, one
request per batch of prompts (OpenAI's API takes a list as ``prompt``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from seqweave.errors import SeqweaveError
from seqweave.subpopulations.structure import OTHER, Attribute, Dimension, normalise_name

Completer = Callable[[list[str]], list[str]]


class AnalystError(SeqweaveError):
    """The analyst's model or endpoint answered something unusable."""


def quoted(text: str, limit: int = 200) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def completions_url(url: str) -> str:
    url = url.rstrip("/")
    if url.endswith("/completions"):
        return url
    return url + ("/completions" if url.endswith("/v1") else "/v1/completions")


def urllib_post(endpoint: str, data: bytes, timeout: float) -> tuple[int, str]:
    """POST JSON with the standard library; the status and the body, errors included."""
    request = urllib.request.Request(endpoint, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as error:
        raise AnalystError(f"{endpoint}: cannot reach the endpoint ({error})") from None


Post = Callable[[str, bytes, float], tuple[int, str]]


def openai_completer(
    url: str, max_tokens: int = 256, timeout: float = 120.0, post: Post = urllib_post
) -> Completer:
    """``post`` is the transport: urllib by default, a test client's in tests."""
    endpoint = completions_url(url)

    def complete(prompts: list[str]) -> list[str]:
        body = {"prompt": prompts, "max_tokens": max_tokens, "temperature": 0}
        status, raw = post(endpoint, json.dumps(body).encode(), timeout)
        if status != 200:
            raise AnalystError(f"{endpoint}: HTTP {status}: {quoted(raw)}")
        return parse_completions(raw, len(prompts), endpoint)

    return complete


def parse_completions(raw: str, expected: int, endpoint: str) -> list[str]:
    """The ``choices[].text`` of an OpenAI completions response, ordered by ``index``."""
    try:
        reply = json.loads(raw)
        choices = sorted(reply["choices"], key=lambda choice: choice.get("index", 0))
        texts = [choice["text"] for choice in choices]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise AnalystError(
            f"{endpoint}: not an OpenAI completions response "
            f"(want JSON with choices[].text): {quoted(raw)}"
        ) from None
    if len(texts) != expected or not all(isinstance(text, str) for text in texts):
        raise AnalystError(f"{endpoint}: {len(texts)} text choices for {expected} prompts")
    return texts


def model_completer(directory: str, max_new_tokens: int = 128) -> Completer:
    """Greedy generation with a seqweave model (loaded on first use)."""
    loaded = []

    def complete(prompts: list[str]) -> list[str]:
        if not loaded:
            import seqweave

            loaded.append(seqweave.load(directory))
        return loaded[0].generate(prompts, max_new_tokens=max_new_tokens)

    return complete


def propose_prompt(texts: Sequence[str], dimensions: int) -> str:
    listed = "\n".join(f"{i}. {text}" for i, text in enumerate(texts, start=1))
    return (
        f"Texts:\n{listed}\n\nName up to {dimensions} dimensions along which these texts "
        "differ (for example who or what they are about, a property, a place) and for each "
        "its attributes (values). Answer only JSON: "
        '{"dimensions": [{"name": "...", "attributes": ["...", "..."]}]}'
    )


def assign_prompt(text: str, dimension: Dimension) -> str:
    options = "; ".join([*dimension.names(), OTHER])
    return (
        f"Text: {text}\nDimension: {dimension.name}\nAttributes: {options}\n"
        "Answer with exactly one attribute from the list."
    )


def parse_dimensions(reply: str, source: str) -> list[Dimension]:
    """The first JSON object in the reply, as dimensions; an ``AnalystError`` quoting the
    reply when it has none or has the wrong shape."""
    start, end = reply.find("{"), reply.rfind("}")
    try:
        data = json.loads(reply[start : end + 1]) if 0 <= start < end else None
        dimensions = [
            Dimension(
                str(item["name"]),
                tuple(Attribute(str(a), (str(a).lower(),)) for a in item["attributes"]),
            )
            for item in data["dimensions"]
        ]
    except (json.JSONDecodeError, KeyError, TypeError):
        dimensions = None
    if not dimensions:
        raise AnalystError(
            f"{source}: the proposal is not JSON with dimensions[].name and "
            f"dimensions[].attributes: {quoted(reply)}"
        )
    return dimensions


def match_attribute(reply: str, names: Sequence[str]) -> str | None:
    """The attribute the reply names: an exact match (case, plural s ignored), else the
    longest name found in the reply."""
    key = normalise_name(reply.strip().strip(".\"'"))
    for name in names:
        if normalise_name(name) == key:
            return name
    found = [name for name in names if name.lower() in reply.lower()]
    return max(found, key=len) if found else None


class PromptedAnalyst:
    """The SSD-LLM prompts over any completer; see the module docstring."""

    def __init__(self, complete: Completer, source: str, dimensions: int = 4, examples: int = 30):
        self.complete = complete
        self.source = source
        self.num_dimensions = dimensions
        self.examples = examples
        self.unmatched: list[str] = []
        self.replies = 0

    def propose(self, texts: Sequence[str]) -> list[Dimension]:
        (reply,) = self.complete([propose_prompt(texts[: self.examples], self.num_dimensions)])
        return parse_dimensions(reply, self.source)[: self.num_dimensions]

    def assign(self, texts: Sequence[str], dimensions: Sequence[Dimension]) -> list[dict]:
        prompts = [assign_prompt(text, d) for text in texts for d in dimensions]
        replies = self.complete(prompts) if prompts else []
        rows, position = [], 0
        for _ in texts:
            row = {}
            for dimension in dimensions:
                reply = replies[position]
                position += 1
                choice = match_attribute(reply, [*dimension.names(), OTHER])
                if choice is None:
                    self.unmatched.append(reply)
                row[dimension.name] = choice or OTHER
            rows.append(row)
        self.replies += len(replies)
        return rows

    def describe(self) -> dict:
        return {
            "analyst": self.source,
            "max_dimensions": self.num_dimensions,
            "replies": self.replies,
            "unmatched": len(self.unmatched),
            "unmatched_examples": [quoted(r) for r in self.unmatched[:5]],
        }
