"""GB1 (FLIP two_vs_rest) rows for the three methods, and our own split of the training file.

The test split (triple and quadruple mutants) is kept back, so every figure here is on
data carved from the training file (1 wild type, 27 single and 396 double mutants):
``valid`` is upstream's 43 ``validation: true`` rows (checkpoint and ridge alpha selection);
``heldout`` is a fixed quarter (seed 0) of the other double mutants, never used to choose
anything; ``train`` is the rest. Within-doubles interpolation, not FLIP's extrapolation to
more mutations: that needs the test file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from seqweave.data.digits import format_fixed

GB1 = Path("../shared/data/flip-gb1/two_vs_rest.train.jsonl")
TASK = "<task=fitness>"
DECIMALS = 3  # the default of the number grammar
HELDOUT_FRACTION = 0.25


def read_rows() -> list[dict]:
    with GB1.open() as handle:
        return [json.loads(line) for line in handle]


def wild_type(rows: list[dict]) -> str:
    """The residue most rows have at each position (every row is at most two mutations away)."""
    columns = zip(*(row["source"] for row in rows), strict=True)
    return "".join(max(set(column), key=column.count) for column in map(list, columns))


def split(rows: list[dict]) -> dict[str, list[dict]]:
    """train / valid / heldout as described in the module docstring."""
    wt = wild_type(rows)
    for row in rows:
        row["mutations"] = sum(a != b for a, b in zip(row["source"], wt, strict=True))
    valid = [r for r in rows if r["validation"]]
    doubles = [r for r in rows if not r["validation"] and r["mutations"] == 2]
    random.Random(0).shuffle(doubles)
    heldout = doubles[: round(HELDOUT_FRACTION * len(doubles))]
    taken = {id(r) for r in valid + heldout}
    return {"train": [r for r in rows if id(r) not in taken], "valid": valid, "heldout": heldout}


def prompt(row: dict, method: str) -> dict:
    """The seqweave row of one protein: the regression head answers at <mask>, the digits
    model writes the number after the prompt."""
    if method == "regression":
        return {
            "source": f"{TASK}<@AA>{row['source']}<mask>",
            "target": f"<scalar={row['fitness']!r}>",
        }
    return {
        "source": f"{TASK}<@AA>{row['source']}",
        "target": format_fixed(row["fitness"], DECIMALS),
    }


def write_sets(directory: Path) -> dict[str, list[dict]]:
    """Write train/valid/heldout JSON Lines for both methods under ``directory``; returns
    the split rows."""
    parts = split(read_rows())
    for method in ("regression", "digits"):
        (directory / method).mkdir(parents=True, exist_ok=True)
        for name, rows in parts.items():
            lines = [json.dumps(prompt(r, method)) for r in rows]
            (directory / method / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return parts
