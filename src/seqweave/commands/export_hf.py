"""seqweave export-hf DIR OUT: write a BART-architecture model as a Hugging Face checkpoint."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="seqweave model directory (a BART-architecture model)")
    parser.add_argument("out", help="Hugging Face BART directory to write")


def run(args: argparse.Namespace) -> int:
    from seqweave.models.hf_export import export_hf

    print(export_hf(args.source, args.out))
    return 0
