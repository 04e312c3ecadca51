"""The command-line options every grid recipe shares."""

from __future__ import annotations

import argparse
from pathlib import Path


def seed_list(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``."""
    return [int(part) for part in text.split(",") if part.strip()]


def add_run_arguments(
    parser: argparse.ArgumentParser,
    out: str | Path,
    jobs: int = 2,
    device: str = "cpu",
    out_flags: tuple[str, ...] = ("--out",),
) -> None:
    """``--device``, ``--jobs``, ``--out`` (or ``out_flags``) and ``--fresh`` (ignore the
    finished cells of an earlier run instead of resuming)."""
    parser.add_argument("--device", default=device, help="cpu | cuda")
    parser.add_argument("--jobs", type=int, default=jobs, help="runs at a time (processes)")
    parser.add_argument(*out_flags, dest="out", default=str(out), help="the results JSON")
    parser.add_argument(
        "--fresh", action="store_true", help="rerun every cell, not only the unfinished ones"
    )


def cell_log_path(out: str | Path, runs: str | Path, fresh: bool) -> Path:
    """Where a run keeps its finished cells: under the (ignored) runs directory, named after
    the results file; ``fresh`` removes an earlier one."""
    path = Path(runs) / f"{Path(out).stem}.cells.jsonl"
    if fresh:
        path.unlink(missing_ok=True)
    return path
