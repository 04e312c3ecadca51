"""seqweave demo [--out runs/demo] [--minutes M]"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="where data, model and results go")
    parser.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="cap training time (default: none; a cap that stops training makes the scores "
        "depend on the machine's speed)",
    )
    parser.add_argument("--train-size", type=int, default=100_000, help="synthetic training pairs")


def run(args: argparse.Namespace) -> int:
    from seqweave.demo import run_demo

    run_demo(Path(args.out), args.minutes, args.train_size)
    return 0
