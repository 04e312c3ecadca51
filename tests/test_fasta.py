"""FASTA/FASTQ: write-then-read returns the records, and every documented error names the
file, the record and the line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.data.formats.fasta import (
    SequenceRecord,
    parse_fasta,
    parse_fastq,
    read_fasta,
    read_fastq,
    read_sequences,
    sequence_format,
    write_fasta,
    write_fastq,
)
from seqweave.errors import DataError

NAME = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
WORD = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)
DESCRIPTION = st.lists(WORD, max_size=4).map(" ".join)
RESIDUES = st.text(st.sampled_from("ACDEFGHIKLMNPQRSTVWYXBZUO*-acgtn"), min_size=1, max_size=200)


def records(with_quality: bool):
    def build(draw_tuple):
        name, description, sequence, quality_seed = draw_tuple
        quality = None
        if with_quality:
            quality = "".join(chr(33 + (quality_seed + 7 * i) % 94) for i in range(len(sequence)))
        return SequenceRecord(name, description, sequence, quality)

    one = st.tuples(NAME, DESCRIPTION, RESIDUES, st.integers(0, 93)).map(build)
    return st.lists(one, min_size=1, max_size=6)


def without_lines(found: list[SequenceRecord]) -> list[SequenceRecord]:
    return [SequenceRecord(r.name, r.description, r.sequence, r.quality) for r in found]


@settings(max_examples=60, deadline=None)
@given(records(with_quality=False), st.sampled_from([0, 1, 7, 60]))
def test_fasta_round_trip(original, width):
    out = io.StringIO()
    assert write_fasta(original, out, width=width) == len(original)
    assert without_lines(list(parse_fasta(out.getvalue().splitlines()))) == original


@settings(max_examples=60, deadline=None)
@given(records(with_quality=True))
def test_fastq_round_trip(original):
    out = io.StringIO()
    assert write_fastq(original, out) == len(original)
    assert without_lines(list(parse_fastq(out.getvalue().splitlines()))) == original


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_fasta_wrapped_lines_comments_blank_lines_and_header_line(tmp_path):
    path = write(
        tmp_path,
        "; a comment\n>sp|P1|ONE first protein\nMKV\n  LLA \n\n>two\r\nGG\r\n",
        "x.fasta",
    )
    found = list(read_sequences(path))
    assert found == [
        SequenceRecord("sp|P1|ONE", "first protein", "MKVLLA", None, 2),
        SequenceRecord("two", "", "GG", None, 6),
    ]


def test_fastq_wrapped_and_quality_starting_with_at_and_plus(tmp_path):
    text = "@r1 read one\nACG\nT\n+r1\n@@+\n!\n@r2\nA\n+\n+\n"
    found = list(read_fastq(write(tmp_path, text, "x.fq")))
    assert found == [
        SequenceRecord("r1", "read one", "ACGT", "@@+!", 1),
        SequenceRecord("r2", "", "A", "+", 7),
    ]


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("MKV\n>a\nMK\n", 1, "before the first '>'"),
        (">a\nMK\n>b\n>c\nMK\n", 3, "'b' has no sequence"),
        (">a\nMK\n>b\n", 3, "'b' has no sequence"),
        (">a\nMK\n>  \nMK\n", 3, "no record name"),
        ("\n; only a comment\n", None, "no FASTA record"),
    ],
)
def test_fasta_errors_name_file_record_and_line(tmp_path, text, line, words):
    path = write(tmp_path, text, "bad.fasta")
    with pytest.raises(DataError, match=words) as caught:
        list(read_fasta(path))
    assert caught.value.path == str(path) and caught.value.line == line
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("r1\nACGT\n+\n!!!!\n", 1, "expected an '@' header"),
        ("@r1\nACGT\n!!!!\n", 1, "'r1' has no '\\+' line"),
        ("@r1\nACGT\n+r2\n!!!!\n", 3, "'\\+' line names 'r2'"),
        ("@r1\nACGT\n+\n!!!\n", 4, "quality has 3 characters, the sequence 4"),
        ("@r1\nACGT\n+\n!!!!!\n", 4, "quality has 5 characters, the sequence 4"),
        ("@r1\nAC\n+\n!\n@r2\nAC\n+\n!!\n", 5, "'r1': quality has 4 characters, the sequence 2"),
        ("@r1\nAC\n+\n!\u00e9\n", 4, "outside Phred\\+33"),
        ("@r1\n+\n\n", 1, "'r1' has no sequence"),
        ("\n\n", None, "no FASTQ record"),
        ("@\nAC\n+\n!!\n", 1, "no record name"),
    ],
)
def test_fastq_errors_name_file_record_and_line(tmp_path, text, line, words):
    path = write(tmp_path, text, "bad.fastq")
    with pytest.raises(DataError, match=words) as caught:
        list(read_fastq(path))
    assert caught.value.path == str(path) and caught.value.line == line


def test_format_from_suffix_and_unknown_suffix_is_an_error(tmp_path):
    assert sequence_format("a.FASTA") == "fasta" and sequence_format("b.fq") == "fastq"
    assert sequence_format("c.txt") is None
    path = write(tmp_path, ">a\nMK\n", "proteins.txt")
    with pytest.raises(DataError, match="name the format"):
        read_sequences(path)
    assert [r.sequence for r in read_sequences(path, "fasta")] == ["MK"]


@pytest.mark.parametrize(
    "record",
    [
        SequenceRecord("two words", "", "MK"),
        SequenceRecord("", "", "MK"),
        SequenceRecord("a", "line\nbreak", "MK"),
        SequenceRecord("a", "", ""),
        SequenceRecord("a", "", "M K"),
    ],
)
def test_writers_refuse_what_would_not_read_back(record):
    with pytest.raises(DataError):
        write_fasta([record], io.StringIO())


def test_fastq_writer_needs_quality_of_the_sequence_length():
    with pytest.raises(DataError, match="quality"):
        write_fastq([SequenceRecord("a", "", "MK", "!")], io.StringIO())
