"""seqweave serve --model DIR [--host 127.0.0.1] [--port 8000] [--decoder iad|spec|gad|greedy|beam]
[--max-batch N] [--max-queue N] [--quantize int8] [--compile] [--api-key KEY ...]

API keys come from ``--api-key`` (repeatable) or, when none is given, from the
``SEQWEAVE_API_KEY`` environment variable (comma-separated), which keeps them out of the
process list."""

from __future__ import annotations

import argparse

from seqweave.commands.options import add_quantize_argument
from seqweave.decoding.registry import DECODER_SPECS, DECODERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--decoder",
        default="iad",
        choices=DECODERS,
        help="default decoder of requests that name none",
    )
    parser.add_argument(
        "--draft-model", help="draft model: autoregressive for 'spec', a nar_drafter for 'gad'"
    )
    parser.add_argument("--max-batch", type=int, default=32, help="rows decoded together")
    parser.add_argument("--max-queue", type=int, default=256, help="waiting inputs before 429")
    parser.add_argument("--max-input-tokens", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a 504")
    parser.add_argument("--device", default="cpu")
    add_quantize_argument(parser)
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="compile the decoder step (torch.compile; default: the model's decode.compile); "
        "the graphs are built before the server is ready",
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="serve with Ray Serve (replicas on this machine or a Ray cluster)",
    )
    parser.add_argument("--replicas", type=int, default=1, help="with --ray: server replicas")
    parser.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on every route but /health (repeatable; "
        "default: the comma-separated keys in SEQWEAVE_API_KEY)",
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from seqweave.serve import ServeConfig, serve
    from seqweave.serve.app import Limits
    from seqweave.serve.auth import keys_from

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if DECODER_SPECS[args.decoder].draft_model != "none" and not args.draft_model:
        from seqweave.errors import ConfigError

        raise ConfigError(f"--decoder {args.decoder} needs --draft-model DIR")
    limits = Limits(args.max_input_tokens, args.max_new_tokens, timeout=args.timeout)
    config = ServeConfig(
        args.model,
        args.host,
        args.port,
        args.decoder,
        args.draft_model,
        args.max_batch,
        args.max_queue,
        args.device,
        limits,
        api_keys=keys_from(args.api_key),
        quantize=args.quantize,
        compile=args.compile,
    )
    if args.ray:
        from seqweave.serve.ray_deployment import run as run_ray

        run_ray(config, args.replicas)
    else:
        serve(config)
    return 0
