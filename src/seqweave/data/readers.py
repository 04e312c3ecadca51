"""Read training and generation data from JSONL, TSV, parallel text and plain text files.

Every reader is strict on purpose: a malformed line raises ``DataError`` naming the file and
the 1-based line, because a silently skipped or misaligned example is far harder to find
later (as a mysteriously low BLEU score) than a clear error at load time.

Line handling shared by all readers: files are read as bytes and decoded line by line as
UTF-8 (so an encoding error points at its line); a leading UTF-8 byte-order mark is dropped;
only the line terminator (``"\\n"`` or ``"\\r\\n"``) is stripped, all other whitespace is kept
as part of the text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from seqweave.data.unicode import require_encodable, unencodable
from seqweave.errors import DataError

PathLike = str | os.PathLike[str]

JSONL_SUFFIXES = (".jsonl", ".json")
TSV_SUFFIXES = (".tsv",)
TEXT_SUFFIXES = (".txt",)


@dataclass(frozen=True)
class Example:
    """One source/target pair, remembering where it came from so later errors can cite it."""

    source: str
    target: str | None  # None when reading inputs for generation
    extra: dict[str, Any]  # every other JSON field, e.g. "references": [...]
    path: str  # the file it came from
    line: int  # 1-based line number in that file


# ---------------------------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------------------------


def _strip_terminator(line: str) -> str:
    """Drop one trailing "\\n" or "\\r\\n" and nothing else, so text whitespace survives."""
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


def decode_lines(data: bytes, name: str) -> list[str]:
    """Split bytes into UTF-8 lines without terminators, reporting bad bytes by line number.

    Splitting happens on raw ``b"\\n"`` rather than ``str.splitlines`` because the latter also
    splits on characters such as U+2028 that may legitimately appear inside a sentence, which
    would shift every later line number and misalign parallel files.
    """
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the final terminator does not start another line
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(
                f"invalid UTF-8 at byte {err.start} of the line ({err.reason})",
                path=name,
                line=number,
            ) from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        lines.append(text)
    return lines


def read_text_lines(path: PathLike) -> list[str]:
    """Read a file as UTF-8 lines without terminators (see ``decode_lines``)."""
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise DataError("file does not exist", path=name)
    if not p.is_file():
        raise DataError("not a regular file", path=name)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read the file ({err.strerror or err})", path=name) from None
    return decode_lines(data, name)


def _is_blank(line: str) -> bool:
    return not line.strip()


def _require_nonblank(lines: list[str], name: str) -> None:
    """An all-blank file is almost always a failed export, so it is an error, not zero data."""
    if all(_is_blank(line) for line in lines):
        raise DataError("file is empty (no non-blank lines)", path=name)


# ---------------------------------------------------------------------------------------------
# JSONL
# ---------------------------------------------------------------------------------------------


def _parse_object(line: str, name: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        hint = ""
        if number == 1 and line.lstrip().startswith("["):
            hint = "; expected one JSON object per line (JSON Lines), not a JSON array"
        raise DataError(
            f"invalid JSON: {err.msg} at column {err.colno}{hint}", path=name, line=number
        ) from None
    except (ValueError, RecursionError) as err:  # an over-long integer, too deep nesting
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise DataError(f"invalid JSON: {reason}", path=name, line=number) from None
    if not isinstance(value, dict):
        raise DataError(
            f"expected a JSON object, got {type(value).__name__}", path=name, line=number
        )
    require_encodable(value, "", name, number)
    return value


def _string_field(
    record: dict[str, Any], key: str, name: str, number: int, required: bool
) -> str | None:
    """Fetch a text field; an absent or null optional field is None, anything else must be str."""
    value = record.get(key)
    if value is None:
        if required:
            what = "missing field" if key not in record else "null field"
            raise DataError(f"{what} {key!r}", path=name, line=number)
        return None
    if not isinstance(value, str):
        raise DataError(
            f"field {key!r} must be a string, got {type(value).__name__}", path=name, line=number
        )
    return value


def _lines_to_jsonl_examples(
    lines: Iterable[str],
    name: str,
    require_target: bool,
    source_field: str,
    target_field: str,
    first_line: int = 1,
) -> list[Example]:
    examples = []
    for number, line in enumerate(lines, start=first_line):
        if _is_blank(line):
            continue
        record = _parse_object(line, name, number)
        source = _string_field(record, source_field, name, number, required=True)
        target = _string_field(record, target_field, name, number, required=require_target)
        extra = {k: v for k, v in record.items() if k not in (source_field, target_field)}
        assert source is not None
        examples.append(Example(source, target, extra, name, number))
    return examples


def read_jsonl(
    path: PathLike,
    require_target: bool = True,
    source_field: str = "source",
    target_field: str = "target",
) -> list[Example]:
    """Read one JSON object per line; fields other than source/target land in ``extra``.

    Blank lines are skipped but still counted, so reported line numbers match an editor's.
    With ``require_target=False`` an absent or null target gives ``target=None``.
    """
    name = str(path)
    lines = read_text_lines(path)
    _require_nonblank(lines, name)
    return _lines_to_jsonl_examples(lines, name, require_target, source_field, target_field)


def parse_jsonl_lines(
    lines: Sequence[str],
    name: str,
    first_line: int,
    source_field: str = "source",
    target_field: str = "target",
) -> list[Example]:
    """Examples from some lines of a JSON Lines file that start at line ``first_line``
    (a streamed window, ``seqweave.data.stream``): errors name the file and the line as
    ``read_jsonl`` would, and blank lines are skipped."""
    stripped = [_strip_terminator(line) for line in lines]
    return _lines_to_jsonl_examples(stripped, name, True, source_field, target_field, first_line)


# ---------------------------------------------------------------------------------------------
# TSV
# ---------------------------------------------------------------------------------------------


def read_tsv(path: PathLike, require_target: bool = True) -> list[Example]:
    """Read header-less ``source<TAB>target`` lines.

    There is no quoting, so text containing a tab cannot be stored in TSV; use JSONL for that.
    Blank (whitespace-only) lines are skipped but counted. With ``require_target=False`` a line
    holding only a source (no tab) is accepted and gets ``target=None``.
    """
    name = str(path)
    lines = read_text_lines(path)
    _require_nonblank(lines, name)
    allowed = (2,) if require_target else (1, 2)
    examples = []
    for number, line in enumerate(lines, start=1):
        if _is_blank(line):
            continue
        fields = line.split("\t")
        if len(fields) not in allowed:
            expected = "exactly 2" if require_target else "1 or 2"
            raise DataError(
                f"expected {expected} tab-separated fields (source, target), got {len(fields)}",
                path=name,
                line=number,
            )
        target = fields[1] if len(fields) == 2 else None
        examples.append(Example(fields[0], target, {}, name, number))
    return examples


# ---------------------------------------------------------------------------------------------
# Parallel text and plain text
# ---------------------------------------------------------------------------------------------


def read_parallel(src_path: PathLike, tgt_path: PathLike) -> list[Example]:
    """Read aligned ``.src`` / ``.tgt`` files, one sentence per line.

    Line counts must match exactly (a trailing extra blank line counts too), because a
    one-line shift silently pairs every sentence with its neighbour's translation.
    A line blank on both sides is skipped as a paired separator; a line blank on only one side
    is an error, since it means one side lost or gained a sentence. Examples carry the source
    file's path and the shared line number.
    """
    src_name, tgt_name = str(src_path), str(tgt_path)
    src_lines = read_text_lines(src_path)
    tgt_lines = read_text_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"line counts differ: {src_name} has {len(src_lines)} lines, "
            f"{tgt_name} has {len(tgt_lines)}",
            path=tgt_name,
        )
    _require_nonblank(src_lines, src_name)
    examples = []
    for number, (src, tgt) in enumerate(zip(src_lines, tgt_lines, strict=True), start=1):
        src_blank, tgt_blank = _is_blank(src), _is_blank(tgt)
        if src_blank and tgt_blank:
            continue
        if src_blank or tgt_blank:
            blank, other = (src_name, tgt_name) if src_blank else (tgt_name, src_name)
            raise DataError(
                f"line is blank but line {number} of {other} is not", path=blank, line=number
            )
        examples.append(Example(src, tgt, {}, src_name, number))
    return examples


def _lines_to_text_examples(lines: list[str], name: str) -> list[Example]:
    """Every line is one source, blank ones included, so output line i answers input line i."""
    _require_nonblank(lines, name)
    return [Example(line, None, {}, name, n) for n, line in enumerate(lines, start=1)]


def read_text(path: PathLike) -> list[Example]:
    """Read plain text, one source per line, for generation (targets are None).

    Blank lines are kept as (empty) inputs rather than skipped, so generated outputs stay
    aligned line by line with the input file.
    """
    return _lines_to_text_examples(read_text_lines(path), str(path))


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------


def _parallel_pair(path: Path) -> tuple[Path, Path] | None:
    """Find ``(P.src, P.tgt)`` for a prefix P or for a path already ending in ``.src``."""
    if path.suffix == ".src":
        tgt = path.with_suffix(".tgt")
        return (path, tgt) if path.is_file() and tgt.is_file() else None
    src, tgt = Path(f"{path}.src"), Path(f"{path}.tgt")
    return (src, tgt) if src.is_file() and tgt.is_file() else None


def _sources_only(path: Path, require_target: bool, why: str) -> list[Example]:
    if not path.exists():
        raise DataError("file does not exist", path=str(path))
    if require_target:
        raise DataError(f"{why}, but targets are required", path=str(path))
    return read_text(path)


def read_examples(path: PathLike, require_target: bool = True) -> list[Example]:
    """Read a dataset, choosing the reader from the file name.

    ``.jsonl``/``.json`` -> JSONL; ``.tsv`` -> TSV; a prefix ``P`` with ``P.src`` and ``P.tgt``
    (or a ``.src`` path with a ``.tgt`` sibling) -> parallel text; ``.txt`` (or a ``.src``
    without a sibling) -> sources only, allowed only when ``require_target`` is False.
    Unknown extensions are an error rather than a guess, so a typo never reads as text.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return read_jsonl(p, require_target)
    if suffix in TSV_SUFFIXES:
        return read_tsv(p, require_target)
    pair = _parallel_pair(p)
    if pair is not None:
        return read_parallel(*pair)
    if suffix in TEXT_SUFFIXES:
        return _sources_only(p, require_target, "plain text holds sources only")
    if suffix == ".src" and p.is_file():
        why = f"no target file {p.with_suffix('.tgt').name} next to it"
        return _sources_only(p, require_target, why)
    if not p.exists():
        also = f" (nor do {p.name}.src and {p.name}.tgt)" if suffix != ".src" else ""
        raise DataError(f"file does not exist{also}", path=str(p))
    raise DataError(
        f"unrecognised data format {suffix or '(no extension)'!r}; expected .jsonl, .json, "
        ".tsv, .txt, or a prefix P with P.src and P.tgt",
        path=str(p),
    )


# ---------------------------------------------------------------------------------------------
# Generation inputs
# ---------------------------------------------------------------------------------------------


def _input_record(line: str, source_field: str, target_field: str) -> dict[str, Any] | None:
    """Return the parsed object if the line is a usable JSONL input record, else None."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None
    if not isinstance(value, dict) or not isinstance(value.get(source_field), str):
        return None
    if not isinstance(value.get(target_field), str | None):
        return None
    return value


def read_inputs(
    lines: Iterable[str],
    name: str,
    source_field: str = "source",
    target_field: str = "target",
) -> tuple[list[Example], str]:
    """Read generation inputs from any line source (a file's lines or ``sys.stdin``).

    Returns the examples and the detected format. The rule is all-or-nothing: the input is
    ``"jsonl"`` only if every non-blank line is a JSON object whose source field is a string
    (and whose target, if present, is a string or null); otherwise it is ``"text"`` and every
    line, including any that look like JSON, is taken verbatim as a source. This way a
    sentence that happens to start with ``{`` can never crash generation or be half-parsed.
    JSONL inputs skip blank lines; text inputs keep them so outputs align with input lines.
    """
    stripped = [_strip_terminator(line) for line in lines]
    if stripped and stripped[0].startswith("\ufeff"):
        stripped[0] = stripped[0][1:]
    for number, line in enumerate(stripped, start=1):
        problem = unencodable(line)  # text decoded with surrogateescape, e.g. a POSIX locale
        if problem is not None:
            raise DataError(problem, path=name, line=number)
    _require_nonblank(stripped, name)
    records = [
        _input_record(line, source_field, target_field) for line in stripped if not _is_blank(line)
    ]
    if all(record is not None for record in records):
        examples = _lines_to_jsonl_examples(
            stripped,
            name,
            require_target=False,
            source_field=source_field,
            target_field=target_field,
        )
        return examples, "jsonl"
    return _lines_to_text_examples(stripped, name), "text"


def read_input_stream(stream: IO, name: str) -> tuple[list[Example], str]:
    """Read generation inputs from an open stream such as ``sys.stdin``: its bytes when it has
    them, so bad UTF-8 is reported by line as for files, not by a traceback from the decoder."""
    binary = getattr(stream, "buffer", None)
    if binary is None:
        return read_inputs(stream, name)
    return read_inputs(decode_lines(binary.read(), name), name)


def read_input_file(path: PathLike) -> tuple[list[Example], str]:
    """Read generation inputs from a file with format auto-detection (see ``read_inputs``)."""
    return read_inputs(read_text_lines(path), str(path))
