"""seqweave recommend --model DIR --history "12 345 7" [--top-k 10] [--json]

The next items a sasrec model ranks best for a user's history (item ids, oldest first,
space-separated), items of the history left out, one ``item<TAB>score`` line each, best
first; ``--json`` prints ``{"items": [{"item", "score"}, ...]}``. An item id the model
does not know is an error that names it.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a sasrec model directory")
    parser.add_argument("--history", required=True, help='item ids, oldest first: "12 345 7"')
    parser.add_argument("--top-k", type=int, default=10, help="how many items (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import seqweave
    from seqweave.errors import ConfigError
    from seqweave.recommend import top_items

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")
    model = seqweave.load(args.model, device=args.device)
    if model.config.architecture != "sasrec":
        raise ConfigError(
            f"{args.model} is a {model.config.architecture!r} model; recommend needs a sasrec one"
        )
    items = top_items(model, [args.history], args.top_k)[0]
    if args.json:
        print(json.dumps({"items": items}))
    else:
        for entry in items:
            print(f"{entry['item']}\t{entry['score']:.6g}")
    return 0
