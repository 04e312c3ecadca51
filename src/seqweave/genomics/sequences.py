"""FASTA and FASTQ readers whose errors name the record and the line.

A malformed genome file is found when it is read, not deep inside an index build:
each error says which record (its name, or the line where it should have started)
and which line broke, so a user can open the file at that line. Lower-case bases
(soft-masked repeats) fold to upper case; IUPAC ambiguity codes are kept as they are
and read as ``N`` by the encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seqweave.errors import DataError

# IUPAC nucleotide codes; anything else in a sequence line is an error
BASES = frozenset("ACGTNRYSWKMBDHV")
_COMPLEMENT = str.maketrans("ACGTNRYSWKMBDHV", "TGCANYRSWMKVHDB")


class SequenceFormatError(DataError):
    """A FASTA or FASTQ file that cannot be read; the message names record and line."""


@dataclass(frozen=True)
class SequenceRecord:
    """One FASTA sequence or FASTQ read (``quality`` is empty for FASTA)."""

    name: str
    seq: str
    quality: str = ""


def reverse_complement(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


def _where(path: Path, line: int, name: str | None) -> str:
    record = f"record {name!r}" if name else "before the first record"
    return f"{path}:{line}: {record}"


def _bases(text: str, path: Path, line: int, name: str) -> str:
    seq = text.strip().upper()
    bad = sorted(set(seq) - BASES)
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise SequenceFormatError(f"{_where(path, line, name)}: not a nucleotide code: {shown}")
    return seq


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="ascii") as handle:
            for number, line in enumerate(handle, 1):
                yield number, line.rstrip("\r\n")
    except FileNotFoundError:
        raise SequenceFormatError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise SequenceFormatError(f"{path}: not ASCII text ({error.reason})") from None


def read_fasta(path: str | Path) -> list[SequenceRecord]:
    """Every record of a FASTA file, sequence lines joined.

    Raises:
        SequenceFormatError: a sequence line before the first header, a header with no
            name, a record with no sequence, a character that is no nucleotide code, or
            a name used twice (hits would be ambiguous).
    """
    path = Path(path)
    records: list[SequenceRecord] = []
    name, header_line, parts = None, 0, []

    def finish() -> None:
        if name is None:
            return
        if not parts:
            raise SequenceFormatError(f"{_where(path, header_line, name)}: no sequence")
        records.append(SequenceRecord(name, "".join(parts)))

    seen: set[str] = set()
    for number, line in _lines(path):
        if line.startswith(">"):
            finish()
            fields = line[1:].split()
            if not fields:
                raise SequenceFormatError(f"{_where(path, number, None)}: header with no name")
            name, header_line, parts = fields[0], number, []
            if name in seen:
                raise SequenceFormatError(f"{_where(path, number, name)}: name used twice")
            seen.add(name)
        elif line.strip():
            if name is None:
                raise SequenceFormatError(f"{_where(path, number, None)}: sequence before '>'")
            parts.append(_bases(line, path, number, name))
    finish()
    if not records:
        raise SequenceFormatError(f"{path}: no FASTA records")
    return records


def read_fastq(path: str | Path) -> list[SequenceRecord]:
    """Every read of a FASTQ file (four lines per record: @name, bases, +, qualities).

    Raises:
        SequenceFormatError: a record cut short, a header without ``@``, a separator
            without ``+``, qualities of another length than the bases, or a character
            that is no nucleotide code.
    """
    path = Path(path)
    reads: list[SequenceRecord] = []
    lines = [(n, text) for n, text in _lines(path)]
    while lines and not lines[-1][1].strip():
        lines.pop()
    for first in range(0, len(lines), 4):
        block = lines[first : first + 4]
        number, header = block[0]
        if not header.startswith("@") or not header[1:].split():
            raise SequenceFormatError(f"{_where(path, number, None)}: expected '@name'")
        name = header[1:].split()[0]
        if len(block) < 4:
            raise SequenceFormatError(f"{_where(path, number, name)}: record cut short")
        seq = _bases(block[1][1], path, block[1][0], name)
        if not block[2][1].startswith("+"):
            raise SequenceFormatError(f"{_where(path, block[2][0], name)}: expected '+'")
        quality = block[3][1].strip()
        if len(quality) != len(seq):
            raise SequenceFormatError(
                f"{_where(path, block[3][0], name)}: {len(quality)} qualities for {len(seq)} bases"
            )
        reads.append(SequenceRecord(name, seq, quality))
    return reads
