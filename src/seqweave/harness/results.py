"""What a recipe writes beside its figures: mean and spread over seeds, the checkpoint
that was scored, and where, how and from which command the figures came."""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from seqweave.device import describe_machine

CHECKPOINT_STATE = "training_state.json"
METRICS_LOG = "metrics.jsonl"


def mean_std(values: Iterable[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (0 for a single value) and the values themselves."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std of no values")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values), "values": values}


def difference(a: dict, b: dict) -> dict[str, Any]:
    """``b`` minus ``a`` for two ``mean_std`` figures, and whether it is within seed noise:
    within two standard errors of the difference (each side's std over the root of its
    seeds). With a single seed on either side there is no spread to judge by (None)."""
    delta = b["mean"] - a["mean"]
    if a["n"] < 2 or b["n"] < 2:
        return {"difference": delta, "standard_error": None, "within_seed_noise": None}
    error = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    return {
        "difference": delta,
        "standard_error": error,
        "within_seed_noise": abs(delta) <= 2 * error,
    }


def numeric_figures(row: dict, prefix: str = "") -> dict[str, float]:
    """Every number in a (nested) result row, under dotted keys; booleans are not figures."""
    figures: dict[str, float] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            figures.update(numeric_figures(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            figures[name] = float(value)
    return figures


def summarise(rows: Sequence[dict], by: Sequence[str], over: str = "seed") -> dict[str, dict]:
    """Per group of rows sharing the values of ``by`` (keyed ``"a / b"``): ``mean_std`` of
    every figure that all rows of the group have, over ``over`` (the seeds). Groups keep the
    rows' order; the ``by`` and ``over`` columns are not figures."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(" / ".join(str(row[k]) for k in by), []).append(row)
    summary: dict[str, dict] = {}
    for name, members in groups.items():
        figures = [
            numeric_figures({k: v for k, v in r.items() if k not in (*by, over)}) for r in members
        ]
        shared = [key for key in figures[0] if all(key in f for f in figures)]
        summary[name] = {key: mean_std(f[key] for f in figures) for key in shared}
    return summary


def figures_table(summary: dict[str, dict], columns: dict[str, str], scale: float = 1.0) -> str:
    """A markdown table: one row per group, one column per ``{heading: figure key}``, cells
    ``mean ± std`` (times ``scale``), "—" where a group lacks the figure."""
    lines = [
        "| | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for group, figures in summary.items():
        cells = []
        for key in columns.values():
            figure = figures.get(key)
            if figure is None:
                cells.append("—")
            else:
                mean, std = scale * figure["mean"], scale * figure["std"]
                cells.append(f"{mean:.2f} ± {std:.2f}" if figure["n"] > 1 else f"{mean:.2f}")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scored_checkpoint(out_dir: str | Path, model_dir: str | Path | None = None) -> dict:
    """The checkpoint a recipe scored (``model_dir``, default ``out_dir/best``): its step and
    the validation record logged at that step, not the last logged ones."""
    out_dir = Path(out_dir)
    directory = Path(model_dir or out_dir / "best").resolve()
    state = directory / CHECKPOINT_STATE
    step = json.loads(state.read_text())["progress"]["step"] if state.exists() else None
    log = _read_log(out_dir / METRICS_LOG)
    validation = [r for r in log if r.get("kind") == "valid" and r.get("step") == step]
    trained = [r for r in log if r.get("kind") == "train"]
    record = {
        "checkpoint": _relative(directory),
        "step": step,
        "validation": {k: v for k, v in validation[-1].items() if k not in ("kind", "step")}
        if validation
        else None,
    }
    if trained:
        record["last_logged_step"] = trained[-1]["step"]
        record["minutes_at_last_log"] = trained[-1]["elapsed_seconds"] / 60
    return record


def _read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that produced a results file, as one would type it again."""
    return " ".join(["python", *(sys.argv if argv is None else argv)])


def machine_line(device: str, jobs: int, threads: int = 1) -> str:
    """``seqweave.device.describe_machine``'s line, with the CPU threads a run really had."""
    line = describe_machine(device, jobs)
    if threads != 1 and not device.startswith("cuda"):
        line = line.replace("1 thread per run", f"{threads} threads per run")
    return line


def write_results(
    path: str | Path,
    *,
    seeds: Sequence[int] | None,
    device: str,
    jobs: int,
    started: float,
    complete: bool = True,
    threads: int = 1,
    **sections: Any,
) -> dict:
    """Write a recipe's results JSON: the command, the seeds, the machine line (``threads``
    torch threads per run on a CPU), the minutes since ``started`` (a
    ``time.perf_counter()``), whether every run is in, then ``sections`` (figures, runs,
    scored checkpoints, settings) as given. Returns it."""
    result = {
        "command": command_line(),
        "seeds": list(seeds) if seeds is not None else None,
        "machine": machine_line(device, jobs, threads),
        "minutes": (time.perf_counter() - started) / 60,
        "complete": complete,
        **sections,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=_path) + "\n")
    tmp.replace(path)
    return result


def _path(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-ready: {value!r}")
