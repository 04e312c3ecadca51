"""seqweave lexicon --data FILE --output LEXICON.json [--reverse] [--iterations 5]
[--min-count 2] [--min-score 0.1]

Induces a bilingual word lexicon from the sentence pairs of a data file by IBM
Model 1 in both directions (``seqweave.data.lexicon``): source word -> its best
target word. ``--reverse`` induces target word -> source word. The lexicon feeds
the code-switching restore task (``seqweave.data.code_switch``).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data file with sources and targets")
    parser.add_argument("--output", required=True, help="lexicon JSON file to write")
    parser.add_argument("--reverse", action="store_true", help="translate target words instead")
    parser.add_argument("--iterations", type=int, default=5, help="EM iterations per direction")
    parser.add_argument("--min-count", type=int, default=2, help="rarer source words get none")
    parser.add_argument("--min-score", type=float, default=0.1, help="sqrt(t(f|e) t(e|f)) floor")
    parser.add_argument("--source-language", default="source")
    parser.add_argument("--target-language", default="target")


def run(args: argparse.Namespace) -> int:
    from seqweave.data.lexicon import induce_lexicon
    from seqweave.data.readers import read_examples

    pairs = [(e.source, e.target or "") for e in read_examples(args.data)]
    languages = (args.source_language, args.target_language)
    if args.reverse:
        pairs = [(target, source) for source, target in pairs]
        languages = languages[::-1]
    lexicon = induce_lexicon(
        pairs, args.iterations, args.min_count, args.min_score, languages[0], languages[1]
    )
    path = lexicon.save(args.output)
    print(f"{len(lexicon)} entries from {len(pairs)} pairs -> {path}", file=sys.stderr)
    return 0
