"""Decoding options shared by generate, eval and bench."""

from __future__ import annotations

import argparse
from typing import Any

from seqweave.decoding import DECODERS


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--decoder", choices=DECODERS, help="default: the model's own setting")
    parser.add_argument("--batch-size", type=int, help="sentences per batch")
    parser.add_argument("--max-new-tokens", type=int, help="most tokens generated per input")
    parser.add_argument("--beam-size", type=int)
    parser.add_argument("--length-penalty", type=float)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int)


def decode_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The DecodeConfig fields given on the command line."""
    names = (
        "decoder",
        "batch_size",
        "max_new_tokens",
        "beam_size",
        "length_penalty",
        "temperature",
        "top_k",
        "top_p",
        "seed",
    )
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
