"""FASTA and FASTQ: read them into ``SequenceRecord``s and write them back.

Biologists keep sequences in these two formats, so seqweave reads them as they come from
databases and sequencers, and refuses (with ``DataError`` naming the file, the record and the
line) what would otherwise turn into a silently wrong example.

FASTA, as read here:

- a record is a header line ``>name description`` and the sequence lines after it, which are
  joined (wrapped lines are the norm: UniProt wraps at 60, NCBI at 70 or 80);
- ``name`` is the header's first whitespace-separated word, ``description`` the rest
  (stripped); a header with no name is an error;
- whitespace around each sequence line is dropped (so are blank lines), the characters
  themselves are kept as written: deciding what a lower-case letter, ``X`` or ``*`` means is
  the job of the alphabet that reads the sequence (``seqweave.data.proteins``), not the file
  reader's;
- lines starting with ``;`` are comments (the original Pearson format) and are skipped;
- errors: sequence text before the first header, a header with no sequence (an empty record),
  a file with no record at all.

FASTQ, as read here: ``@name description``, sequence lines, a ``+`` line (optionally repeating
the name, which must then match), quality lines. Wrapped sequence and quality are accepted:
quality lines are read until they hold as many characters as the sequence, because a quality
line may itself start with ``@`` or ``+``. Errors: a header that does not start with ``@``,
no ``+`` line, a ``+`` name that differs, quality shorter or longer than the sequence, a
quality character outside Phred+33 (``!`` to ``~``), an empty sequence.

Writers produce exactly what the readers read back (a round trip is tested): FASTA wrapped at
``width`` characters (0 for one line per sequence), FASTQ in the 4-line form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from seqweave.data.readers import PathLike, read_text_lines
from seqweave.errors import DataError

FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fna", ".fas", ".ffn", ".frn", ".mpfa")
FASTQ_SUFFIXES = (".fastq", ".fq")
QUALITY_MIN, QUALITY_MAX = "!", "~"  # Phred+33: scores 0 to 93


@dataclass(frozen=True)
class SequenceRecord:
    """One FASTA/FASTQ record. ``quality`` is None for FASTA; ``line`` is the header's line
    (0 for a record built in code), kept so later errors can cite it."""

    name: str
    description: str
    sequence: str
    quality: str | None = None
    line: int = 0


def sequence_format(path: PathLike) -> str | None:
    """``"fasta"`` or ``"fastq"`` from the file name's suffix, else None."""
    suffix = Path(path).suffix.lower()
    if suffix in FASTA_SUFFIXES:
        return "fasta"
    if suffix in FASTQ_SUFFIXES:
        return "fastq"
    return None


def _split_header(text: str, marker: str, name: str, number: int) -> tuple[str, str]:
    body = text[len(marker) :].strip()
    if not body:
        raise DataError(f"header {text!r} has no record name", path=name, line=number)
    parts = body.split(None, 1)
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


# ---------------------------------------------------------------------------------------------
# FASTA
# ---------------------------------------------------------------------------------------------


def parse_fasta(lines: Iterable[str], name: str = "<fasta>") -> Iterator[SequenceRecord]:
    """Records from FASTA lines (without terminators); ``name`` is the file cited in errors."""
    header: tuple[str, str, int] | None = None
    chunks: list[str] = []
    seen = 0
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith(";"):
            continue
        if text.startswith(">"):
            if header is not None:
                yield _fasta_record(header, chunks, name)
                seen += 1
            record_name, description = _split_header(text, ">", name, number)
            header, chunks = (record_name, description, number), []
        elif header is None:
            raise DataError(
                f"sequence text before the first '>' header: {text[:30]!r}", path=name, line=number
            )
        else:
            chunks.append(text)
    if header is None:
        raise DataError("no FASTA record (expected a '>' header line)", path=name)
    yield _fasta_record(header, chunks, name)


def _fasta_record(header: tuple[str, str, int], chunks: list[str], name: str) -> SequenceRecord:
    record_name, description, number = header
    if not chunks:
        raise DataError(f"record {record_name!r} has no sequence", path=name, line=number)
    return SequenceRecord(record_name, description, "".join(chunks), None, number)


def read_fasta(path: PathLike) -> Iterator[SequenceRecord]:
    """The records of a FASTA file, in file order (see the module docstring for the rules)."""
    return parse_fasta(read_text_lines(path), str(path))


# ---------------------------------------------------------------------------------------------
# FASTQ
# ---------------------------------------------------------------------------------------------


def parse_fastq(lines: Iterable[str], name: str = "<fastq>") -> Iterator[SequenceRecord]:
    """Records from FASTQ lines (without terminators); ``name`` is the file cited in errors."""
    numbered = [(n, raw.strip()) for n, raw in enumerate(lines, start=1)]
    numbered = [(n, text) for n, text in numbered if text]
    if not numbered:
        raise DataError("no FASTQ record (expected an '@' header line)", path=name)
    index = 0
    while index < len(numbered):
        record, index = _fastq_record(numbered, index, name)
        yield record


def _fastq_record(
    numbered: list[tuple[int, str]], index: int, name: str
) -> tuple[SequenceRecord, int]:
    """The record starting at ``numbered[index]``, and the index after it."""
    number, text = numbered[index]
    if not text.startswith("@"):
        raise DataError(f"expected an '@' header line, got {text[:30]!r}", path=name, line=number)
    record_name, description = _split_header(text, "@", name, number)
    where = f"record {record_name!r}"
    index += 1
    chunks: list[str] = []
    while index < len(numbered) and not numbered[index][1].startswith("+"):
        chunks.append(numbered[index][1])
        index += 1
    if index == len(numbered):
        raise DataError(f"{where} has no '+' line", path=name, line=number)
    plus_number, plus = numbered[index]
    if plus[1:].strip() and plus[1:].strip() != record_name:
        raise DataError(
            f"{where}: the '+' line names {plus[1:].strip()!r}", path=name, line=plus_number
        )
    sequence = "".join(chunks)
    if not sequence:
        raise DataError(f"{where} has no sequence", path=name, line=number)
    quality, index = _read_quality(numbered, index + 1, len(sequence), where, name)
    return SequenceRecord(record_name, description, sequence, quality, number), index


def _read_quality(
    numbered: list[tuple[int, str]], index: int, length: int, where: str, name: str
) -> tuple[str, int]:
    """Quality lines until they hold ``length`` characters (a line may start with '@')."""
    chunks: list[str] = []
    have = 0
    last = numbered[index - 1][0]
    while have < length and index < len(numbered):
        last, text = numbered[index]
        chunks.append(text)
        have += len(text)
        index += 1
    quality = "".join(chunks)
    if len(quality) != length:
        raise DataError(
            f"{where}: quality has {len(quality)} characters, the sequence {length}",
            path=name,
            line=last,
        )
    bad = next((c for c in quality if not QUALITY_MIN <= c <= QUALITY_MAX), None)
    if bad is not None:
        raise DataError(
            f"{where}: quality character {bad!r} is outside Phred+33 ('!' to '~')",
            path=name,
            line=last,
        )
    return quality, index


def read_fastq(path: PathLike) -> Iterator[SequenceRecord]:
    """The records of a FASTQ file, in file order (see the module docstring for the rules)."""
    return parse_fastq(read_text_lines(path), str(path))


def read_sequences(path: PathLike, file_format: str | None = None) -> Iterator[SequenceRecord]:
    """FASTA or FASTQ records; the format is ``file_format`` or else the file's suffix."""
    chosen = file_format or sequence_format(path)
    if chosen == "fasta":
        return read_fasta(path)
    if chosen == "fastq":
        return read_fastq(path)
    raise DataError(
        f"cannot tell FASTA from FASTQ by the suffix (FASTA: {', '.join(FASTA_SUFFIXES)}; "
        f"FASTQ: {', '.join(FASTQ_SUFFIXES)}); name the format",
        path=str(path),
    )


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _check_writable(record: SequenceRecord, fastq: bool) -> None:
    if not record.name or any(c.isspace() for c in record.name):
        raise DataError(f"record name {record.name!r} is empty or holds whitespace")
    if "\n" in record.description or "\r" in record.description:
        raise DataError(f"record {record.name!r}: the description holds a line break")
    if not record.sequence or any(c.isspace() for c in record.sequence):
        raise DataError(f"record {record.name!r}: the sequence is empty or holds whitespace")
    if fastq and (record.quality is None or len(record.quality) != len(record.sequence)):
        raise DataError(f"record {record.name!r}: quality missing or not as long as the sequence")


def _header(marker: str, record: SequenceRecord) -> str:
    tail = f" {record.description}" if record.description else ""
    return f"{marker}{record.name}{tail}\n"


def write_fasta(records: Iterable[SequenceRecord], out: TextIO, width: int = 60) -> int:
    """Write records as FASTA, sequences wrapped at ``width`` (0: no wrapping); the count."""
    count = 0
    for record in records:
        _check_writable(record, fastq=False)
        out.write(_header(">", record))
        step = width if width > 0 else len(record.sequence)
        for start in range(0, len(record.sequence), step):
            out.write(record.sequence[start : start + step] + "\n")
        count += 1
    return count


def write_fastq(records: Iterable[SequenceRecord], out: TextIO) -> int:
    """Write records as 4-line FASTQ; the count."""
    count = 0
    for record in records:
        _check_writable(record, fastq=True)
        out.write(_header("@", record) + record.sequence + "\n+\n" + f"{record.quality}\n")
        count += 1
    return count
