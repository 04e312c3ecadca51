"""seqweave generate --model DIR [--input FILE] [--output FILE] [decoding options]

Plain-text input gives plain-text output, one line per input line, in order
(a blank input line gives a blank output line; an empty input gives no output and
exit status 0, as other line-oriented tools do). JSON Lines input (every line
an object with a ``source``) gives JSON Lines output: each input object with
an added ``output`` (and ``stats`` with ``--stats``). FASTA or FASTQ input (by the
suffix, ``.fasta``/``.fa``/``.faa``/``.fq``..., or ``--input-format``) gives JSON Lines
too: one object per record with its ``name``, ``description``, ``source`` and ``output``.
``--prefix`` puts a text before every input (a task token such as ``<task=ss>``).
Input to a protein model is checked and mapped first (``seqweave.data.proteins``): an
unreadable residue is an error naming the record or line and the position.

``--stream-source`` simulates simultaneous translation: each input's words
arrive one at a time and the translation is redone after each word, by the
model from scratch or, with ``--editor DIR``, by a nar_editor revising the
previous translation (``seqweave.streaming``). The output is JSON Lines, one
object per update: ``input`` (its line index), ``source_words``, ``output``,
``passes``, ``erased`` (tokens of the previous output taken back) and
``seconds``; ``--stats`` adds average lagging and normalized erasure.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

from seqweave.commands.options import add_decode_arguments, decode_overrides, load_model
from seqweave.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_decode_arguments(parser)
    parser.add_argument("--input", help="input file (default: stdin)")
    parser.add_argument("--output", help="output file (default: stdout)")
    parser.add_argument(
        "--input-format",
        choices=("auto", "lines", "fasta", "fastq"),
        default="auto",
        help="auto: FASTA/FASTQ by the file's suffix, else as lines (JSON Lines or text, "
        "by content)",
    )
    parser.add_argument("--prefix", default="", help="text put before every input (<task=ss>)")
    parser.add_argument(
        "--tag",
        metavar="LABELS",
        help="no decoding: one label per input token from the model's tagging head "
        "(model.tag_head), chosen among LABELS (HEC: 3-state secondary structure)",
    )
    parser.add_argument(
        "--stats", action="store_true", help="report decoder passes and draft tokens accepted"
    )
    parser.add_argument(
        "--stream-source",
        action="store_true",
        help="re-translate after each source word; JSON Lines output, one object per update",
    )
    parser.add_argument("--editor", help="--stream-source: a nar_editor model revises outputs")
    parser.add_argument(
        "--edit-passes", type=int, default=2, help="--stream-source --editor: passes per update"
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


def read_examples(path: str | None, input_format: str = "auto"):
    """The inputs and their format (see ``readers.read_inputs``). Input with no non-blank
    line is not refused here, unlike training data: an empty file or stdin is zero inputs,
    and blank lines are text inputs that get blank outputs, so pipelines keep working."""
    from seqweave.data.formats.fasta import sequence_format
    from seqweave.data.readers import Example, decode_lines, read_inputs, read_text_lines

    name = path or "<stdin>"
    sequences = input_format if input_format != "auto" else path and sequence_format(path)
    if sequences in ("fasta", "fastq"):
        return read_sequence_examples(path, sequences), sequences
    if path:
        lines = read_text_lines(path)
    else:
        binary = getattr(sys.stdin, "buffer", None)
        lines = list(sys.stdin) if binary is None else decode_lines(binary.read(), name)
    if any(line.strip() for line in lines):
        return read_inputs(lines, name)
    return [Example("", None, {}, name, n) for n in range(1, len(lines) + 1)], "text"


def read_sequence_examples(path: str | None, file_format: str):
    """FASTA/FASTQ records as examples that carry their name and description."""
    from seqweave.data.formats.fasta import parse_fasta, parse_fastq, read_sequences
    from seqweave.data.readers import Example, decode_lines

    if path:
        records = read_sequences(path, file_format)
    else:
        parse = parse_fasta if file_format == "fasta" else parse_fastq
        records = parse(decode_lines(sys.stdin.buffer.read(), "<stdin>"), "<stdin>")
    name = path or "<stdin>"
    return [
        Example(r.sequence, None, {"name": r.name, "description": r.description}, name, r.line)
        for r in records
    ]


def prepare_sources(model, examples, kind: str, prefix: str) -> list[str]:
    """Each input with ``prefix``; for a protein model, mapped or refused by
    ``clean_protein``, naming the record (FASTA) or the file and line."""
    from seqweave.data.proteins import clean_protein, is_protein_vocabulary

    sources = [prefix + e.source for e in examples]
    if not is_protein_vocabulary(model.tokenizer):
        return sources
    cleaned = []
    for example, source in zip(examples, sources, strict=True):
        name = example.extra.get("name") if kind in ("fasta", "fastq") else None
        where = f"record {name!r}" if name is not None else "input"
        cleaned.append(clean_protein(source, where, example.path, example.line))
    return cleaned


def run(args: argparse.Namespace) -> int:
    if (args.editor or args.edit_passes != 2) and not args.stream_source:
        raise ConfigError("--editor and --edit-passes only apply with --stream-source")
    if args.edit_passes < 1:
        raise ConfigError(f"--edit-passes must be >= 1, got {args.edit_passes}")
    model = load_model(args)
    examples, kind = read_examples(args.input, args.input_format)
    if args.stream_source:
        return stream(args, model, [e.source for e in examples])
    wanted = [i for i, e in enumerate(examples) if e.source.strip() or kind != "text"]
    outputs, texts = [], []
    if wanted:
        sources = prepare_sources(model, [examples[i] for i in wanted], kind, args.prefix)
        if args.tag:
            texts = model.tag(sources, labels=args.tag)
            outputs = [None] * len(texts)
        else:
            texts, outputs = model.generate_texts(sources, **decode_overrides(args))
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
    if args.stats and not args.tag:
        print(summarize(outputs), file=sys.stderr)
    return 0


def stream(args: argparse.Namespace, model, sources: list[str]) -> int:
    """``--stream-source``: one JSON line per update of every input."""
    import seqweave
    from seqweave.streaming import retranslate, source_words, stream_metrics

    editor = seqweave.load(args.editor, device=args.device) if args.editor else None
    if editor is not None and editor.tokenizer.backend.get_vocab() != (
        model.tokenizer.backend.get_vocab()
    ):
        raise ConfigError("the editor's tokenizer differs from the model's")
    decode = decode_overrides(args)
    streams = []
    sink = Path(args.output).open("w", encoding="utf-8") if args.output else nullcontext(sys.stdout)  # noqa: SIM115
    with sink as out:
        for index, source in enumerate(sources):
            words = source_words(source)
            if not words:
                continue
            updates = list(retranslate(model, words, editor, args.edit_passes, **decode))
            for update in updates:
                record = {
                    "input": index,
                    "source_words": update.source_words,
                    "output": model.tokenizer.decode(update.tokens),
                    "passes": update.passes,
                    "erased": update.erased,
                    "seconds": round(update.seconds, 6),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            streams.append(updates)
    if args.stats and streams:
        metrics = stream_metrics(streams)
        print(
            f"{len(streams)} inputs, {metrics['updates']} updates, "
            f"{metrics['passes_per_update']:.2f} decoder passes per update, "
            f"average lagging {metrics['average_lagging']:.2f} words, "
            f"normalized erasure {metrics['normalized_erasure']:.3f}",
            file=sys.stderr,
        )
    return 0
