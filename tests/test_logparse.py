"""Log parsing: formats, templates, the template cache, the parsers, the CSVs and the
``seqweave logparse`` command end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqweave.baselines.drain import DrainParser
from seqweave.cli import main
from seqweave.errors import ConfigError, DataError
from seqweave.logparse import TemplateCache, event_id, log_format, parameters, read_log
from seqweave.logparse.output import structured_rows, write_csvs
from seqweave.logparse.parsers import CopyParser, Seq2SeqParser

FORMAT = "<Date> <Time> <Level>: <Content>"


def test_log_format_reads_header_fields_and_content() -> None:
    fmt = log_format(FORMAT)
    assert fmt.headers == ("Date", "Time", "Level", "Content")
    # padded columns: a run of spaces in the format matches any run of whitespace
    line = "2024-01-02  10:00:01 WARN: disk  full: sda1"
    assert fmt.fields(line) == {
        "Date": "2024-01-02",
        "Time": "10:00:01",
        "Level": "WARN",
        "Content": "disk  full: sda1",
    }
    assert fmt.fields("no header here") is None
    # regex characters in the literal text are literal
    assert log_format("[<Level>] (<Content>)").fields("[E] (x.y)") == {
        "Level": "E",
        "Content": "x.y",
    }
    assert log_format("[<Level>] (<Content>)").fields("xEx (x.y)") is None


@pytest.mark.parametrize("bad", ["<Date> <Time>", "<Content> <Content>", "<a b>: <Content>"])
def test_log_format_refuses_what_it_cannot_parse(bad: str) -> None:
    with pytest.raises(ConfigError):
        log_format(bad)


def test_malformed_lines_are_kept_with_their_line_numbers(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"d1 t1 INFO: open 1\ngarbage\nd2 t2 INFO: open 2\r\nbad \xff\nd3 t3 E: x\n")
    lines = list(read_log(log, log_format(FORMAT)))
    assert [line.line_id for line in lines] == [1, 2, 3, 4, 5]
    assert [line.malformed for line in lines] == [False, True, False, True, False]
    assert lines[1].raw == "garbage" and "log format" in lines[1].problem
    assert "UTF-8" in lines[3].problem
    assert lines[2].content == "open 2"  # \r\n stripped
    # without a format every line is its own message
    assert [line.content for line in read_log(log) if not line.malformed][:2] == [
        "d1 t1 INFO: open 1",
        "garbage",
    ]


def test_parameters_by_words_and_by_regex() -> None:
    assert parameters("open <*> for <*>", "open f.txt for me") == ["f.txt", "me"]
    assert parameters("blk_<*> size <*>", "blk_7 size 12") == ["7", "12"]
    assert parameters("user <*> logged in", "user Ann Lee logged in") == ["Ann Lee"]
    assert parameters("open <*>", "close 5") is None
    assert parameters("a  <*>", "a b") is None  # spacing is part of the template
    assert event_id("open <*>") == event_id("open <*>") != event_id("close <*>")


def test_cache_prefers_the_most_specific_template_and_refuses_empty_ones() -> None:
    cache = TemplateCache(["open <*>", "open <*> now", "<*> <*>"])
    assert "<*> <*>" not in cache  # fixes no word: it would swallow everything
    assert cache.match("open 5 now") == "open <*> now"
    assert cache.match("open 5") == "open <*>"
    assert cache.match("close 5") is None
    assert (cache.hits, cache.misses) == (2, 1)
    assert not cache.add("shut <*>", "close 5")  # does not fit its own message
    assert cache.add("<*> closed", "door closed") and cache.match("lid closed") == "<*> closed"


def test_cache_round_trip(tmp_path: Path) -> None:
    cache = TemplateCache()
    for template, message in [("open <*>", "open 1"), ("open <*>", "open 2"), ("x <*>", "x 1")]:
        cache.add(template, message)
    loaded = TemplateCache.load(cache.save(tmp_path / "cache.json"))
    assert loaded.occurrences == cache.occurrences == {"open <*>": 2, "x <*>": 1}
    assert loaded.match("x 9") == "x <*>"
    (tmp_path / "bad.json").write_text('{"version": 1, "templates": [{"occurrences": 1}]}')
    for bad in ("bad.json", "missing.json"):
        with pytest.raises(DataError):
            TemplateCache.load(tmp_path / bad)


class MaskingModel:
    """A stand-in for a trained model: a word with a digit becomes <*>; counts inputs."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def generate(self, texts, **overrides) -> list[str]:
        self.seen += texts
        return [
            " ".join("<*>" if any(c.isdigit() for c in w) else w for w in t.split()) for t in texts
        ]


EVENTS = ["open <*> now", "close <*>", "user <*> moved <*> to <*>", "idle"]


def message_of(event: int, numbers: list[int]) -> str:
    words = EVENTS[event].split()
    values = iter(numbers)
    return " ".join(f"v{next(values, 0)}" if w == "<*>" else w for w in words)


@given(
    st.lists(st.tuples(st.integers(0, 3), st.lists(st.integers(0, 9), max_size=3)), max_size=40),
    st.integers(1, 8),
)
def test_the_cache_changes_no_template_and_spares_the_model(events, batch_size) -> None:
    messages = [message_of(event, numbers) for event, numbers in events]
    reference = Seq2SeqParser(MaskingModel(), cache=None).parse(messages)
    model = MaskingModel()
    cached = Seq2SeqParser(model, TemplateCache(), batch_size=batch_size)
    assert cached.parse(messages) == reference == MaskingModel().generate(messages)
    assert cached.decoded == len(model.seen)
    if batch_size == 1:  # each event reaches the model once
        assert len(model.seen) == len({event for event, _ in events})


def test_structured_and_templates_csvs(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("d1 t1 INFO: open 1\ngarbage\nd2 t2 INFO: open 2\n")
    fmt = log_format(FORMAT)
    lines = list(read_log(log, fmt))
    rows = structured_rows(lines, {1: "open <*>", 3: "open <*>"}, fmt.headers)
    structured, summary = write_csvs(tmp_path / "out", "app.log", rows, fmt.headers)
    with structured.open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == [
        "LineId", "Date", "Time", "Level", "Content", "EventId", "EventTemplate", "ParameterList"
    ]  # fmt: skip
    assert [r["LineId"] for r in table] == ["1", "2", "3"]
    assert table[0]["ParameterList"] == "['1']" and table[0]["EventId"] == event_id("open <*>")
    assert table[1] | {} == {
        "LineId": "2", "Date": "", "Time": "", "Level": "", "Content": "garbage",
        "EventId": "malformed", "EventTemplate": "", "ParameterList": "[]",
    }  # fmt: skip
    with summary.open() as handle:
        assert list(csv.reader(handle)) == [
            ["EventId", "EventTemplate", "Occurrences"],
            [event_id("open <*>"), "open <*>", "2"],
        ]


def test_drain_groups_messages_of_one_event() -> None:
    messages = [
        "Receiving block blk_1 src: /10.0.0.1:50010 dest: /10.0.0.2:50010",
        "Receiving block blk_-22 src: /10.0.0.3:42 dest: /10.0.0.4:50010",
        "PacketResponder 1 for block blk_5 terminating",
        "PacketResponder 2 for block blk_6 terminating",
    ]
    templates = DrainParser("HDFS").parse(messages)
    assert templates[0] == templates[1] == "Receiving block <*> src: /<*> dest: /<*>"
    assert templates[2] == templates[3] == "PacketResponder <*> for block <*> terminating"
    assert CopyParser().parse(messages) == messages


def run_logparse(*args: str, capsys) -> tuple[int, str]:
    code = main(["logparse", *args])
    return code, capsys.readouterr().err


def test_logparse_command_end_to_end(trained_dirs, tmp_path: Path, capsys) -> None:
    import seqweave

    model_dir = trained_dirs["transformer"]  # the edit task: letters a..i, copy mostly
    contents = ["abcabc", "bad", "abcabc", "gaffe", "dig", "bad", "chief"]
    lines = [f"d{i} t{i} INFO: {c}" for i, c in enumerate(contents)]
    lines.insert(2, "a malformed line")
    log = tmp_path / "app.log"
    log.write_text("\n".join(lines) + "\n")
    cache = tmp_path / "cache.json"
    common = ["--input", str(log), "--format", FORMAT, "--cache", str(cache)]
    code, err = run_logparse(
        "--model", str(model_dir), *common, "--output", str(tmp_path / "a"), capsys=capsys
    )
    assert code == 0 and f"{log}:3: skipped" in err
    with (tmp_path / "a" / "app.log_structured.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(lines)  # line count in == line count out
    greedy = seqweave.load(model_dir).generate(contents, decoder="greedy")
    parsed = [r["EventTemplate"] for r in table if r["EventId"] != "malformed"]
    assert parsed == greedy  # IAD through the cache == greedy on every message
    saved = json.loads(cache.read_text())
    assert {row["template"] for row in saved["templates"]} <= set(greedy)
    # a second run with the saved cache decodes nothing it cached
    code, err = run_logparse(
        "--model", str(model_dir), *common, "--output", str(tmp_path / "b"), capsys=capsys
    )
    decoded_again = int(err.split("the model decoded ")[1].split()[0])
    # a template is cached only when it fits its own message: the edit task's outputs
    # that are no copy of their input (gaffe -> gaffe with gg, dig -> djg, chief -> cjef)
    uncachable = {c for c, g in zip(contents, greedy, strict=True) if parameters(g, c) is None}
    assert code == 0 and decoded_again == len(uncachable) > 0


def test_logparse_command_runs_drain_and_refuses_bad_input(tmp_path: Path, capsys) -> None:
    log = tmp_path / "app.log"
    log.write_text("open 1\nopen 2\nclose 3\n")
    code, err = run_logparse(
        "--baseline", "drain", "--input", str(log), "--output", str(tmp_path), capsys=capsys
    )
    assert code == 0 and "3 lines (0 malformed)" in err
    with (tmp_path / "app.log_templates.csv").open() as handle:
        assert sorted(r["EventTemplate"] for r in csv.DictReader(handle)) == [
            "close <*>",
            "open <*>",
        ]
    code, err = run_logparse(
        "--baseline", "copy", "--input", str(log), "--format", "<Level>", "--output", str(tmp_path),
        capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "Content" in err


def test_concept_base_names_instances_seen_named_elsewhere() -> None:
    from seqweave.logparse.knowledge import ConceptBase

    base = ConceptBase(min_count=2, min_share=0.9)
    for message in ("Receiving block blk_1 size 0", "Deleting block blk_1 size 0"):
        base.add(f"{message.split()[0]} block <*block*> size <*size*>", message)
    base.add("uid = <*uid*>", "uid = 0")  # 0: a size twice, a uid once: ambiguous
    assert base.name("blk_1") == "block" and base.name("0") is None and base.name("x") is None
    assert base.fill("Verified <*> with <*>", "Verified blk_1 with 0") == (
        "Verified <*block*> with <*>"
    )
    assert base.fill("open <*>", "close 5") == "open <*>"  # does not fit: unchanged


def test_whole_words_widens_slots_to_the_words_they_touch() -> None:
    from seqweave.logparse.templates import whole_words

    message = "PacketResponder 1 for block blk_38865 terminating"
    # a subword model copied "blk_38" and wrote its slot with a space of its own
    assert whole_words("PacketResponder <*> for block blk_38 <*> terminating", message) == (
        "PacketResponder <*> for block <*> terminating"
    )
    assert whole_words("x <*>:<*> y", "x /10.0.0.1:80 y") == "x <*> y"
    assert whole_words("a  b <*>", "a  b  c d") == "a  b  <*> <*>"  # the message's spacing
    assert whole_words("open <*>", "close 1") == "open <*>"  # no match: as it was
    model = MaskingModel()
    parser = Seq2SeqParser(model, TemplateCache(), batch_size=1, whole_words=True)
    assert parser.parse(["n=5 done", "n=7 done"]) == ["<*> done", "<*> done"]
    assert model.seen == ["n=5 done"]  # the widened template is the one cached


def lazy_regex_parameters(template: str, message: str) -> list[str] | None:
    """The reference: one lazy group per slot, literal text escaped."""
    import re

    pieces = [re.escape(p) for p in re.split(r"<\*>", template)]
    found = re.fullmatch("(.*?)".join(pieces), message, flags=re.DOTALL)
    return list(found.groups()) if found else None


@given(
    st.lists(st.sampled_from(["a", "b", "ab", " ", ":", "<*>"]), max_size=8),
    st.text(alphabet="ab :", max_size=12),
)
def test_slot_matching_equals_the_lazy_regex(parts: list[str], message: str) -> None:
    template = "".join(parts)
    assert parameters(template, message) == lazy_regex_parameters(template, message)
    # a message made from the template always matches it
    filled = template.replace("<*>", "b a")
    assert parameters(template, filled) == lazy_regex_parameters(template, filled) is not None
