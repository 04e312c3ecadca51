"""Tests for seqweave.data.readers: formats, dispatch, and errors that name file and line."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from seqweave.data.readers import (
    Example,
    read_examples,
    read_input_file,
    read_inputs,
    read_jsonl,
    read_parallel,
    read_text_lines,
    read_tsv,
)
from seqweave.errors import DataError


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def assert_data_error(exc: pytest.ExceptionInfo[DataError], path: Path, line: int | None) -> None:
    """The error must carry and print the file, and the line where one applies."""
    err = exc.value
    assert err.path == str(path)
    assert err.line == line
    assert str(path) in str(err)
    if line is not None:
        assert f"{path}:{line}:" in str(err)


# --- line reading ----------------------------------------------------------------------------


def test_crlf_and_trailing_whitespace(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "  one \r\ntwo\t\nthree")
    assert read_text_lines(path) == ["  one ", "two\t", "three"]


def test_unicode_line_separator_does_not_split(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "a\u2028b\nc\n")
    assert read_text_lines(path) == ["a\u2028b", "c"]


def test_bom_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b'\xef\xbb\xbf{"source": "x", "target": "y"}\n')
    assert read_jsonl(path)[0].source == "x"


def test_invalid_utf8_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b'{"source": "a", "target": "b"}\n{"source": "\xff"}\n')
    with pytest.raises(DataError, match="invalid UTF-8") as exc:
        read_jsonl(path)
    assert_data_error(exc, path, 2)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match="does not exist") as exc:
        read_jsonl(path)
    assert_data_error(exc, path, None)


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_reads_extras_and_skips_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        '{"source": "a b", "target": "c", "references": ["c", "C"], "id": 7}\n'
        "\n"
        "   \n"
        '{"target": "f", "source": " e "}\n',
    )
    examples = read_jsonl(path)
    assert examples == [
        Example("a b", "c", {"references": ["c", "C"], "id": 7}, str(path), 1),
        Example(" e ", "f", {}, str(path), 4),
    ]


def test_jsonl_custom_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"en": "hi", "de": "hallo", "source": "x"}\n')
    [example] = read_jsonl(path, source_field="en", target_field="de")
    assert (example.source, example.target, example.extra) == ("hi", "hallo", {"source": "x"})


def test_jsonl_target_optional_when_not_required(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"source": "a"}\n{"source": "b", "target": null}\n')
    assert [e.target for e in read_jsonl(path, require_target=False)] == [None, None]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"source": "a", "target": }', "invalid JSON"),
        ('["a", "b"]', "expected a JSON object, got list"),
        ('"just a string"', "expected a JSON object, got str"),
        ('{"target": "b"}', "missing field 'source'"),
        ('{"source": "a"}', "missing field 'target'"),
        ('{"source": "a", "target": null}', "null field 'target'"),
        ('{"source": 3, "target": "b"}', "field 'source' must be a string, got int"),
        ('{"source": "a", "target": ["b"]}', "field 'target' must be a string, got list"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "d.jsonl", '{"source": "ok", "target": "ok"}\n\n' + line + "\n")
    with pytest.raises(DataError, match="^" + re.escape(f"{path}:3: {message}")) as exc:
        read_jsonl(path)
    assert_data_error(exc, path, 3)


def test_jsonl_array_file_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "d.json", '[{"source": "a", "target": "b"},\n')
    with pytest.raises(DataError, match="not a JSON array") as exc:
        read_jsonl(path)
    assert_data_error(exc, path, 1)


@pytest.mark.parametrize("content", ["", "\n", "  \n\n\t\n"])
def test_empty_jsonl(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "d.jsonl", content)
    with pytest.raises(DataError, match="empty") as exc:
        read_jsonl(path)
    assert_data_error(exc, path, None)


# --- TSV -------------------------------------------------------------------------------------


def test_tsv_reads_pairs_keeping_spaces(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "a b\tc d\r\n\n x\t\n")
    assert read_tsv(path) == [
        Example("a b", "c d", {}, str(path), 1),
        Example(" x", "", {}, str(path), 3),
    ]


@pytest.mark.parametrize(("line", "count"), [("only source", 1), ("a\tb\tc", 3)])
def test_tsv_wrong_field_count(tmp_path: Path, line: str, count: int) -> None:
    path = write(tmp_path / "d.tsv", f"a\tb\n{line}\n")
    with pytest.raises(DataError, match=f"exactly 2 tab-separated fields .*got {count}") as exc:
        read_tsv(path)
    assert_data_error(exc, path, 2)


def test_tsv_sources_only_when_target_not_required(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "a\tb\nc\n")
    assert [e.target for e in read_tsv(path, require_target=False)] == ["b", None]
    bad = write(tmp_path / "e.tsv", "a\tb\tc\n")
    with pytest.raises(DataError, match=r"1 or 2 tab-separated fields.*got 3") as exc:
        read_tsv(bad, require_target=False)
    assert_data_error(exc, bad, 1)


def test_empty_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "\n\n")
    with pytest.raises(DataError, match="empty") as exc:
        read_tsv(path)
    assert_data_error(exc, path, None)


# --- parallel text ---------------------------------------------------------------------------


def test_parallel_reads_aligned_lines(tmp_path: Path) -> None:
    src = write(tmp_path / "train.src", "hello world\n\nbye \n")
    tgt = write(tmp_path / "train.tgt", "hallo welt\r\n\r\ntschüss\n")
    assert read_parallel(src, tgt) == [
        Example("hello world", "hallo welt", {}, str(src), 1),
        Example("bye ", "tschüss", {}, str(src), 3),
    ]


def test_parallel_count_mismatch_names_both_counts(tmp_path: Path) -> None:
    src = write(tmp_path / "train.src", "a\nb\nc\n")
    tgt = write(tmp_path / "train.tgt", "x\ny\n")
    with pytest.raises(DataError, match=r"3 lines.*has 2") as exc:
        read_parallel(src, tgt)
    assert_data_error(exc, tgt, None)
    assert str(src) in str(exc.value)


def test_parallel_one_sided_blank_line(tmp_path: Path) -> None:
    src = write(tmp_path / "train.src", "a\nb\n")
    tgt = write(tmp_path / "train.tgt", "x\n \n")
    with pytest.raises(DataError, match="blank") as exc:
        read_parallel(src, tgt)
    assert_data_error(exc, tgt, 2)
    assert str(src) in str(exc.value)


def test_parallel_invalid_utf8_in_target(tmp_path: Path) -> None:
    src = write(tmp_path / "train.src", "a\nb\n")
    tgt = write(tmp_path / "train.tgt", b"x\n\xc3\x28\n")
    with pytest.raises(DataError, match="UTF-8") as exc:
        read_parallel(src, tgt)
    assert_data_error(exc, tgt, 2)


def test_parallel_empty(tmp_path: Path) -> None:
    src = write(tmp_path / "train.src", "")
    tgt = write(tmp_path / "train.tgt", "")
    with pytest.raises(DataError, match="empty") as exc:
        read_parallel(src, tgt)
    assert_data_error(exc, src, None)


def test_parallel_missing_side(tmp_path: Path) -> None:
    src = write(tmp_path / "train.src", "a\n")
    with pytest.raises(DataError, match="does not exist") as exc:
        read_parallel(src, tmp_path / "train.tgt")
    assert_data_error(exc, tmp_path / "train.tgt", None)


# --- dispatch --------------------------------------------------------------------------------


def test_dispatch_by_extension(tmp_path: Path) -> None:
    jsonl = write(tmp_path / "d.jsonl", '{"source": "a", "target": "b"}\n')
    json_ = write(tmp_path / "d.json", '{"source": "a", "target": "b"}\n')
    tsv = write(tmp_path / "d.tsv", "a\tb\n")
    for path in (jsonl, json_, tsv):
        [example] = read_examples(path)
        assert (example.source, example.target, example.path) == ("a", "b", str(path))


def test_dispatch_parallel_by_prefix_or_src(tmp_path: Path) -> None:
    write(tmp_path / "train.src", "a\n")
    write(tmp_path / "train.tgt", "b\n")
    for path in (tmp_path / "train", tmp_path / "train.src"):
        [example] = read_examples(path)
        assert (example.source, example.target) == ("a", "b")


def test_dispatch_text_only_without_targets(tmp_path: Path) -> None:
    path = write(tmp_path / "in.txt", "a\n\n{not json\n")
    examples = read_examples(path, require_target=False)
    assert [(e.source, e.target, e.line) for e in examples] == [
        ("a", None, 1),
        ("", None, 2),
        ("{not json", None, 3),
    ]
    with pytest.raises(DataError, match="targets are required") as exc:
        read_examples(path)
    assert_data_error(exc, path, None)


def test_dispatch_src_without_tgt(tmp_path: Path) -> None:
    path = write(tmp_path / "test.src", "a\n")
    assert read_examples(path, require_target=False)[0].target is None
    with pytest.raises(DataError, match=r"no target file test\.tgt") as exc:
        read_examples(path)
    assert_data_error(exc, path, None)


def test_dispatch_missing_and_unknown(tmp_path: Path) -> None:
    missing = tmp_path / "train"
    with pytest.raises(DataError, match="does not exist") as exc:
        read_examples(missing)
    assert_data_error(exc, missing, None)
    missing_txt = tmp_path / "in.txt"
    with pytest.raises(DataError, match="does not exist"):
        read_examples(missing_txt)
    unknown = write(tmp_path / "d.csv", "a,b\n")
    with pytest.raises(DataError, match=r"unrecognised data format '\.csv'") as exc:
        read_examples(unknown)
    assert_data_error(exc, unknown, None)


# --- generation inputs -----------------------------------------------------------------------


def test_read_inputs_jsonl() -> None:
    stdin = io.StringIO('{"source": "a", "id": 1}\n\n{"source": "b", "target": "B"}\n')
    examples, fmt = read_inputs(stdin, "<stdin>")
    assert fmt == "jsonl"
    assert examples == [
        Example("a", None, {"id": 1}, "<stdin>", 1),
        Example("b", "B", {}, "<stdin>", 3),
    ]


def test_read_inputs_text_with_brace_lines() -> None:
    lines = ["{braces} are fine\n", '{"source": "looks like json"}\r\n', "\n", "plain\n"]
    examples, fmt = read_inputs(lines, "<stdin>")
    assert fmt == "text"
    assert [e.source for e in examples] == [
        "{braces} are fine",
        '{"source": "looks like json"}',
        "",
        "plain",
    ]
    assert all(e.target is None for e in examples)
    assert [e.line for e in examples] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "line",
    ['{"text": "no source"}', '{"source": 5}', '{"source": "a", "target": 1}', "[1, 2]", "{"],
)
def test_read_inputs_falls_back_to_text(line: str) -> None:
    examples, fmt = read_inputs(['{"source": "a"}', line], "in")
    assert fmt == "text"
    assert examples[1].source == line


def test_read_inputs_empty() -> None:
    with pytest.raises(DataError, match="empty") as exc:
        read_inputs(["\n", "  \n"], "<stdin>")
    assert exc.value.path == "<stdin>"


def test_read_input_file(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", '{"source": "a", "references": ["x", "y"]}\n')
    examples, fmt = read_input_file(path)
    assert fmt == "jsonl"
    assert examples[0].extra == {"references": ["x", "y"]}
    bad = write(tmp_path / "bad.txt", b"ok\n\xfe\n")
    with pytest.raises(DataError, match="UTF-8") as exc:
        read_input_file(bad)
    assert_data_error(exc, bad, 2)
