"""CSV event logs -> traces -> prefix rows, and back; malformed events reported, never lost."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from seqweave.data.formats.event_log import (
    Trace,
    prefix_rows,
    read_csv_event_log,
    temporal_split,
    traces_from_rows,
    write_jsonl,
)
from seqweave.errors import DataError

HELPDESK = Path("../shared/data/helpdesk/train.jsonl")

LOG = """case,act,time
b,X,2020-01-02 10:00:00
a,A,2020-01-01 09:00:00
a,C,2020-01-01 11:00:00
a,B,2020-01-01 10:00:00
b,Y,2020-01-02 10:00:00
c,Check out,2020-01-03T08:00:00+02:00
c,A,2020-01-03 07:00:00
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "log.csv"
    path.write_text(text)
    return path


def test_events_are_grouped_by_case_and_ordered_by_time(tmp_path: Path) -> None:
    traces, report = read_csv_event_log(
        write(tmp_path, LOG), case="case", activity="act", timestamp="time"
    )
    assert [t.case_id for t in traces] == ["b", "a", "c"]  # first appearance in the file
    assert [t.activities for t in traces] == [
        ("X", "Y"),  # same time: file order
        ("A", "B", "C"),
        ("Check_out", "A"),  # +02:00 is 06:00 UTC, before 07:00
    ]
    assert traces[1].start == datetime(2020, 1, 1, 9)
    assert report.events == 7 and report.skipped == 0 and not report.problems


def test_temporal_split_by_case_start() -> None:
    def trace(name: str, day: int) -> Trace:
        return Trace(name, ("A",), datetime(2020, 1, day))

    traces = [trace("late", 9), trace("early", 1), trace("tie1", 5), trace("tie2", 5)]
    train, test = temporal_split(traces, 2 / 3)  # round(8 / 3) = 3 cases train
    assert [t.case_id for t in train] == ["early", "tie1", "tie2"]
    assert [t.case_id for t in test] == ["late"]
    with pytest.raises(ValueError):
        temporal_split(traces, 1.5)


def test_prefix_rows_have_the_prepared_logs_format(tmp_path: Path) -> None:
    traces, _ = read_csv_event_log(
        write(tmp_path, LOG), case="case", activity="act", timestamp="time"
    )
    rows = list(prefix_rows(traces))
    assert len(rows) == 1 + 2 + 1
    assert rows[1] == {
        "source": "A",
        "target": "B C",
        "next": "B",
        "case_id": "a",
        "prefix_len": 1,
        "trace_len": 3,
        "case_start": "2020-01-01 09:00:00",
        "last_timestamp": "2020-01-01 09:00:00",
        "next_timestamp": "2020-01-01 10:00:00",
        "case_end": "2020-01-01 11:00:00",
    }
    assert set(rows[0]) == set(json.loads(HELPDESK.open().readline()))
    out = tmp_path / "rows.jsonl"
    assert write_jsonl(rows, out) == 4
    back = traces_from_rows(out)
    assert [(t.case_id, t.activities, t.start) for t in back] == [
        (t.case_id, t.activities, t.start) for t in traces
    ]


def test_traces_rebuilt_from_helpdesk_give_back_its_rows() -> None:
    """Rebuilding traces from the prepared rows and cutting them again reproduces every
    row's prefix, suffix and lengths (the timestamps between start and end are not in
    the rows)."""
    rows = [json.loads(line) for line in HELPDESK.read_text().splitlines()]
    traces = traces_from_rows(HELPDESK)
    assert len(traces) == 2536  # as its README says
    again = [
        (" ".join(t.activities[:k]), " ".join(t.activities[k:]), t.case_id, k)
        for t in traces
        for k in range(1, len(t.activities))
    ]
    fields = ("source", "target", "case_id", "prefix_len")
    assert sorted(again) == sorted(tuple(row[f] for f in fields) for row in rows)


BAD = """CaseID,ActivityID,CompleteTimestamp
1,A,2020-01-01 09:00:00
,B,2020-01-01 10:00:00
1,C,yesterday
1,,2020-01-01 11:00:00
2,A,2020-01-01 12:00:00
2,B
"""


def test_malformed_events_are_counted_and_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    traces, report = read_csv_event_log(path)
    assert [t.activities for t in traces] == [("A",), ("A",)]
    assert report.events == 2
    assert report.malformed == {
        "missing case id": 1,
        "unparseable timestamp": 2,
        "missing activity": 1,
    }
    assert [p.split(": ")[0] for p in report.problems] == [
        f"{path}:{line}" for line in (3, 4, 5, 7)
    ]
    assert "'yesterday' (expected ISO 8601)" in report.problems[1]


def test_strict_mode_raises_at_the_first_malformed_event(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(DataError, match=r"log\.csv:3: missing case id") as caught:
        read_csv_event_log(path, strict=True)
    assert caught.value.line == 3


def test_documented_time_format_and_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "id;what;when\n7;A;02/01/2020 10:00\n7;B;01/01/2020 10:00\n")
    traces, _ = read_csv_event_log(
        path,
        case="id",
        activity="what",
        timestamp="when",
        time_format="%d/%m/%Y %H:%M",
        delimiter=";",
    )
    assert traces[0].activities == ("B", "A")
    with pytest.raises(DataError, match=r":1: no column 'CaseID'"):
        read_csv_event_log(path, activity="what", timestamp="when", delimiter=";")


def test_a_bad_prefix_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"source": "A", "target": "B", "prefix_len": 1, "case_id": "1", '
        '"case_start": "2020-01-01 00:00:00"}\n{"source": "A", "prefix_len": 1}\n'
    )
    with pytest.raises(DataError, match=r"rows\.jsonl:2: not a prefix row"):
        traces_from_rows(path)


XES = """<?xml version="1.0" encoding="UTF-8" ?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <trace>
    <string key="concept:name" value="c1"/>
    <event><string key="concept:name" value="A"/>
      <date key="time:timestamp" value="2020-01-01T10:00:00.000+01:00"/></event>
    <event><string key="concept:name" value="Check out"/>
      <date key="time:timestamp" value="2020-01-01T08:30:00.000+00:00"/></event>
    <event><string key="concept:name" value="C"/>
      <date key="time:timestamp" value="yesterday"/></event>
    <event><date key="time:timestamp" value="2020-01-01T12:00:00.000+00:00"/></event>
  </trace>
  <trace>
    <event><string key="concept:name" value="A"/>
      <date key="time:timestamp" value="2020-01-02T10:00:00.000+00:00"/></event>
  </trace>
  <trace>
    <string key="concept:name" value="c2"/>
    <event><string key="concept:name" value="B"/>
      <date key="time:timestamp" value="2020-01-03T10:00:00.000+00:00"/></event>
  </trace>
</log>
"""


def test_xes_logs_read_through_pm4py(tmp_path: Path) -> None:
    pytest.importorskip("pm4py")
    from seqweave.data.formats.xes import read_xes_event_log

    path = tmp_path / "log.xes"
    path.write_text(XES)
    traces, report = read_xes_event_log(path)
    assert [(t.case_id, t.activities) for t in traces] == [
        ("c1", ("Check_out", "A")),  # 10:00+01:00 is 09:00 UTC, after 08:30
        ("c2", ("B",)),
    ]
    assert traces[0].start == datetime(2020, 1, 1, 8, 30)
    assert report.events == 3
    assert report.malformed == {"missing timestamp": 1, "missing activity": 1, "missing case id": 1}
    assert [p.split(": ")[1] for p in report.problems] == [
        "trace 1, event 3",
        "trace 1, event 4",
        "trace 2, event 1",
    ]
    with pytest.raises(DataError, match="trace 1, event 3: missing timestamp"):
        read_xes_event_log(path, strict=True)
    (tmp_path / "bad.xes").write_text("<log><trace>")
    with pytest.raises(DataError, match="not a readable XES file"):
        read_xes_event_log(tmp_path / "bad.xes")
