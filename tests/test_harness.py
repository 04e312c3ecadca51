"""The recipe harness: grid order, resume after an interruption, incremental writes, mean and
spread, and results that name the checkpoint actually scored."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqweave.config import DataConfig, ExperimentConfig, ModelConfig, TokenizerConfig, TrainConfig
from seqweave.harness import (
    CellLog,
    cell_log_path,
    difference,
    figures_table,
    grid,
    mean_std,
    run_grid,
    scored_checkpoint,
    seed_list,
    summarise,
    train_or_load,
    write_results,
)
from seqweave.train.report import read_metrics
from tests.conftest import write_edit_task


def fake_job(cell: dict, settings: dict) -> dict:
    """A run whose figures are a pure function of its cell; it leaves a file per call, so a
    test can count the calls, and fails on cell bb-1 while the file ``settings["fail"]``
    exists (an interruption)."""
    calls = Path(settings["calls"])
    calls.mkdir(exist_ok=True)
    (calls / f"{cell['variant']}-{cell['seed']}-{os.getpid()}-{len(os.listdir(calls))}").touch()
    if (cell["variant"], cell["seed"]) == ("bb", 1) and Path(settings.get("fail", "")).is_file():
        raise RuntimeError("interrupted")
    return {"score": 10 * len(cell["variant"]) + cell["seed"], "nested": {"half": cell["seed"] / 2}}


def calls(directory: Path) -> list[str]:
    return sorted("-".join(name.split("-")[:2]) for name in os.listdir(directory))


def test_grid_varies_the_last_axis_fastest():
    cells = grid(variant=["a", "bb"], seed=[1, 2, 3])
    assert cells == [{"variant": v, "seed": s} for v in ("a", "bb") for s in (1, 2, 3)]


@pytest.mark.parametrize("jobs", [1, 2])
def test_rows_follow_the_cells_order_in_and_out_of_process(tmp_path, jobs):
    cells = grid(variant=["a", "bb"], seed=[1, 2])
    rows = run_grid(fake_job, cells, {"calls": str(tmp_path / "calls")}, jobs=jobs)
    assert rows == [{**c, **fake_job(c, {"calls": str(tmp_path / "other")})} for c in cells]
    assert len(calls(tmp_path / "calls")) == len(cells)


def test_an_interrupted_run_resumes_with_only_the_unfinished_cells(tmp_path):
    cells = grid(variant=["a", "bb"], seed=[1, 2])
    log = tmp_path / "cells.jsonl"
    settings = {"calls": str(tmp_path / "calls"), "fail": str(tmp_path / "fail"), "steps": 5}
    (tmp_path / "fail").touch()
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="interrupted"):
        run_grid(fake_job, cells, settings, log, on_result=lambda rows: seen.append(len(rows)))
    assert seen == [1, 2]  # each finished cell was handed over as it finished
    assert [json.loads(line)["cell"] for line in log.read_text().splitlines()] == cells[:2]
    (tmp_path / "fail").unlink()
    for path in (tmp_path / "calls").iterdir():
        path.unlink()
    resumed = run_grid(fake_job, cells, settings, log)
    assert calls(tmp_path / "calls") == ["bb-1", "bb-2"]  # the finished cells were skipped
    uninterrupted = run_grid(fake_job, cells, {**settings, "calls": str(tmp_path / "other")})
    assert resumed == uninterrupted


def hanging_job(cell: dict, settings: dict) -> dict:
    """Finishes the first two cells, then hangs until killed."""
    if cell["seed"] > 2:
        time.sleep(600)
    return fake_job(cell, settings)


def test_a_killed_run_keeps_its_finished_cells(tmp_path):
    """SIGKILL mid-grid (no cleanup runs): the cells finished before it are in the log, and
    the rerun runs only the others."""
    log, settings = tmp_path / "cells.jsonl", {"calls": str(tmp_path / "calls")}
    script = (
        "import sys; from tests.test_harness import hanging_job; "
        "from seqweave.harness import grid, run_grid; "
        f"run_grid(hanging_job, grid(variant=['a'], seed=[1, 2, 3, 4]), {settings!r}, sys.argv[1])"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    process = subprocess.Popen([sys.executable, "-c", script, str(log)], cwd=root, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().count("\n") == 2):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)  # polling the log, not waiting a fixed time
    finally:
        process.kill()
        process.wait()
    assert calls(tmp_path / "calls") == ["a-1", "a-2"]
    rows = run_grid(fake_job, grid(variant=["a"], seed=[1, 2, 3, 4]), settings, log)
    assert calls(tmp_path / "calls") == ["a-1", "a-2", "a-3", "a-4"]
    assert [row["score"] for row in rows] == [11, 12, 13, 14]


def test_a_torn_last_line_and_other_settings_do_not_count_as_finished(tmp_path):
    cells = grid(variant=["a"], seed=[1, 2])
    log = tmp_path / "cells.jsonl"
    settings = {"calls": str(tmp_path / "calls"), "steps": 5}
    run_grid(fake_job, cells, settings, log)
    with log.open("a") as handle:
        handle.write('{"cell": {"variant": "a", "se')  # killed mid-write
    assert len(CellLog(log).finished(settings)) == 2
    assert CellLog(log).finished({**settings, "steps": 6}) == {}
    run_grid(fake_job, cells, {**settings, "steps": 6}, log)
    assert calls(tmp_path / "calls") == ["a-1", "a-1", "a-2", "a-2"]


def test_seeds_and_the_cell_log_path(tmp_path):
    assert seed_list("1,2, 3") == [1, 2, 3]
    path = cell_log_path("recipes/x/results-gpu.json", tmp_path, fresh=False)
    assert path == tmp_path / "results-gpu.cells.jsonl"
    path.write_text("{}\n")
    assert cell_log_path("recipes/x/results-gpu.json", tmp_path, fresh=False).exists()
    assert not cell_log_path("recipes/x/results-gpu.json", tmp_path, fresh=True).exists()


def test_mean_std_is_the_sample_spread():
    values = [61.2, 63.9, 59.7]
    figure = mean_std(values)
    assert figure["mean"] == pytest.approx(statistics.fmean(values))
    assert figure["std"] == pytest.approx(math.sqrt(sum((v - 61.6) ** 2 for v in values) / 2))
    assert figure["n"] == 3 and figure["values"] == values
    assert mean_std([4.0])["std"] == 0.0
    with pytest.raises(ValueError):
        mean_std([])


def test_a_difference_inside_the_seeds_spread_is_called_seed_noise():
    # CLAPS at weight 1 vs MLE from a warm start (E2E, 3 seeds; recipes/claps/results_warm.json)
    mle, claps = mean_std([60.92, 65.1, 61.69]), mean_std([62.18, 62.53, 54.49])
    judged = difference(mle, claps)
    assert judged["difference"] == pytest.approx(claps["mean"] - mle["mean"])
    assert judged["standard_error"] == pytest.approx(
        math.sqrt(mle["std"] ** 2 / 3 + claps["std"] ** 2 / 3)
    )
    assert judged["within_seed_noise"] is True
    # from scratch the collapse is far outside it (Multi30k on a GPU, results-gpu.json)
    assert (
        difference(mean_std([33.89, 34.83, 33.67]), mean_std([9.31, 15.75, 8.63]))[
            "within_seed_noise"
        ]
        is False
    )
    assert difference(mean_std([1.0]), mean_std([2.0, 3.0]))["within_seed_noise"] is None


def test_summarise_groups_rows_and_averages_every_figure_over_seeds(tmp_path):
    cells = grid(task=["t"], variant=["a", "bb"], seed=[1, 2, 3])
    rows = run_grid(fake_job, cells, {"calls": str(tmp_path / "calls")})
    summary = summarise(rows, by=("task", "variant"))
    assert list(summary) == ["t / a", "t / bb"]
    assert summary["t / bb"]["score"]["values"] == [21.0, 22.0, 23.0]
    assert summary["t / a"]["nested.half"]["mean"] == pytest.approx(1.0)
    assert "seed" not in summary["t / a"]
    table = figures_table(summary, {"score": "score"})
    assert "| t / bb | 22.00 ± 1.00 |" in table.splitlines()


def fake_run(out: Path, scored_step: int) -> None:
    """A training directory as ``seqweave.train`` leaves it: logs past the scored step."""
    for step in (250, 284):
        checkpoint = out / "checkpoints" / f"step-{step:08d}"
        checkpoint.mkdir(parents=True)
        state = {"progress": {"step": step}}
        (checkpoint / "training_state.json").write_text(json.dumps(state))
    os.symlink(f"checkpoints/step-{scored_step:08d}", out / "best")
    records = [
        {"kind": "train", "step": 200, "loss": 3.0, "elapsed_seconds": 60},
        {"kind": "train", "step": 250, "loss": 2.5, "elapsed_seconds": 90},
        {"kind": "valid", "step": 250, "valid_nll": 1.6},
        {"kind": "valid", "step": 284, "valid_nll": 1.47},
    ]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("scored, nll", [(284, 1.47), (250, 1.6)])
def test_results_name_the_scored_checkpoint_not_the_last_logged(tmp_path, scored, nll):
    fake_run(tmp_path, scored)
    record = scored_checkpoint(tmp_path)
    assert record["step"] == scored
    assert record["validation"] == {"valid_nll": nll}
    assert record["last_logged_step"] == 250
    assert record["checkpoint"].endswith(f"step-{scored:08d}")


def test_the_results_file_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["recipes/x/run.py", "--quick"])
    out = tmp_path / "results.json"
    written = write_results(out, seeds=[1, 2], device="cpu", jobs=3, started=0.0, figures={})
    assert json.loads(out.read_text()) == written
    assert written["command"] == "python recipes/x/run.py --quick"
    assert written["seeds"] == [1, 2]
    assert "3 run(s) at a time" in written["machine"]
    assert written["complete"] is True
    threaded = write_results(out, seeds=None, device="cpu", jobs=1, started=0.0, threads=2)
    assert "2 threads per run, 1 run(s) at a time" in threaded["machine"]


def tiny_experiment(data, out_dir: Path, steps: int) -> ExperimentConfig:
    train_file, valid_file = data
    return ExperimentConfig(
        model=ModelConfig(
            d_model=16,
            num_heads=2,
            encoder_layers=1,
            decoder_layers=1,
            ffn_dim=32,
            max_positions=64,
        ),
        tokenizer=TokenizerConfig(kind="alphabet", alphabet="abcdefghij"),
        data=DataConfig(train=str(train_file), valid=str(valid_file), max_tokens=200),
        train=TrainConfig(
            out_dir=str(out_dir),
            max_steps=steps,
            validate_every=2,
            warmup_steps=1,
            log_every=1,
            metric="none",
            progress=False,
            device="cpu",
        ),
    )


def test_train_or_load_trains_once_and_records_the_scored_step(tmp_path):
    data = write_edit_task(tmp_path / "data", n_train=60, n_valid=8)
    config = tiny_experiment(data, tmp_path / "run", steps=3)
    best = train_or_load(config)
    logged = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert train_or_load(config) == best  # reused: nothing appended to the log
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == logged
    record = scored_checkpoint(tmp_path / "run")
    valid = {r["step"]: r for r in logged if r["kind"] == "valid"}
    assert (
        record["step"] in valid
        and record["validation"]["valid_nll"] == valid[record["step"]]["valid_nll"]
    )
    (tmp_path / "run" / "notes.txt").write_text("mine")
    longer = tiny_experiment(data, tmp_path / "run", steps=4)  # another config: trained again
    train_or_load(longer)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # only run files cleared
    steps = [
        r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"
    ]
    assert steps == [1, 2, 3, 4]
