"""XES event logs (the IEEE standard process-mining tools export) -> traces, via pm4py.

pm4py is an optional extra (``pip install seqweave[events]``) and is imported only here,
when an XES file is read. The case id is the trace's ``concept:name``, the activity the
event's ``concept:name``, the time its ``time:timestamp``. Malformed events are counted
and reported as for CSV logs (``event_log.ReadReport``), located by trace and event
number since XES has no meaningful line per event. pm4py drops a timestamp it cannot
parse, so "missing timestamp" covers both a missing and an unparseable one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from seqweave.data.formats.event_log import ReadReport, Trace, parse_timestamp
from seqweave.errors import DataError

CASE, ACTIVITY, TIME = "concept:name", "concept:name", "time:timestamp"


def read_xes_event_log(path: str | Path, strict: bool = False) -> tuple[list[Trace], ReadReport]:
    """Traces in file order, each case's events sorted by time (stably); traces with the
    same case id are merged, as a CSV log's rows are. Raises ``DataError`` for a missing
    or unreadable file, and, with ``strict``, at the first malformed event."""
    name = str(path)
    if not Path(path).is_file():
        raise DataError("file does not exist", path=name)
    try:
        import pm4py
    except ImportError as err:
        raise DataError("reading XES needs pm4py: pip install 'seqweave[events]'", name) from err
    try:
        log = pm4py.read_xes(name, return_legacy_log_object=True, show_progress_bar=False)
    except Exception as err:  # pm4py raises what its XML parser raises
        raise DataError(f"not a readable XES file ({type(err).__name__}: {err})", name) from None
    report = ReadReport()
    events: dict[str, list[tuple[datetime, str]]] = {}
    for t, trace in enumerate(log, start=1):
        case_id = str(trace.attributes.get(CASE, "")).strip()
        for e, event in enumerate(trace, start=1):
            where = f"{name}: trace {t}, event {e}"
            problem = _problem(case_id, event)
            if problem is not None:
                if strict:
                    raise DataError(f"{where}: {problem[0]}: {problem[1]}")
                report.add(problem[0], where, problem[1])
                continue
            label = "_".join(str(event[ACTIVITY]).split())
            events.setdefault(case_id, []).append((_naive_utc(event[TIME]), label))
            report.events += 1
    traces = []
    for case_id, items in events.items():
        ordered = sorted(items, key=lambda item: item[0])
        times, labels = zip(*ordered, strict=True)
        traces.append(Trace(case_id, tuple(labels), times[0], tuple(times)))
    return traces, report


def _problem(case_id: str, event) -> tuple[str, str] | None:
    if not case_id:
        return "missing case id", f"the trace has no {CASE!r}"
    if not str(event.get(ACTIVITY, "")).strip():
        return "missing activity", f"the event has no {ACTIVITY!r}"
    when = event.get(TIME)
    if when is None:
        return "missing timestamp", f"the event has no parseable {TIME!r}"
    if not isinstance(when, datetime):
        try:
            parse_timestamp(str(when))
        except ValueError:
            return "unparseable timestamp", repr(when)
    return None


def _naive_utc(when) -> datetime:
    if not isinstance(when, datetime):
        return parse_timestamp(str(when))
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
