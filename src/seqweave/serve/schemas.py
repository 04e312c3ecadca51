"""Request and response bodies of the HTTP API, validated by pydantic (wrong types, ranges and
text that is not valid Unicode -> 422). The OpenAPI schema is built from these, so it states
what the server really accepts and answers, and the fuzz tests check the server against it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from seqweave.data.unicode import unencodable
from seqweave.decoding.registry import DECODERS

Decoder = Literal[DECODERS]  # the decoders' table names them
FinishReason = Literal["stop", "length"]


def _valid_unicode(text: str) -> str:
    """JSON may carry a lone surrogate as an escape (``"\\ud800"``); the tokenizer cannot
    encode it, so it is refused here, as a 422 naming the field."""
    problem = unencodable(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def _valid_inputs(inputs: str | list[str]) -> str | list[str]:
    if isinstance(inputs, str):
        return _valid_unicode(inputs)
    for i, text in enumerate(inputs):
        problem = unencodable(text)
        if problem is not None:
            raise ValueError(f"input {i}: {problem}")
    return inputs


Text = Annotated[str, AfterValidator(_valid_unicode)]
Inputs = Annotated[str | list[str], AfterValidator(_valid_inputs)]
# JSON's safe integers (exact as doubles, so every client and validator agrees on the bounds),
# well inside what torch.Generator.manual_seed accepts (a seed beyond it once answered 500)
Seed = Annotated[int, Field(ge=-(2**53 - 1), le=2**53 - 1)]


def _numeric(annotation: Any) -> bool:
    """Whether a field holds a number: int, float, a Literal of ints, or an optional one."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) is Literal:
        return all(type(value) is int for value in get_args(annotation))
    return any(_numeric(arg) for arg in get_args(annotation))


class Request(BaseModel):
    """A request body whose numbers must be JSON numbers: pydantic's lax mode would read
    ``true`` or ``"5"`` as one, where the schema says number (a client bug worth a 422)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                if _numeric(field.annotation) and isinstance(data.get(name), bool | str):
                    raise ValueError(f"{name} must be a JSON number")
        return data


class GenerateRequest(Request):
    """``POST /v1/generate``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    inputs: Inputs
    decoder: Decoder | None = None
    max_new_tokens: int | None = Field(None, ge=1)
    beam_size: int | None = Field(None, ge=1, le=16)
    length_penalty: float | None = None
    temperature: float | None = Field(None, ge=0.0, le=10.0)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: Seed | None = None
    stream: StrictBool = False
    timeout: float | None = Field(None, gt=0.0, description="seconds before a 504")
    details: StrictBool = Field(
        False,
        description="also answer each output's spans: which tokens came from accepted drafts "
        "and which the model wrote (streamed: in each input's last event)",
    )


class CompletionRequest(Request):
    """``POST /v1/completions``: the subset of OpenAI's API that fits a seq2seq model.

    The prompt is the source sequence. ``temperature`` 0 decodes greedily (with
    the server's lossless decoder); above 0 it samples, as OpenAI's API does.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    model: Text | None = None
    prompt: Inputs
    max_tokens: int | None = Field(None, ge=1, description="default: 16, or the server's limit")
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: Literal[1] = 1
    stream: StrictBool = False
    seed: Seed | None = None


class RecommendRequest(Request):
    """``POST /v1/recommend`` (a sasrec model): a user's history of item ids, oldest first,
    as one space-separated string or a list."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    history: Inputs
    top_k: int = Field(10, ge=1, le=1000)


# -- responses -------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    type: str = Field(description="invalid_request, unauthorized, input_too_long, overloaded, ...")
    message: str


class ErrorResponse(BaseModel):
    """The one shape of every error the server answers."""

    error: ErrorDetail


class RowStats(BaseModel):
    passes: int
    drafted: int
    accepted: int
    queue_seconds: float
    compute_seconds: float


class Span(BaseModel):
    """A run of output tokens of one origin: accepted draft tokens, or tokens the model wrote
    itself (every token of a decoder that does not draft). The spans' texts join into the
    output."""

    text: str
    tokens: int
    drafted: bool


class GenerateResult(BaseModel):
    finish_reason: FinishReason
    tokens: int
    stats: RowStats
    spans: list[Span] | None = Field(None, description="with details: true")


class GenerateResponse(BaseModel):
    outputs: list[str]
    results: list[GenerateResult]


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: FinishReason | None
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class RecommendedItem(BaseModel):
    item: str
    score: float


class RecommendResponse(BaseModel):
    items: list[RecommendedItem] = Field(description="best first; the history's items left out")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    live: bool
    ready: bool
    draining: bool


class Live(BaseModel):
    live: bool
