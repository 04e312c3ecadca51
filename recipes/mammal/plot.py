"""Held-out predictions against the measured fitness, one panel per method (one seed).

    .venv/bin/python recipes/mammal/plot.py [--seed 1]

Reloads the models ``run.py`` trained for that seed (runs/mammal/METHOD[TAG]-sSEED/best:
both regression runs of the README and the digits one) and refits the ridge baseline, so
the panels show exactly the predictions the results files score. Writes
recipes/mammal/heldout.png. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import seqweave
from seqweave.baselines.ridge import one_hot, ridge_on_validation, spearman

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from gb1 import read_rows, split  # noqa: E402
from run import RUNS, neural_predictions  # noqa: E402

# panel title, method, run tag (run.py --tag)
RUNS_SHOWN = (
    ("regression", "regression", ""),
    ("regression, lr 3e-3, no dropout", "regression", "-lr3e-3"),
    ("digits", "digits", ""),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.chdir(ROOT)
    parts = split(read_rows())
    rows = parts["heldout"]
    truth = [r["fitness"] for r in rows]
    guesses = {}
    for label, method, tag in RUNS_SHOWN:
        model = seqweave.load(RUNS / f"{method}{tag}-s{args.seed}" / "best")
        guesses[label] = neural_predictions(method, model, rows)
    data = {n: ([r["source"] for r in parts[n]], [r["fitness"] for r in parts[n]]) for n in parts}
    ridge, alpha, _ = ridge_on_validation(data["train"], data["valid"])
    guesses[f"ridge (alpha {alpha:g})"] = ridge.predict(one_hot(data["heldout"][0])).tolist()
    figure, axes = plt.subplots(1, 4, figsize=(16, 4), sharex=True)
    for axis, (name, guess) in zip(axes, guesses.items(), strict=True):
        axis.scatter(truth, guess, s=12, alpha=0.7)
        rho = spearman(guess, truth)
        axis.set_title(
            f"{name}: rho {rho:.2f}" if rho == rho else f"{name}: rho undefined", fontsize=10
        )
        axis.set_xlabel("measured fitness")
    axes[0].set_ylabel("predicted fitness")
    figure.suptitle(f"GB1, {len(rows)} held-out double mutants, seed {args.seed}")
    figure.tight_layout()
    figure.savefig(ROOT / "recipes/mammal/heldout.png", dpi=110)


if __name__ == "__main__":
    main()
