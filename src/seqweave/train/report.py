"""What training tells the user: a progress bar, a JSONL metrics log and a loss-curve plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from seqweave.checkpoint import atomic_write

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss_curve.png"


class TrainingLog:
    """Appends one JSON object per event to ``metrics.jsonl`` and redraws the loss curve.

    Only rank 0 of a distributed run writes (``enabled``).
    """

    def __init__(self, out_dir: Path, total_steps: int, start_step: int, enabled: bool, bar: bool):
        self.out_dir = out_dir
        self.enabled = enabled
        self.path = out_dir / METRICS_FILE
        self.bar = None
        if enabled and bar:
            self.bar = tqdm(
                total=total_steps,
                initial=start_step,
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
                smoothing=0.1,
            )

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def advance(self, loss: float, tokens_per_second: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{loss:.3f}", tok_s=f"{tokens_per_second:,.0f}", lr=f"{lr:.2e}"
            )
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def plot(self) -> None:
        if self.enabled:
            plot_loss_curve(self.path, self.out_dir / PLOT_FILE)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_loss_curve(metrics_path: Path, png_path: Path) -> None:
    """Training loss per logged step and validation loss per validation, on one plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train"]
    valid = [(r["step"], r["valid_loss"]) for r in records if r.get("kind") == "valid"]
    figure, axes = plt.subplots(figsize=(7, 4))
    if train:
        axes.plot(*zip(*train, strict=True), label="train loss", linewidth=1)
    if valid:
        axes.plot(*zip(*valid, strict=True), "o-", label="valid loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (label-smoothed, per token)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_write(png_path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)
