"""Fuzzing the data readers: random bytes and random JSON, each reader against a reference.

Whatever a file holds, a reader either returns one example per usable line (none dropped,
each citing its line) or raises ``DataError`` naming the file and, where a line is at fault,
the first such line; no other exception escapes. The references below compute the expected
outcome from the lines' text, independently of how the readers split and decode bytes.
Regression tests for the inputs that once ended in a traceback follow.
"""

from __future__ import annotations

import io
import json
import os
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqweave.config import load_config
from seqweave.data.readers import (
    Example,
    read_examples,
    read_input_file,
    read_input_stream,
    read_inputs,
    read_jsonl,
    read_parallel,
    read_text,
    read_text_lines,
    read_tsv,
)
from seqweave.errors import ConfigError, DataError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text of one line: any character but the terminators and a byte-order mark (which the
# readers drop from the first line, so a reference would have to as well)
LINE_CHARS = st.characters(exclude_characters="\n\r\ufeff", exclude_categories=("Cs",))
# the same with lone surrogates, which no UTF-8 file can hold (hypothesis leaves them out
# unless asked)
ANY_CHARS = LINE_CHARS | st.characters(categories=["Cs"])


def any_text(max_size: int):
    """Text that may hold lone surrogates (``st.text`` would filter them out)."""
    return st.lists(ANY_CHARS, max_size=max_size).map("".join)


line_text = st.text(LINE_CHARS, max_size=12)
blank = st.sampled_from(["", " ", "\t ", "\u3000"])
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | any_text(6)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text(4), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def json_record(draw) -> dict:
    """Mostly a good record; sometimes one with a missing, wrong or unencodable field."""
    record = draw(st.dictionaries(any_text(4), json_value, max_size=2))
    for field in ("source", "target"):
        if draw(st.integers(0, 5)):  # usually a string, sometimes anything or nothing
            record[field] = draw(any_text(8))
        elif draw(st.booleans()):
            record[field] = draw(json_value)
    return record


jsonl_line = (
    json_record().map(json.dumps)
    | json_record().map(lambda r: json.dumps(r, ensure_ascii=False, allow_nan=True))
    | json_value.map(json.dumps)
    | blank
    | line_text
)


def encodable(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_lines(path: Path, lines: list[str]) -> Path:
    """One line per item; "surrogatepass" turns a lone surrogate into bytes that are not
    UTF-8, as a file written by a careless tool would hold."""
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    return path


def outcome(read, *args):
    """What a reader does: ("ok", examples) or ("error", path, line); anything else fails."""
    try:
        return ("ok", read(*args))
    except DataError as error:
        assert error.path is not None and str(error).startswith(error.path), error
        return ("error", error.path, error.line)


def is_blank(line: str) -> bool:
    return not line.strip()


def expected_jsonl(path: str, lines: list[str]):
    """Bytes that are not UTF-8 first (the file is decoded before it is parsed), then the
    first line that is not a JSON object with string source and target and valid text."""
    bad_text = [n for n, line in enumerate(lines, start=1) if not encodable(line)]
    if bad_text:
        return ("error", path, bad_text[0])
    if all(is_blank(line) for line in lines):
        return ("error", path, None)
    examples = []
    for number, line in enumerate(lines, start=1):
        if is_blank(line):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            return ("error", path, number)
        fine = isinstance(record, dict) and encodable(record)
        if not fine or not all(isinstance(record.get(f), str) for f in ("source", "target")):
            return ("error", path, number)
        extra = {k: v for k, v in record.items() if k not in ("source", "target")}
        examples.append(Example(record["source"], record["target"], extra, path, number))
    return ("ok", examples)


@FUZZ
@given(lines=st.lists(jsonl_line, min_size=1, max_size=6))
def test_jsonl_reads_every_record_or_names_the_first_bad_line(lines):
    with tempfile.TemporaryDirectory() as directory:
        path = write_lines(Path(directory) / "data.jsonl", lines)
        assert outcome(read_jsonl, path) == expected_jsonl(str(path), lines)
        assert outcome(read_examples, path) == expected_jsonl(str(path), lines)


def expected_tsv(path: str, lines: list[str], require_target: bool):
    """As JSONL, with two tab-separated fields (or one, without ``require_target``)."""
    bad_text = [n for n, line in enumerate(lines, start=1) if not encodable(line)]
    if bad_text:
        return ("error", path, bad_text[0])
    if all(is_blank(line) for line in lines):
        return ("error", path, None)
    examples = []
    for number, line in enumerate(lines, start=1):
        if is_blank(line):
            continue
        fields = line.split("\t")
        if len(fields) != 2 and (require_target or len(fields) != 1):
            return ("error", path, number)
        target = fields[1] if len(fields) == 2 else None
        examples.append(Example(fields[0], target, {}, path, number))
    return ("ok", examples)


tsv_line = (
    st.tuples(line_text, line_text).map("\t".join)
    | any_text(10)
    | blank
    | st.lists(line_text, min_size=3, max_size=4).map("\t".join)
)


@FUZZ
@given(lines=st.lists(tsv_line, min_size=1, max_size=6), require_target=st.booleans())
def test_tsv_reads_every_pair_or_names_the_first_bad_line(lines, require_target):
    with tempfile.TemporaryDirectory() as directory:
        path = write_lines(Path(directory) / "data.tsv", lines)
        expected = expected_tsv(str(path), lines, require_target)
        assert outcome(read_tsv, path, require_target) == expected


def expected_parallel(src: str, tgt: str, src_lines: list[str], tgt_lines: list[str]):
    if len(src_lines) != len(tgt_lines):
        return ("error", tgt, None)
    if all(is_blank(line) for line in src_lines):
        return ("error", src, None)
    examples = []
    for number, (source, target) in enumerate(zip(src_lines, tgt_lines, strict=True), start=1):
        if is_blank(source) and is_blank(target):
            continue
        if is_blank(source) or is_blank(target):
            return ("error", src if is_blank(source) else tgt, number)
        examples.append(Example(source, target, {}, src, number))
    return ("ok", examples)


@FUZZ
@given(
    pairs=st.lists(st.tuples(line_text | blank, line_text | blank), min_size=1, max_size=6),
    extra=st.lists(line_text, max_size=1),
)
def test_parallel_text_pairs_every_line_or_names_the_misaligned_one(pairs, extra):
    src_lines = [s for s, _ in pairs]
    tgt_lines = [t for _, t in pairs] + extra
    with tempfile.TemporaryDirectory() as directory:
        src = write_lines(Path(directory) / "d.src", src_lines)
        tgt = write_lines(Path(directory) / "d.tgt", tgt_lines)
        expected = expected_parallel(str(src), str(tgt), src_lines, tgt_lines)
        assert outcome(read_parallel, src, tgt) == expected
        assert outcome(read_examples, Path(directory) / "d") == expected


def expected_lines(path: str, data: bytes):
    """Lines by decoding the whole file at once; a bad byte's line is counted from its offset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return ("error", path, data[: error.start].count(b"\n") + 1)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return ("ok", lines)


random_bytes = st.binary(max_size=60) | st.lists(
    st.sampled_from([b"\n", b"\r\n", b"\t", b"\xff", b"\xed\xa0\x80", b"\xc3", b"{", b"}"])
    | st.binary(max_size=4)
    | line_text.map(str.encode),
    max_size=12,
).map(b"".join)


@FUZZ
@given(data=random_bytes)
def test_any_bytes_are_lines_or_an_error_at_the_first_bad_byte(data):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.txt"
        path.write_bytes(data)
        assert outcome(read_text_lines, path) == expected_lines(str(path), data)
        stream = io.TextIOWrapper(io.BytesIO(data))  # like sys.stdin: text over a byte buffer
        stream_outcome = outcome(read_input_stream, stream, str(path))
        assert stream_outcome == outcome(read_input_file, path)


@FUZZ
@given(data=random_bytes, suffix=st.sampled_from([".jsonl", ".tsv", ".txt"]))
def test_every_reader_on_any_bytes_keeps_every_row_or_raises_data_error(data, suffix):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"data{suffix}"
        path.write_bytes(data)
        decoded = expected_lines(str(path), data)
        for read in (read_examples, read_text, read_input_file):
            args = (path, False) if read is read_examples else (path,)
            result = outcome(read, *args)
            if result[0] == "error":
                assert result[1] == str(path)
                assert result[2] is None or 1 <= result[2] <= data.count(b"\n") + 1
                continue
            assert decoded[0] == "ok"
            examples, lines = result[1], decoded[1]
            keeps_blank = read is read_text or (read is read_examples and suffix == ".txt")
            if read is read_input_file:
                examples, kind = examples
                keeps_blank = kind == "text"
            assert all(encodable([e.source, e.target, e.extra]) for e in examples)
            numbers = [e.line for e in examples]
            assert numbers == sorted(set(numbers)) and all(1 <= n <= len(lines) for n in numbers)
            kept = len(lines) if keeps_blank else sum(not is_blank(x) for x in lines)
            assert len(examples) == kept  # no row dropped


# -- regressions -------------------------------------------------------------------------------


def test_a_lone_surrogate_escape_in_jsonl_names_its_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"source": "a", "target": "b"}\n{"source": "\\ud800 x", "target": "y"}\n')
    with pytest.raises(DataError) as error:
        read_jsonl(path)
    assert (error.value.path, error.value.line) == (str(path), 2)
    assert "source" in str(error.value) and "U+D800" in str(error.value)


def test_a_surrogate_in_a_reference_list_is_refused_too(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"source": "a", "target": "b", "references": ["c", "\\udfff"]}\n')
    with pytest.raises(DataError, match=r"data.jsonl:1: field 'references\[1\]'"):
        read_jsonl(path)


@pytest.mark.parametrize(
    "line, reason",
    [('{"source": "a", "n": ' + "1" * 5000 + "}", "digits"), ("[" * 100_000, "nested")],
)
def test_json_that_python_refuses_beyond_syntax_is_a_data_error(tmp_path, line, reason):
    path = tmp_path / "data.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DataError, match=reason) as error:
        read_jsonl(path)
    assert error.value.line == 1
    assert read_inputs([line], "<stdin>")[1] == "text"  # not JSON Lines: read as text


def test_stdin_decoded_with_surrogateescape_names_the_line():
    lines = ["fine\n", b"bad \xff\n".decode("utf-8", "surrogateescape")]  # a POSIX locale
    with pytest.raises(DataError, match=r"<stdin>:2: lone surrogate U\+DCFF"):
        read_inputs(lines, "<stdin>")


def test_an_unreadable_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a regular file"):
        read_text_lines(tmp_path)


@pytest.mark.parametrize(
    "content, fragment",
    [(b'[train]\nout_dir = "\\ud800"\n', "Unicode scalar"), (b'x = "\xff"\n', "UTF-8")],
)
def test_config_files_with_bad_text_are_config_errors(tmp_path, content, fragment):
    """tomllib already refuses surrogate escapes and bad bytes; load_config names the file."""
    path = tmp_path / "run.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment) as error:
        load_config(path)
    assert str(path) in str(error.value)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from seqweave.checkpoint import save_model_dir
    from seqweave.tokenizers import alphabet_tokenizer
    from tests.conftest import tiny_model

    letters = string.ascii_lowercase[:6]
    network = tiny_model(vocab_size=4 + len(letters), max_positions=32)
    directory = tmp_path_factory.mktemp("cli") / "m"
    return save_model_dir(directory, network, alphabet_tokenizer(letters))


def test_eval_on_a_surrogate_line_is_a_file_line_error(model_dir, tmp_path, capsys):
    from seqweave.cli import main

    data = tmp_path / "test.jsonl"
    data.write_text('{"source": "ab", "target": "ab"}\n{"source": "\\ud800", "target": "a"}\n')
    status = main(["eval", "--model", str(model_dir), "--data", str(data), "--output", "o.json"])
    err = capsys.readouterr().err
    assert status == 2 and f"{data}:2: field 'source'" in err and "Traceback" not in err


def test_the_python_api_refuses_a_surrogate_with_a_data_error(model_dir):
    import seqweave

    model = seqweave.load(model_dir)
    with pytest.raises(DataError, match="input 1: lone surrogate U\\+D800"):
        model.generate(["ab", "\ud800"], max_new_tokens=2)


def test_generate_on_stdin_that_is_not_utf8_is_a_line_error(model_dir):
    """Through a real process: sys.stdin's decoder would raise (or, under a POSIX locale,
    smuggle in surrogates) before any seqweave code saw the line."""
    command = [sys.executable, "-m", "seqweave.cli", "generate", "--model", str(model_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, input=b"ab\nc\xffd\n", capture_output=True, timeout=120, env=env
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "<stdin>:2: invalid UTF-8" in stderr, stderr
    assert "Traceback" not in stderr
