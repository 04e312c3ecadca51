"""``seqweave`` command line: one module per subcommand, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

from seqweave.errors import SeqweaveError

COMMANDS = {
    "train": ("seqweave.commands.train", "train a model from a TOML config"),
    "generate": ("seqweave.commands.generate", "generate outputs for a file or stdin"),
    "eval": ("seqweave.commands.evaluate", "decode a data set and score it"),
    "analyze": (
        "seqweave.commands.analyze",
        "attention on the source per target step, or a data set's subpopulations",
    ),
    "bench": ("seqweave.commands.bench", "Hugging Face vs seqweave decoders on the same weights"),
    "serve": ("seqweave.commands.serve", "serve a model over HTTP with continuous batching"),
    "import-hf": ("seqweave.commands.import_hf", "convert a Hugging Face BART/Marian checkpoint"),
    "export-hf": ("seqweave.commands.export_hf", "write a BART-architecture model as Hugging Face"),
    "lexicon": (
        "seqweave.commands.lexicon",
        "induce a bilingual word lexicon from sentence pairs (IBM Model 1)",
    ),
    "align-train": (
        "seqweave.commands.align_train",
        "train the contrastive DNA encoder of seqweave align on a reference",
    ),
    "align": (
        "seqweave.commands.align",
        "place DNA reads on a reference: embed, search a vector index, Smith-Waterman",
    ),
    "logparse": (
        "seqweave.commands.logparse",
        "parse a log into Loghub's structured and templates CSVs",
    ),
    "extend-vocab": (
        "seqweave.commands.extend_vocab",
        "add task and label tokens to a model's vocabulary, old logits unchanged",
    ),
    "recommend": (
        "seqweave.commands.recommend",
        "the next items a sasrec model ranks best for an item history",
    ),
    "audit": (
        "seqweave.commands.audit",
        "black-box trigger audit: candidate words that move a model's outputs far",
    ),
    "demo": ("seqweave.commands.demo", "train and evaluate the grammatical-error-correction demo"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="seqweave", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).add_arguments(sub)
    args = parser.parse_args(argv)
    try:
        return importlib.import_module(COMMANDS[args.command][0]).run(args) or 0
    except SeqweaveError as error:
        print(f"seqweave {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
