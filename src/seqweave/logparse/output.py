"""Loghub's CSVs, so that existing log-analysis tooling reads a parse unchanged.

``<log>_structured.csv``: one row per input line, ``LineId``, the format's header fields,
``Content``, ``EventId``, ``EventTemplate``, ``ParameterList`` (a Python-literal list of
strings, as Loghub writes it). A malformed line keeps its row (so line count in equals
line count out and ``LineId`` is the line number): its raw text as ``Content``, empty
header fields, ``EventId`` ``malformed``, no template, ``[]`` parameters.
``<log>_templates.csv``: ``EventId, EventTemplate, Occurrences``, most frequent first.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from seqweave.logparse.formats import CONTENT, LogLine
from seqweave.logparse.templates import event_id, parameters

MALFORMED = "malformed"


def structured_rows(
    lines: Sequence[LogLine], templates: dict[int, str], headers: Sequence[str]
) -> list[dict[str, str]]:
    """The structured CSV's rows; ``templates`` maps a well-formed line's id to its
    template."""
    others = [h for h in headers if h != CONTENT]
    rows = []
    for line in lines:
        row = {"LineId": str(line.line_id)} | {h: line.fields.get(h, "") for h in others}
        if line.malformed:
            row |= {CONTENT: line.raw, "EventId": MALFORMED, "EventTemplate": ""}
            row["ParameterList"] = "[]"
        else:
            template = templates[line.line_id]
            values = parameters(template, line.content) or []
            row |= {CONTENT: line.content, "EventId": event_id(template)}
            row |= {"EventTemplate": template, "ParameterList": repr(values)}
        rows.append(row)
    return rows


def write_csvs(
    output: str | Path, name: str, rows: list[dict[str, str]], headers: Sequence[str]
) -> tuple[Path, Path]:
    """Write ``name_structured.csv`` and ``name_templates.csv`` into ``output``."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    columns = ["LineId", *(h for h in headers if h != CONTENT), CONTENT]
    columns += ["EventId", "EventTemplate", "ParameterList"]
    structured = output / f"{name}_structured.csv"
    with structured.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    counts = Counter(
        (row["EventId"], row["EventTemplate"]) for row in rows if row["EventId"] != MALFORMED
    )
    summary = output / f"{name}_templates.csv"
    with summary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["EventId", "EventTemplate", "Occurrences"])
        for (eid, template), n in counts.most_common():
            writer.writerow([eid, template, n])
    return structured, summary
