"""Long inputs past one process's memory budget: a long-log task trained sequence-parallel.

    .venv/bin/python recipes/long_input/run.py [--length 8192] [--steps 3] [--budget-mb 1024]

Each source is a log of ``--length`` events (letters a..h) with one incident somewhere
in it (``i`` followed by a three-letter code from j..p); the target is that code, so
the whole log has to be read. The same config trains twice with ``seqweave train``:
in one process, and with ``torchrun --nproc-per-node 2`` and
``train.sequence_parallel = 2`` (each log split in half, Ulysses attention). Each run
is measured by the peak resident memory of its largest process (``ru_maxrss`` of the
process tree), against ``--budget-mb``. Writes recipes/long_input/results.json and
prints a table; models go to runs/long_input/. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from seqweave.harness import write_results
from seqweave.harness.training import clear_run
from seqweave.train.report import read_metrics

HERE = Path("recipes/long_input")
RUNS = Path("runs/long_input")


def write_logs(path: Path, count: int, length: int, seed: int) -> None:
    """``count`` logs of ``length`` events, each with one incident and its code."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            events = rng.choices("abcdefgh", k=length - 4)
            code = "".join(rng.choices("jklmnop", k=3))
            at = rng.randrange(len(events))
            source = "".join(events[:at]) + "i" + code + "".join(events[at:])
            handle.write(json.dumps({"source": source, "target": code}) + "\n")


def measured(command: list[str]) -> dict:
    """Run ``command`` in a child that reports the peak RSS of its process tree."""
    probe = [sys.executable, str(HERE / "run.py"), "--measure", "--", *command]
    started = time.perf_counter()
    result = subprocess.run(probe, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    peak_kb = json.loads(result.stdout.strip().splitlines()[-1])["peak_kb"]
    return dict(peak_mb=peak_kb / 1024, minutes=(time.perf_counter() - started) / 60)


def measure(command: list[str]) -> None:
    """(--measure) Run the command; print the largest RSS of any process it started."""
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--budget-mb", type=float, default=1024.0)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.measure:
        return measure(rest[1:] if rest[:1] == ["--"] else rest)
    started = time.perf_counter()
    RUNS.mkdir(parents=True, exist_ok=True)
    data = RUNS / f"logs-{args.length}.jsonl"
    write_logs(data, 64, args.length, seed=0)
    common = [str(HERE / "config.toml"), "--set", f"data.train={data}"]
    common += ["--set", f"train.max_steps={args.steps}"]
    for key in ("model.max_positions", "data.max_source_len", "data.max_tokens"):
        common += ["--set", f"{key}={args.length + 8}"]
    single, parallel = RUNS / "single", RUNS / "parallel"
    seqweave = [sys.executable, "-m", "seqweave", "train", *common]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    torchrun += ["--nproc-per-node", "2", "-m", "seqweave", "train", *common]
    runs = {
        "one process": (single, [*seqweave, "--set", f"train.out_dir={single}"]),
        "2 processes, sequence parallel": (
            parallel,
            [*torchrun, "--set", f"train.out_dir={parallel}", "--set", "train.sequence_parallel=2"],
        ),
    }
    rows = {}
    for name, (out_dir, command) in runs.items():
        clear_run(out_dir)  # training appends to an earlier run's metrics
        rows[name] = measured(command)
        records = read_metrics(out_dir / "metrics.jsonl")
        rows[name]["losses"] = [r["loss"] for r in records if r["kind"] == "train"]
        rows[name]["fits_budget"] = rows[name]["peak_mb"] <= args.budget_mb
        print(name, json.dumps(rows[name]), flush=True)
    write_results(
        HERE / "results.json",
        seeds=None,
        device="cpu",
        jobs=1,
        started=started,
        settings=dict(length=args.length, steps=args.steps, budget_mb=args.budget_mb),
        runs=rows,
    )


if __name__ == "__main__":
    main()
