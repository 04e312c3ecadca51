"""Prompts that mix typed segments and scalar values (MAMMAL, Shoshan et al. 2024).

A prompt is text such as ``<task=fitness> <@AA> MQYK... <scalar=0.73> <mask>``: a task
token, a segment marker saying what the following characters are (``<@AA>``: amino
acids), the characters one token each (spaces included, so spacing round-trips), scalar
values written ``<scalar=VALUE>``, and ``<mask>`` where the model is to answer with a
number (``models/scalars.py`` reads its regression head there).

The token ids carry a ``<scalar>`` placeholder for each value; the value itself travels in
a **parallel float channel**, one float per token, NaN where the token is not a scalar.
A value cannot be a token id, so the channel is recomputed from the text wherever ids are
made: the tokenizer's normalizer turns every ``<scalar=...>`` into ``<scalar>`` (saved in
tokenizer.json, so ``seqweave.train`` and ``seqweave.load`` see the same ids), and
``encode_prompt`` reads the values back in order.

Round trip: ``decode_prompt(encode_prompt(text))`` is ``text`` exactly when each value is
written as Python's shortest round-trip form (``repr(float)``: ``0.73``, ``-1e-05``), and
``encode_prompt(decode_prompt(ids, channel))`` gives the same ids and bit-identical values
for any finite values. Characters outside the alphabet are refused, never read as ``<unk>``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

import torch
from tokenizers import AddedToken, Regex, normalizers

from seqweave.errors import ConfigError
from seqweave.tokenizers.alphabets import PROTEIN_ALPHABET, alphabet_tokenizer
from seqweave.tokenizers.tokenizer import Tokenizer

SCALAR_TOKEN = "<scalar>"
MASK_TOKEN = "<mask>"  # the same token denoising masks with (objectives/e2s2.py)
SEGMENT_TOKENS = ("<@AA>",)
PROMPT_ALPHABET = PROTEIN_ALPHABET + "0123456789.,- "
_SCALAR = re.compile(r"<scalar=([^<>\s]*)>")


def mixed_prompt_tokenizer(
    task_tokens: Sequence[str] = (),
    segment_tokens: Sequence[str] = SEGMENT_TOKENS,
    alphabet: str = PROMPT_ALPHABET,
) -> Tokenizer:
    """One token per character of ``alphabet`` (case kept: a lower-case residue is refused,
    not folded), plus ``<scalar>``, ``<mask>``, the segment markers and the task tokens.

    Raises:
        ConfigError: a markup token is not written ``<...>`` or holds whitespace.
    """
    markup = [*task_tokens, *segment_tokens, MASK_TOKEN]
    for token in markup:
        if not (token.startswith("<") and token.endswith(">")) or any(c.isspace() for c in token):
            raise ConfigError(f"prompt token {token!r} must look like <NAME>, no spaces")
    tokenizer = alphabet_tokenizer(alphabet)
    backend = tokenizer.backend
    backend.normalizer = normalizers.Replace(Regex(_SCALAR.pattern), SCALAR_TOKEN)
    # <scalar> is matched after the normalizer wrote it; the others in the raw text
    backend.add_tokens([AddedToken(SCALAR_TOKEN, special=False, normalized=True)])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in markup])
    return tokenizer


def format_scalar(value: float) -> str:
    """The canonical text of a value inside ``<scalar=...>``: shortest round-trip form."""
    return repr(float(value))


def prompt_values(text: str) -> list[float]:
    """The values of the ``<scalar=VALUE>`` markups of ``text``, in order.

    Raises:
        ValueError: a value is not a finite number.
    """
    values = []
    for match in _SCALAR.finditer(text):
        try:
            value = float(match.group(1))
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"{match.group(0)!r}: a scalar must be a finite number")
        values.append(value)
    return values


def scalar_channel(ids: Sequence[int], values: Sequence[float], scalar_id: int) -> list[float]:
    """One float per id: the k-th value at the k-th ``<scalar>`` id, NaN elsewhere.

    Raises:
        ValueError: the number of placeholders and of values differ (a bare ``<scalar>``
            written in the text has no value).
    """
    places = [i for i, token in enumerate(ids) if token == scalar_id]
    if len(places) != len(values):
        raise ValueError(
            f"{len(places)} <scalar> tokens but {len(values)} values: write each scalar as "
            "<scalar=VALUE>"
        )
    channel = [math.nan] * len(ids)
    for place, value in zip(places, values, strict=True):
        channel[place] = float(value)
    return channel


def encode_prompt(tokenizer: Tokenizer, text: str) -> tuple[list[int], list[float]]:
    """Token ids of a mixed prompt and its float channel (NaN where no scalar).

    Raises:
        ValueError: a character is outside the tokenizer's alphabet (named, with its
            place), or a scalar is malformed.
    """
    ids = tokenizer.encode(text)
    if tokenizer.unk_id in ids:
        _refuse_unknown(tokenizer, text)
    return ids, scalar_channel(ids, prompt_values(text), _id(tokenizer, SCALAR_TOKEN))


def decode_prompt(tokenizer: Tokenizer, ids: Sequence[int], channel: Sequence[float]) -> str:
    """The text of ids and their channel: each ``<scalar>`` written with its value, the
    special tokens (pad, bos, eos) left out."""
    scalar_id = _id(tokenizer, SCALAR_TOKEN)
    skipped = {tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id}
    parts = []
    for token, value in zip(ids, channel, strict=True):
        if token == scalar_id:
            parts.append(f"<scalar={format_scalar(value)}>")
        elif token not in skipped:
            parts.append(tokenizer.id_to_token(token))
    return "".join(parts)


def source_scalars(tokenizer: Tokenizer, src: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
    """The float channel (B, S) of a padded batch of framed source ids ``src`` (B, S) made
    from ``texts``: each row's values at its ``<scalar>`` ids, 0 elsewhere (so that a
    multiplication by the channel never meets NaN)."""
    scalar_id = _id(tokenizer, SCALAR_TOKEN)
    rows = [
        scalar_channel(row.tolist(), prompt_values(text), scalar_id)
        for row, text in zip(src, texts, strict=True)
    ]
    return torch.tensor(rows, dtype=torch.float32).nan_to_num(0.0)


def target_scalars(tokenizer: Tokenizer, src: torch.Tensor, targets: Sequence[str]) -> torch.Tensor:
    """Targets (B, M) of the regression head: the k-th value written in a row's target
    (``<scalar=1.803>``) is the answer at the row's k-th ``<mask>``; NaN pads rows with
    fewer masks. M is the most masks of any row (at least 1).

    Raises:
        ValueError: a row's target has not one value per ``<mask>`` of its source.
    """
    mask_id = _id(tokenizer, MASK_TOKEN)
    masks = (src == mask_id).sum(1).tolist()
    out = torch.full((len(targets), max([1, *masks])), math.nan)
    for row, (count, text) in enumerate(zip(masks, targets, strict=True)):
        values = prompt_values(text)
        if len(values) != count:
            raise ValueError(
                f"row {row}: {count} <mask> tokens in the source but {len(values)} scalars "
                f"in the target {text[:60]!r}"
            )
        out[row, :count] = torch.tensor(values, dtype=torch.float32)
    return out


def scalar_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """``model.scalar_id`` and ``model.mask_id`` of a scalar-head model using ``tokenizer``."""
    return {"scalar_id": _id(tokenizer, SCALAR_TOKEN), "mask_id": _id(tokenizer, MASK_TOKEN)}


def with_scalars(batch, tokenizer: Tokenizer, examples: Sequence) -> object:
    """``batch`` (a ``data.tokenized.Batch`` of ``examples``) with its float channel and
    regression targets, read from the examples' source and target text."""
    src = batch.src
    return dataclasses.replace(
        batch,
        src_scalars=source_scalars(tokenizer, src, [e.source for e in examples]),
        tgt_scalars=target_scalars(tokenizer, src, [e.target or "" for e in examples]),
    )


def _id(tokenizer: Tokenizer, token: str) -> int:
    found = tokenizer.token_to_id(token)
    if found is None:
        raise ConfigError(
            f"the tokenizer has no {token} token: build it with mixed_prompt_tokenizer"
        )
    return found


def _refuse_unknown(tokenizer: Tokenizer, text: str) -> None:
    """Name the first character that the alphabet does not hold."""
    plain = _SCALAR.sub("", text)
    for token in tokenizer.backend.get_added_tokens_decoder().values():
        plain = plain.replace(token.content, "")
    vocab = tokenizer.backend.get_vocab()
    bad = next((c for c in plain if c not in vocab), "?")
    raise ValueError(
        f"character {bad!r} (at {text.find(bad)}) is not in the prompt alphabet; markup is "
        "<task=...>, <@AA>, <scalar=VALUE>, <mask>"
    )
