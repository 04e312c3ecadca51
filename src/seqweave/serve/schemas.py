"""Request bodies of the HTTP API, validated by pydantic (wrong types and ranges -> 422)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Decoder = Literal["greedy", "iad", "spec", "gad", "beam", "sample"]


class GenerateRequest(BaseModel):
    """``POST /v1/generate``."""

    model_config = ConfigDict(extra="forbid")

    inputs: str | list[str]
    decoder: Decoder | None = None
    max_new_tokens: int | None = Field(None, ge=1)
    beam_size: int | None = Field(None, ge=1, le=16)
    length_penalty: float | None = None
    temperature: float | None = Field(None, ge=0.0, le=10.0)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
    stream: bool = False
    timeout: float | None = Field(None, gt=0.0, description="seconds before a 504")


class CompletionRequest(BaseModel):
    """``POST /v1/completions``: the subset of OpenAI's API that fits a seq2seq model.

    The prompt is the source sequence. ``temperature`` 0 decodes greedily (with
    the server's lossless decoder); above 0 it samples, as OpenAI's API does.
    """

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: Literal[1] = 1
    stream: bool = False
    seed: int | None = None
