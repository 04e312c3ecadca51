"""seqweave logparse (--model DIR | --baseline drain|copy) --input app.log --output DIR
[--format '<Date> <Time> <Level>: <Content>'] [--cache FILE] [--decoder iad]
[--batch-size 32] [--system NAME]

Parses a log into Loghub's CSVs: ``<log>_structured.csv`` (``LineId``, the format's
header fields, ``Content``, ``EventId``, ``EventTemplate``, ``ParameterList``) and
``<log>_templates.csv`` (``EventId``, ``EventTemplate``, ``Occurrences``). Every input
line has its row, so the line count in equals the line count out; a malformed line (one
the format does not match, or not valid UTF-8) is reported on stderr as ``FILE:LINE``,
is not parsed, and keeps a row with its raw text as Content and EventId ``malformed``.

With ``--model`` the templates come from a trained seqweave model, decoded (by default
with input-guided aggressive decoding, lossless) only for the messages the template
cache cannot answer; ``--cache FILE`` pre-loads the cache from FILE when it exists and
saves it there afterwards; ``--whole-words`` widens each slot the model writes to the
whole words it touches (``templates.whole_words``). ``--baseline drain`` runs Drain
(``--system`` picks the Loghub benchmark's masks for a known system), ``--baseline
copy`` the template-copy baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqweave.decoding import DECODERS
from seqweave.errors import ConfigError

BASELINES = ("drain", "copy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model directory: message -> template")
    source.add_argument("--baseline", choices=BASELINES, help="parse without a model")
    parser.add_argument("--input", required=True, help="the log file")
    parser.add_argument("--output", required=True, help="directory for the CSVs")
    parser.add_argument("--format", help="Loghub log format, e.g. '<Date> <Time> <Content>'")
    parser.add_argument("--cache", help="template cache JSON: pre-loaded if present, saved")
    parser.add_argument("--decoder", choices=DECODERS, default="iad")
    parser.add_argument("--batch-size", type=int, default=32, help="messages decoded at once")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--system", help="--baseline drain: the Loghub system's masks")
    parser.add_argument(
        "--whole-words", action="store_true", help="--model: a slot covers whole words"
    )


def _parser(args: argparse.Namespace):
    if args.baseline == "drain":
        from seqweave.baselines.drain import DrainParser

        return DrainParser(args.system), None
    if args.baseline == "copy":
        from seqweave.logparse.parsers import CopyParser

        return CopyParser(), None
    import seqweave
    from seqweave.logparse import TemplateCache
    from seqweave.logparse.parsers import Seq2SeqParser

    cache_path = Path(args.cache) if args.cache else None
    cache = TemplateCache.load(cache_path) if cache_path and cache_path.exists() else None
    cache = cache if cache is not None else TemplateCache()
    model = seqweave.load(args.model, device=args.device)
    parser = Seq2SeqParser(
        model, cache, args.decoder, args.batch_size, args.max_new_tokens, args.whole_words
    )
    return parser, cache


def run(args: argparse.Namespace) -> int:
    from seqweave.logparse import log_format, read_log
    from seqweave.logparse.formats import CONTENT
    from seqweave.logparse.output import structured_rows, write_csvs

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    fmt = log_format(args.format) if args.format else None
    headers = fmt.headers if fmt else (CONTENT,)
    if not Path(args.input).is_file():
        raise ConfigError(f"--input {args.input}: no such file")
    lines = list(read_log(args.input, fmt))
    for line in lines:
        if line.malformed:
            print(f"{args.input}:{line.line_id}: skipped: {line.problem}", file=sys.stderr)
    parser, cache = _parser(args)
    good = [line for line in lines if not line.malformed]
    parsed = parser.parse([line.content for line in good])
    templates = {line.line_id: t for line, t in zip(good, parsed, strict=True)}
    rows = structured_rows(lines, templates, headers)
    structured, summary = write_csvs(args.output, Path(args.input).name, rows, headers)
    if cache is not None and args.cache:
        cache.save(args.cache)
    decoded = getattr(parser, "decoded", None)
    note = f"; the model decoded {decoded} of {len(good)} messages" if decoded is not None else ""
    print(
        f"{len(lines)} lines ({len(lines) - len(good)} malformed), "
        f"{len(set(parsed))} templates{note} -> {structured}, {summary}",
        file=sys.stderr,
    )
    return 0
