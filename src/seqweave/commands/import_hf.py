"""seqweave import-hf DIR OUT: convert a local Hugging Face BART or Marian checkpoint."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="Hugging Face model directory (config.json, safetensors)")
    parser.add_argument("out", help="seqweave model directory to write")


def run(args: argparse.Namespace) -> int:
    from seqweave.models.hf_import import import_hf

    print(import_hf(args.source, args.out))
    return 0
