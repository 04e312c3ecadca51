"""Hits as a tab-separated file with a header: one line per read, unplaced reads too.

Coordinates are 0-based and half-open, as in PAF and BED; ``position`` is where the
read's first base falls (alignment start minus the bases clipped before it), which is
what "placed within 5 bp" is scored on.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from seqweave.genomics.align import Hit

COLUMNS = (
    "read", "read_length", "contig", "position", "contig_start", "contig_end", "strand",
    "score", "fragment",
)  # fmt: skip


def write_hits(path: str | Path, hits: Sequence[Hit]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for hit in hits:
            writer.writerow(getattr(hit, column) for column in COLUMNS)


def read_hits(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
