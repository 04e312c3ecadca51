"""Training: exact resume, determinism, crash-safe checkpoints, data parallelism, end to end."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seqweave
from seqweave.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)
from seqweave.train import train
from seqweave.train.report import TrainingLog, read_metrics
from tests.conftest import write_edit_task

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_edit_task(tmp_path_factory.mktemp("data"), n_train=400, n_valid=20)


def small_config(data, out_dir: Path, **train_overrides) -> ExperimentConfig:
    train_file, valid_file = data
    values = dict(
        out_dir=str(out_dir),
        max_steps=8,
        validate_every=4,
        warmup_steps=2,
        log_every=1,
        metric="none",
        progress=False,
        accumulate=2,
        seed=3,
    )
    values.update(train_overrides)
    return ExperimentConfig(
        model=ModelConfig(
            d_model=16,
            num_heads=2,
            encoder_layers=1,
            decoder_layers=1,
            ffn_dim=32,
            dropout=0.1,
            max_positions=64,
        ),
        tokenizer=TokenizerConfig(kind="alphabet", alphabet="abcdefghij"),
        data=DataConfig(train=str(train_file), valid=str(valid_file), max_tokens=200),
        train=TrainConfig(**values),
    )


def train_losses(out_dir: Path) -> dict[int, float]:
    return {
        r["step"]: r["loss"]
        for r in read_metrics(out_dir / "metrics.jsonl")
        if r["kind"] == "train"
    }


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def test_resume_continues_exactly(data, tmp_path):
    """Dropout is on and updates accumulate two batches: the RNG, optimizer and data
    position must all be restored for the losses to match."""
    whole = tmp_path / "whole"
    train(small_config(data, whole))
    split = tmp_path / "split"
    train(small_config(data, split, max_steps=4))
    train(small_config(data, split), resume=True)
    expected, got = train_losses(whole), train_losses(split)
    assert sorted(got) == list(range(1, 9))
    assert got == expected
    for name, tensor in weights(whole / "last").items():
        torch.testing.assert_close(weights(split / "last")[name], tensor, atol=0, rtol=0)


def test_seeded_runs_are_deterministic_and_seeds_matter(data, tmp_path):
    train(small_config(data, tmp_path / "a", max_steps=3))
    train(small_config(data, tmp_path / "b", max_steps=3))
    train(small_config(data, tmp_path / "c", max_steps=3, seed=4))
    assert train_losses(tmp_path / "a") == train_losses(tmp_path / "b")
    assert train_losses(tmp_path / "a") != train_losses(tmp_path / "c")


def test_training_writes_logs_plot_and_model_directories(data, tmp_path):
    out = tmp_path / "run"
    best = train(small_config(data, out, metric="exact"))
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    kinds = [r["kind"] for r in read_metrics(out / "metrics.jsonl")]
    assert kinds.count("valid") == 2 and kinds.count("train") == 8
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (best / name).is_file(), name
    assert seqweave.load(best).generate(["abc"])  # loads and runs


def test_resume_without_checkpoint_is_an_error(data, tmp_path):
    with pytest.raises(seqweave.errors.ConfigError, match="no checkpoint"):
        train(small_config(data, tmp_path / "empty"), resume=True)


WRITER = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    from seqweave.config import DecodeConfig, ExperimentConfig, ModelConfig
    from seqweave.models import build_model
    from seqweave.tokenizers import alphabet_tokenizer
    from seqweave.train.resume import Progress, save_checkpoint

    out = Path(sys.argv[1])
    cfg = ModelConfig(vocab_size=14, d_model=256, num_heads=4, encoder_layers=4, decoder_layers=4,
                      ffn_dim=1024, max_positions=64)
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters())
    ids = torch.ones(1, 2, dtype=torch.long)
    model(ids, torch.tensor([2]), ids).sum().backward()
    optimizer.step()
    tokenizer = alphabet_tokenizer("abcdefghij")
    for step in range(1, 1000):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(step))
        progress, config = Progress(step=step), ExperimentConfig()
        save_checkpoint(out, model, tokenizer, optimizer, progress, config, DecodeConfig())
        print(step, flush=True)
    """
)


def test_killed_writer_leaves_last_checkpoint_loadable(tmp_path):
    """Kill -9 a process that writes ~40 MB checkpoints back to back, at several moments;
    each time ``last`` must load and its weights must match its own step."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "out"
    for delay in (0.05, 0.23, 0.41, 0.67):
        process = subprocess.Popen(
            [sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True
        )
        first = process.stdout.readline()  # one complete checkpoint exists
        assert first.strip(), "writer produced no checkpoint"
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        last = (out / "last").resolve()
        state = json.loads((last / "training_state.json").read_text())
        model = seqweave.load(last)
        step = state["progress"]["step"]
        assert all(float(p.detach().flatten()[0]) == step for p in model.network.parameters())


def test_data_parallel_matches_single_process(data, tmp_path):
    """Two gloo processes on half a batch each take the same steps as one process on
    the whole batch."""
    config = tmp_path / "ddp.toml"
    train_file, _ = data
    config.write_text(
        textwrap.dedent(
            f"""
            [model]
            d_model = 16
            num_heads = 2
            encoder_layers = 1
            decoder_layers = 1
            ffn_dim = 32
            dropout = 0.0
            max_positions = 64
            [tokenizer]
            kind = "alphabet"
            alphabet = "abcdefghij"
            [data]
            train = "{train_file}"
            max_tokens = 300
            [train]
            max_steps = 3
            validate_every = 3
            warmup_steps = 1
            lr = 0.01
            metric = "none"
            progress = false
            log_every = 1
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "seqweave",
            "train",
            str(config),
            "--set",
            f"train.out_dir={single}",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    ddp = tmp_path / "ddp"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--standalone",
            "-m",
            "seqweave",
            "train",
            str(config),
            "--set",
            f"train.out_dir={ddp}",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reference, parallel = weights(single / "last"), weights(ddp / "last")
    assert reference.keys() == parallel.keys()
    for name, tensor in reference.items():
        expected, got = tensor.clone(), parallel[name].clone()
        keys = {"attn.qkv.bias": slice(16, 32), "cross.kv.bias": slice(0, 16)}.get(
            ".".join(name.split(".")[-3:])
        )
        if keys is not None:
            # A key bias adds the same score to every key, so softmax makes its gradient
            # exactly zero; Adam turns the rounding noise left in it into steps of up to lr.
            assert float((got[keys] - expected[keys]).abs().max()) <= 3 * 0.01 * 1.01
            expected[keys] = got[keys] = 0.0
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4, msg=name)
    losses = train_losses(single)
    assert losses[3] < losses[1], "the runs must actually have trained"


def test_init_from_copies_the_weights_that_fit_and_reports_the_rest(data, tmp_path, capsys):
    """A nar_drafter with one more decoder layer starts from a trained encoder-decoder."""
    import dataclasses

    first = train(small_config(data, tmp_path / "a", max_steps=4, validate_every=4))
    source = weights(first)
    cfg = small_config(data, tmp_path / "b", max_steps=1, lr=0.0, init_from=str(first))
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, architecture="nar_drafter", decoder_layers=2)
    )
    started = weights(train(cfg))
    assert "21 left as initialised: mask_vector, decoder_layers.1." in capsys.readouterr().out
    shared = [n for n in source if n.startswith(("encoder_layers.", "decoder_layers.0."))]
    assert shared
    for name in shared:
        torch.testing.assert_close(started[name], source[name], rtol=0, atol=0)
    wrong = dataclasses.replace(cfg.model, d_model=24, ffn_dim=48)
    with pytest.raises(seqweave.errors.ConfigError, match="no parameter fits"):
        train(dataclasses.replace(cfg, model=wrong))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_bar(tmp_path, max_steps: int, minutes: float, steps: int, seconds: float, start=0):
    """A training bar after ``steps`` steps in ``seconds`` of a fake clock; its text."""
    clock = FakeClock()
    log = TrainingLog(tmp_path, max_steps, start, True, True, minutes, clock, io.StringIO())
    began = clock.now
    for step in range(1, steps + 1):
        clock.now = began + seconds * step / steps
        log.advance(loss=2.0, tokens_per_second=500.0, lr=1e-3)
    return str(log.bar)


def test_bar_counts_time_when_the_time_budget_ends_the_run_first(tmp_path):
    """15 minutes, the default 100,000 steps, 26 steps in 38 s: the bar shows 38 s spent
    and 14:22 left of the budget (not a 37-hour estimate), with the steps done."""
    text = run_bar(tmp_path, 100_000, 15, steps=26, seconds=38)
    assert "00:38<14:22 of the time budget" in text
    assert "step 26/100,000" in text and "loss=2.000" in text
    assert "37:0" not in text


def test_bar_counts_steps_when_the_steps_end_the_run_first(tmp_path):
    with_budget = run_bar(tmp_path, 100, 15, steps=26, seconds=38)  # 74 steps need ~108 s
    without = run_bar(tmp_path, 100_000, 0, steps=26, seconds=38)
    assert "26/100 " in with_budget and "time budget" not in with_budget
    assert "26/100000 " in without and "time budget" not in without


def test_bar_judges_a_resumed_run_by_its_own_steps(tmp_path):
    """Resumed at step 900 of 1,000: 10 steps in 60 s means 600 s for the last 100, so a
    5-minute budget ends the run first (the resumed steps do not count toward the rate)."""
    text = run_bar(tmp_path, 1000, 5, steps=10, seconds=60, start=900)
    assert "01:00<04:00 of the time budget" in text and "step 910/1,000" in text
