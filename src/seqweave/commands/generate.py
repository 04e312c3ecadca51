"""seqweave generate --model DIR [--input FILE] [--output FILE] [decoding options]

Plain-text input gives plain-text output, one line per input line, in order
(a blank input line gives a blank output line). JSON Lines input (every line
an object with a ``source``) gives JSON Lines output: each input object with
an added ``output`` (and ``stats`` with ``--stats``).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

from seqweave.commands.options import add_decode_arguments, decode_overrides, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_decode_arguments(parser)
    parser.add_argument("--input", help="input file (default: stdin)")
    parser.add_argument("--output", help="output file (default: stdout)")
    parser.add_argument(
        "--stats", action="store_true", help="report decoder passes and draft tokens accepted"
    )


def summarize(outputs) -> str:
    """One line of counters over all rows."""
    rows = len(outputs) or 1
    passes = sum(o.stats.passes for o in outputs)
    drafted = sum(o.stats.drafted for o in outputs)
    accepted = sum(o.stats.accepted for o in outputs)
    tokens = sum(len(o.tokens) for o in outputs)
    rate = accepted / drafted if drafted else 0.0
    return (
        f"{len(outputs)} inputs, {tokens} tokens, {passes / rows:.2f} decoder passes per input, "
        f"{drafted} draft tokens, {accepted} accepted ({rate:.1%})"
    )


def run(args: argparse.Namespace) -> int:
    from seqweave.data.readers import read_input_file, read_inputs

    model = load_model(args)
    if args.input:
        examples, kind = read_input_file(args.input)
    else:
        examples, kind = read_inputs(sys.stdin, "<stdin>")
    wanted = [i for i, e in enumerate(examples) if e.source.strip() or kind == "jsonl"]
    outputs = model.generate_tokens([examples[i].source for i in wanted], **decode_overrides(args))
    texts = model.tokenizer.decode_batch([o.tokens for o in outputs])
    by_row = dict(zip(wanted, zip(texts, outputs, strict=True), strict=True))
    sink = Path(args.output).open("w", encoding="utf-8") if args.output else nullcontext(sys.stdout)  # noqa: SIM115
    with sink as out:
        for i, example in enumerate(examples):
            text, output = by_row.get(i, ("", None))
            if kind == "text":
                out.write(text.replace("\n", " ") + "\n")
                continue
            record = {"source": example.source, **example.extra}
            if example.target is not None:
                record["target"] = example.target
            record["output"] = text
            if args.stats and output is not None:
                record["stats"] = output.stats.as_dict()
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if args.stats:
        print(summarize(outputs), file=sys.stderr)
    return 0
