"""seqweave eval --model DIR --data FILE --metric bleu [--metric chrf ...] [--output JSON]

Decodes the sources of a data set, scores the outputs against the targets (or
a ``references`` list per line, as in JFLEG), prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from seqweave.commands.options import add_decode_arguments, decode_overrides, load_model


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


def evaluate(model, examples, metrics: list[str], **overrides) -> dict:
    """Decode ``examples`` and compute each metric; also report speed and decoder counters."""
    from seqweave.metrics import compute_metric
    from seqweave.train.validate import references

    started = time.perf_counter()
    outputs = model.generate_tokens([e.source for e in examples], **overrides)
    seconds = time.perf_counter() - started
    hypotheses = model.tokenizer.decode_batch([o.tokens for o in outputs])
    refs = [references(e) for e in examples]
    sources = [e.source for e in examples]
    scores = {}
    for name in metrics:
        scores.update(compute_metric(name, hypotheses, refs, sources))
    return {
        "scores": scores,
        "examples": len(examples),
        "seconds": seconds,
        "sentences_per_second": len(examples) / seconds if seconds else 0.0,
        "decoder_passes_per_sentence": sum(o.stats.passes for o in outputs) / len(outputs),
        "hypotheses": hypotheses,
    }


def format_table(result: dict) -> str:
    rows = [
        (name, f"{value:.4f}" if abs(value) < 2 else f"{value:.2f}")
        for name, value in result["scores"].items()
    ]
    rows.append(("sentences", str(result["examples"])))
    rows.append(("sentences/s", f"{result['sentences_per_second']:.1f}"))
    rows.append(("passes/sentence", f"{result['decoder_passes_per_sentence']:.2f}"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:>10}" for name, value in rows)


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
