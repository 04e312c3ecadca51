"""seqweave demo [--out runs/demo] [--minutes 6]"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="where data, model and results go")
    parser.add_argument(
        "--minutes", type=float, default=6.0, help="training time limit (stops early if reached)"
    )
    parser.add_argument("--train-size", type=int, default=100_000, help="synthetic training pairs")


def run(args: argparse.Namespace) -> int:
    from seqweave.demo import run_demo

    run_demo(Path(args.out), args.minutes, args.train_size)
    return 0
