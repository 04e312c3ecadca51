"""The recipe's data: Loghub-2k messages and templates per system, training rows with at
most a few messages per template (a template's 2,000-line share is mostly the same words
with other numbers, so capping keeps rare templates from drowning), and the held-out
systems' messages."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

DATA = Path("../shared/data")
SYSTEMS = (
    "Android", "Apache", "BGL", "HDFS", "HPC", "Hadoop",
    "HealthApp", "Linux", "OpenSSH", "Spark", "Windows", "Zookeeper",
)  # fmt: skip


def read_jsonl(path: Path) -> list[dict]:
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def loghub(system: str) -> list[dict]:
    """The 2,000 rows of one system: ``source`` message, ``target`` corrected template."""
    return read_jsonl(DATA / "loghub2k" / f"{system}.jsonl")


def capped_rows(rows: list[dict], per_template: int, seed: int) -> list[dict]:
    """At most ``per_template`` distinct messages of each template, chosen at random."""
    by_template: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        messages = by_template[row["target"]]
        if row["source"] not in messages:
            messages.append(row["source"])
    chooser = random.Random(seed)
    kept = []
    for template, messages in sorted(by_template.items()):
        chooser.shuffle(messages)
        kept += [{"source": m, "target": template} for m in messages[:per_template]]
    chooser.shuffle(kept)
    return kept


def write_training_rows(systems: list[str], path: Path, per_template: int, seed: int) -> int:
    """Write the capped rows of ``systems`` to ``path`` (JSONL); returns how many."""
    rows = [r for system in systems for r in capped_rows(loghub(system), per_template, seed)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return len(rows)
