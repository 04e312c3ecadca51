"""The Prot2Token tasks from the shared data: one JSON Lines row per (task, protein).

Every source is the task token followed by the protein (``<task=ss>MKV...``); targets are
written in the task's grammar (``seqweave.decoding.grammars``):

- ``ss`` (flip-ss): one label per residue, ``H`` helix, ``E`` strand, ``C`` coil;
- ``helix_starts`` (built from flip-ss): the 1-based positions where a helix begins, a
  residue labelled ``H`` whose predecessor is not (or which is the first residue), written
  ``3,17,42``; a protein with no helix has the empty target;
- ``fitness`` (flip-gb1): the fitness with ``DECIMALS`` decimals (``data.digits``).

Validation comes from the training files only (the test splits are kept back): flip-ss's
``valid.jsonl`` (upstream's ``VALIDATION=True`` part of its training set) for ``ss`` and
``helix_starts``, and the 43 GB1 rows with ``validation: true`` for ``fitness``.
Proteins longer than ``MAX_RESIDUES`` are left out of the flip-ss tasks (the run is short).
"""

from __future__ import annotations

import json
from pathlib import Path

from seqweave.data.digits import format_fixed, format_indices

SS = Path("../shared/data/flip-ss")
GB1 = Path("../shared/data/flip-gb1/two_vs_rest.train.jsonl")
TASKS = ("ss", "fitness", "helix_starts")
TASK_TOKENS = tuple(f"<task={task}>" for task in TASKS)
DECIMALS = 3  # the default of the number grammar that the tasks constraint uses
MAX_RESIDUES = 128
FITNESS_REPEATS = 2  # the 381 GB1 training rows twice (265 residues each: costly sources)


def helix_starts(labels: str) -> list[int]:
    """1-based positions where a run of ``H`` begins."""
    return [i + 1 for i, c in enumerate(labels) if c == "H" and (i == 0 or labels[i - 1] != "H")]


def read_jsonl(path: Path) -> list[dict]:
    with path.open() as handle:
        return [json.loads(line) for line in handle]


def ss_rows(path: Path) -> list[dict]:
    rows = []
    for record in read_jsonl(path):
        sequence, labels = record["source"], record["target"]
        if len(sequence) > MAX_RESIDUES:
            continue
        rows.append({"source": f"<task=ss>{sequence}", "target": labels, "task": "ss"})
        rows.append(
            {
                "source": f"<task=helix_starts>{sequence}",
                "target": format_indices(helix_starts(labels)),
                "task": "helix_starts",
            }
        )
    return rows


def fitness_rows(validation: bool) -> list[dict]:
    rows = []
    for record in read_jsonl(GB1):
        if record["validation"] != validation:
            continue
        rows.append(
            {
                "source": f"<task=fitness>{record['source']}",
                "target": format_fixed(record["fitness"], DECIMALS),
                "task": "fitness",
                "fitness": record["fitness"],
            }
        )
    return rows


def write_tasks(directory: Path) -> dict[str, Path]:
    """Write ``train.jsonl`` and ``valid.jsonl`` (all tasks mixed) under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    splits = {
        "train": ss_rows(SS / "train.jsonl") + fitness_rows(False) * FITNESS_REPEATS,
        "valid": ss_rows(SS / "valid.jsonl") + fitness_rows(True),
    }
    paths = {}
    for name, rows in splits.items():
        paths[name] = directory / f"{name}.jsonl"
        with paths[name].open("w") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    return paths
