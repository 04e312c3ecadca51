"""``seqweave analyze subpopulations``: its options and its run (``seqweave.subpopulations``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqweave.errors import ConfigError


def add_subpopulation_arguments(group) -> None:
    group.add_argument("--text-field", default="source", help="JSONL field with the text")
    group.add_argument("--label-field", help="JSONL field with a class label (optional)")
    group.add_argument(
        "--analyst",
        default="keywords",
        help="keywords (built in), model:DIR (a seqweave model) or openai:URL "
        "(an OpenAI-compatible completions endpoint, e.g. seqweave serve's)",
    )
    group.add_argument("--dimensions", type=int, default=4, help="at most this many dimensions")
    group.add_argument("--sample", type=int, default=500, help="texts the analyst proposes from")
    group.add_argument(
        "--min-share", type=float, default=0.01, help="drop attributes rarer than this share"
    )
    group.add_argument("--seed", type=int, default=0, help="seed of the sample")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_subpopulations(args: argparse.Namespace) -> int:
    from seqweave.subpopulations import build_analyst, discover, read_corpus
    from seqweave.subpopulations.structure import write_outputs

    if args.dimensions < 1 or args.sample < 1:
        raise ConfigError("--dimensions and --sample must be >= 1")
    if not 0.0 <= args.min_share < 1.0:
        raise ConfigError(f"--min-share must be in [0, 1), got {args.min_share}")
    output = Path(args.output if args.output != "analysis" else "analysis/subpopulations")
    corpus = read_corpus(args.data, args.text_field, args.label_field)
    analyst = build_analyst(args.analyst, args.dimensions)
    structure, rows, _ = discover(
        corpus,
        analyst,
        sample_size=args.sample,
        min_share=args.min_share,
        seed=args.seed,
        progress=not args.no_progress,
    )
    paths = write_outputs(output, structure, corpus, rows)
    for dimension, counts in structure["counts"].items():
        shown = ", ".join(f"{name} {count}" for name, count in counts.items())
        print(f"{dimension}: {shown}")
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0
