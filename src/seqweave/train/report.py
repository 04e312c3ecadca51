"""What training tells the user: a progress bar, a JSONL metrics log and a loss-curve plot."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from seqweave.checkpoint import atomic_write

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss_curve.png"


@dataclass
class Budget:
    """Which limit ends the run first, steps or time, and what the bar shows for it.

    tqdm estimates the time left from ``max_steps``; with ``train.max_minutes`` the
    time budget usually ends the run long before (a 15-minute run showed a 37-hour
    estimate). When it will, the bar counts seconds against the budget instead, with the
    steps done beside it, so its estimate is the real one. Which limit comes first is
    judged from the rate so far.
    """

    max_steps: int
    step: int  # the current step (a resumed run starts past 0)
    seconds: float = 0.0  # the time budget; 0: none
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    first_step: int = field(init=False)

    def __post_init__(self) -> None:
        self.started, self.first_step = self.clock(), self.step

    def time_ends_first(self) -> bool:
        elapsed, done = self.clock() - self.started, self.step - self.first_step
        if not self.seconds or done <= 0 or elapsed <= 0:
            return False
        steps_need = (self.max_steps - self.step) * elapsed / done
        return self.seconds - elapsed < steps_need

    def time_view(self, postfix: str | None) -> dict[str, Any]:
        """tqdm's format fields for a bar over the time budget (seconds at one per second)."""
        elapsed = self.clock() - self.started
        steps = f"step {self.step:,}/{self.max_steps:,}"
        return {
            "n": min(elapsed, self.seconds),
            "total": self.seconds,
            "elapsed": elapsed,
            "rate": 1.0,
            "unit": "s",
            "postfix": f"{steps}, {postfix}" if postfix else steps,
            "bar_format": "{l_bar}{bar}| {elapsed}<{remaining} of the time budget{postfix}",
        }


class _BudgetBar(tqdm):
    """A step bar that turns into a time bar while the time budget will end the run first
    (tqdm documents overriding ``format_dict`` to change what a bar shows)."""

    budget: Budget | None = None

    @property
    def format_dict(self) -> dict[str, Any]:
        values = super().format_dict
        if self.budget is not None and self.budget.time_ends_first():
            values.update(self.budget.time_view(values.get("postfix")))
        return values


class TrainingLog:
    """Appends one JSON object per event to ``metrics.jsonl`` and redraws the loss curve.

    Only rank 0 of a distributed run writes (``enabled``). ``max_minutes`` is the run's
    time budget (0: none), for the bar.
    """

    def __init__(
        self,
        out_dir: Path,
        total_steps: int,
        start_step: int,
        enabled: bool,
        bar: bool,
        max_minutes: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        stream=None,
    ):
        self.out_dir = out_dir
        self.enabled = enabled
        self.path = out_dir / METRICS_FILE
        self.budget = Budget(total_steps, start_step, 60 * max_minutes, clock)
        self.bar = None
        if enabled and bar:
            self.bar = _BudgetBar(
                total=total_steps,
                initial=start_step,
                unit="step",
                dynamic_ncols=stream is None,
                file=stream or sys.stderr,
                smoothing=0.1,
            )
            self.bar.budget = self.budget

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
        self.budget.step += 1
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
