"""seqweave train CONFIG.toml [--set section.key=value ...] [--resume]"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment TOML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value, e.g. --set train.lr=1e-3 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last")


def run(args: argparse.Namespace) -> int:
    from seqweave.config import load_config
    from seqweave.train import train

    best = train(load_config(args.config, args.overrides), resume=args.resume)
    print(best)
    return 0
