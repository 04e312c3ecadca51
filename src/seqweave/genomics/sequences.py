"""Genomes and reads for alignment: FASTA/FASTQ records checked as nucleotides.

The files are read by ``seqweave.data.formats.fasta`` (its errors name the file, the record
and the line); this module adds what only a genome needs, so that a malformed file is found
when it is read, not deep inside an index build:

- every character of a sequence is an IUPAC nucleotide code; lower-case bases (soft-masked
  repeats) fold to upper case; ambiguity codes are kept as they are and read as ``N`` by
  the encoder. A bad character is reported at its record's header line (the reader joins
  wrapped lines, so the header is the line a user can find);
- reference contigs have unique names, or a hit's contig would be ambiguous.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from seqweave.data.formats.fasta import (
    SequenceRecord,
    read_fasta,
    read_sequences,
    sequence_format,
)
from seqweave.data.readers import PathLike
from seqweave.errors import DataError

# IUPAC nucleotide codes; anything else in a sequence is an error
BASES = frozenset("ACGTNRYSWKMBDHV")


def nucleotides(records: Iterable[SequenceRecord], path: PathLike) -> list[SequenceRecord]:
    """The records with their sequences upper-cased, after checking every code.

    Raises:
        DataError: a character that is no nucleotide code (file, record and header line).
    """
    checked = []
    for record in records:
        sequence = record.sequence.upper()
        bad = sorted(set(sequence) - BASES)
        if bad:
            shown = ", ".join(repr(c) for c in bad[:5])
            raise DataError(
                f"record {record.name!r}: not a nucleotide code: {shown}",
                path=str(path),
                line=record.line,
            )
        checked.append(dataclasses.replace(record, sequence=sequence))
    return checked


def read_reference(path: PathLike) -> list[SequenceRecord]:
    """The contigs of a reference FASTA file, checked as nucleotides.

    Raises:
        DataError: what the FASTA reader refuses, a character that is no nucleotide code,
            or a name used twice (hits would be ambiguous).
    """
    records = nucleotides(read_fasta(path), path)
    first: dict[str, int] = {}
    for record in records:
        if record.name in first:
            raise DataError(
                f"record {record.name!r}: name used twice (first at line {first[record.name]})",
                path=str(path),
                line=record.line,
            )
        first[record.name] = record.line
    return records


def read_reads(path: PathLike) -> list[SequenceRecord]:
    """The reads of a FASTQ file (or a FASTA file, by its suffix), checked as nucleotides.

    A suffix that is neither FASTA's nor FASTQ's is read as FASTQ, the sequencers' format.

    Raises:
        DataError: what the FASTA/FASTQ reader refuses, or a character that is no
            nucleotide code.
    """
    return nucleotides(read_sequences(path, sequence_format(path) or "fastq"), path)
