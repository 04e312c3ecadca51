"""CSV event logs -> traces -> prefix/suffix rows, as process-mining users have them.

An event log is one row per event: a case id, an activity and a timestamp, in columns the
user names (``case``, ``activity``, ``timestamp``). Events are grouped into traces (one per
case, ordered by time), cases are split in time (the earlier cases train, the later ones
are kept back, as Tax et al. 2017 split them), and every trace of n >= 2 events gives n - 1
rows ``prefix (k events) -> suffix (the other n - k)`` in the row format of the prepared
logs (``source``, ``target``, ``next``, ``case_id``, ``prefix_len``, ``trace_len``,
``case_start``, ``last_timestamp``, ``next_timestamp``, ``case_end``).

Whitespace inside an activity name becomes ``_`` (rows separate activities by spaces).
A malformed event (no case id, no activity, a timestamp that does not parse) is never
dropped silently: it is counted by reason and reported with its file:line in a
``ReadReport``; ``strict=True`` raises ``DataError`` at the first one instead.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from seqweave.data.readers import read_text_lines
from seqweave.errors import DataError

ROW_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Trace:
    """One case: its activities in time order, and their timestamps.

    ``timestamps`` is empty for a trace rebuilt from prefix rows (which keep only the
    case's start and end), so ``start`` is kept on its own."""

    case_id: str
    activities: tuple[str, ...]
    start: datetime
    timestamps: tuple[datetime, ...] = ()


@dataclass
class ReadReport:
    """What reading a log found: events kept, and every malformed event by reason."""

    events: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "file:line: reason", in file order

    @property
    def skipped(self) -> int:
        return sum(self.malformed.values())

    def add(self, reason: str, where: str, detail: str) -> None:
        self.malformed[reason] = self.malformed.get(reason, 0) + 1
        self.problems.append(f"{where}: {reason}: {detail}")


def parse_timestamp(text: str, time_format: str | None = None) -> datetime:
    """``time_format`` (``datetime.strptime`` codes) if given, else ISO 8601
    (``datetime.fromisoformat``: ``2012-01-10 09:30:00``, ``2012-01-10T09:30:00+01:00``...).

    A timestamp with a UTC offset becomes naive UTC, so that logs mixing offsets still
    sort; naive timestamps are taken as they are. Raises ``ValueError`` when it does not
    parse."""
    text = text.strip()
    moment = datetime.strptime(text, time_format) if time_format else datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def read_csv_event_log(
    path: str | Path,
    case: str = "CaseID",
    activity: str = "ActivityID",
    timestamp: str = "CompleteTimestamp",
    time_format: str | None = None,
    delimiter: str = ",",
    strict: bool = False,
) -> tuple[list[Trace], ReadReport]:
    """Read a CSV event log into traces, in the order their cases first appear.

    Within a case, events are sorted by timestamp, stably (events at the same time keep
    file order). Raises ``DataError`` for a missing file, bad UTF-8 or a header that lacks
    a named column, and, with ``strict``, at the first malformed event."""
    name = str(path)
    text = "\n".join(read_text_lines(path))
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    missing = [c for c in (case, activity, timestamp) if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(
            f"no column {', '.join(map(repr, missing))} in the header "
            f"(columns: {', '.join(reader.fieldnames or [])})",
            path=name,
            line=1,
        )
    report = ReadReport()
    events: dict[str, list[tuple[datetime, str]]] = {}
    for row in reader:
        line = reader.line_num
        try:
            case_id, moment, label = _event(row, case, activity, timestamp, time_format)
        except _Malformed as bad:
            if strict:
                raise DataError(f"{bad.reason}: {bad.detail}", path=name, line=line) from None
            report.add(bad.reason, f"{name}:{line}", bad.detail)
            continue
        events.setdefault(case_id, []).append((moment, label))
        report.events += 1
    traces = [_trace(case_id, items) for case_id, items in events.items()]
    return traces, report


class _Malformed(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _event(
    row: dict, case: str, activity: str, timestamp: str, time_format: str | None
) -> tuple[str, datetime, str]:
    """``(case_id, time, activity)``; raises ``_Malformed`` with the reason."""
    case_id = (row.get(case) or "").strip()
    label = (row.get(activity) or "").strip()
    when = row.get(timestamp) or ""
    if not case_id:
        raise _Malformed("missing case id", f"column {case!r} is empty")
    if not label:
        raise _Malformed("missing activity", f"column {activity!r} is empty")
    label = "_".join(label.split())  # rows separate activities by spaces
    try:
        return case_id, parse_timestamp(when, time_format), label
    except ValueError:
        expected = f"format {time_format!r}" if time_format else "ISO 8601"
        raise _Malformed("unparseable timestamp", f"{when!r} (expected {expected})") from None


def _trace(case_id: str, items: list[tuple[datetime, str]]) -> Trace:
    ordered = sorted(items, key=lambda item: item[0])  # stable: ties keep file order
    return Trace(
        case_id=case_id,
        activities=tuple(label for _, label in ordered),
        start=ordered[0][0],
        timestamps=tuple(moment for moment, _ in ordered),
    )


def temporal_split(
    traces: Sequence[Trace], train_fraction: float = 2 / 3
) -> tuple[list[Trace], list[Trace]]:
    """The earliest ``round(train_fraction * cases)`` cases by start time, and the rest.

    Sorting is stable, so cases starting at the same time keep their given order (for a
    log just read: the order they first appear in the file)."""
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must lie in [0, 1], got {train_fraction}")
    ordered = sorted(traces, key=lambda trace: trace.start)
    cut = round(train_fraction * len(ordered))
    return ordered[:cut], ordered[cut:]


def prefix_rows(traces: Iterable[Trace]) -> Iterator[dict]:
    """One row per prefix k = 1 .. n-1 of every trace with n >= 2 events (a one-event case
    has no prefix with a next event, so it yields no row). Needs the traces' timestamps."""
    for trace in traces:
        n = len(trace.activities)
        if n >= 2 and len(trace.timestamps) != n:
            raise ValueError(f"case {trace.case_id}: prefix rows need every event's timestamp")
        for k in range(1, n):
            yield {
                "source": " ".join(trace.activities[:k]),
                "target": " ".join(trace.activities[k:]),
                "next": trace.activities[k],
                "case_id": trace.case_id,
                "prefix_len": k,
                "trace_len": n,
                "case_start": _stamp(trace.timestamps[0]),
                "last_timestamp": _stamp(trace.timestamps[k - 1]),
                "next_timestamp": _stamp(trace.timestamps[k]),
                "case_end": _stamp(trace.timestamps[-1]),
            }


def _stamp(moment: datetime) -> str:
    return moment.strftime(ROW_TIME_FORMAT)


def write_jsonl(rows: Iterable[dict], path: str | Path) -> int:
    """Write rows as JSON Lines; returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def traces_from_rows(path: str | Path) -> list[Trace]:
    """Whole traces back from prefix rows: each row with ``prefix_len == 1`` is a case,
    ``source + target``, starting at ``case_start``; in file order. One-event cases have
    no rows, so they do not come back. Raises ``DataError`` with file:line on a bad row."""
    name = str(path)
    traces = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row["prefix_len"] != 1:
                continue
            activities = tuple(row["source"].split() + row["target"].split())
            start = parse_timestamp(row["case_start"])
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as err:
            raise DataError(
                f"not a prefix row ({type(err).__name__}: {err})", name, number
            ) from None
        if len(activities) != row.get("trace_len", len(activities)):
            raise DataError(
                f"trace_len {row['trace_len']} but {len(activities)} events", name, number
            )
        traces.append(Trace(case_id=str(row["case_id"]), activities=activities, start=start))
    return traces
