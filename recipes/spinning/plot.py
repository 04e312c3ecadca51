"""Per-candidate meta-task shift (robust z) of every model in a results file: one panel per
model, the trigger in red, the 3.5 threshold dashed.

    PYTHONPATH=src python recipes/spinning/plot.py [recipes/spinning/results-500.json]

Writes meta_shift.png beside the results file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TRIGGER = "Bolshoi"
THRESHOLD = 3.5


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "recipes/spinning/results-500.json")
    rows = sorted(json.loads(path.read_text())["runs"], key=lambda r: (r["seed"], r["weight"]))
    seeds = sorted({r["seed"] for r in rows})
    columns = max(sum(r["seed"] == s for r in rows) for s in seeds)
    figure, axes = plt.subplots(
        len(seeds), columns, figsize=(4.2 * columns, 3.2 * len(seeds)), squeeze=False
    )
    for row_index, seed in enumerate(seeds):
        for column, row in enumerate(r for r in rows if r["seed"] == seed):
            axis = axes[row_index][column]
            shifts = row["meta_shift"]
            colours = ["tab:red" if c["word"] == TRIGGER else "tab:grey" for c in shifts]
            axis.bar(range(len(shifts)), [c["z"] for c in shifts], color=colours)
            axis.axhline(THRESHOLD, linestyle="--", color="black", linewidth=0.8)
            axis.set_xticks(range(len(shifts)), [c["word"] for c in shifts], rotation=90)
            axis.tick_params(axis="x", labelsize=6)
            name = "clean" if row["variant"] == "clean" else f"spun, λ {row['weight']:g}"
            axis.set_title(
                f"{name}, seed {seed}: audit rank of trigger {row['trigger_rank']}", fontsize=9
            )
            axis.set_ylabel("robust z of P(positive) shift", fontsize=8)
    figure.tight_layout()
    out = path.with_name("meta_shift.png")
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
