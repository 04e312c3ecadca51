"""seqweave eval --model DIR --data FILE --metric bleu [--metric chrf ...] [--output JSON]

Decodes the sources of a data set, scores the outputs against the targets (or
a ``references`` list per line, as in JFLEG), prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqweave.commands.options import add_decode_arguments, decode_overrides, load_model
from seqweave.evaluation import evaluate, format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from seqweave.metrics import METRICS

    add_decode_arguments(parser)
    parser.add_argument("--data", required=True, help="data file with sources and targets")
    parser.add_argument(
        "--metric", action="append", choices=sorted(METRICS), help="repeatable (default: bleu)"
    )
    parser.add_argument("--limit", type=int, help="score only the first N examples")
    parser.add_argument("--output", default="eval.json", help="JSON result file")
    parser.add_argument("--hypotheses", help="also write the outputs, one per line, here")


def run(args: argparse.Namespace) -> int:
    from seqweave.data.readers import read_examples

    model = load_model(args)
    examples = read_examples(args.data)
    if args.limit:
        examples = examples[: args.limit]
    result = evaluate(model, examples, args.metric or ["bleu"], **decode_overrides(args))
    print(format_table(result))
    hypotheses = result.pop("hypotheses")
    if args.hypotheses:
        Path(args.hypotheses).write_text("".join(h.replace("\n", " ") + "\n" for h in hypotheses))
    result.update(
        {"model": str(args.model), "data": str(args.data), "decode": decode_overrides(args)}
    )
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
