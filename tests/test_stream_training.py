"""Training on a streamed corpus (``data.stream``, train/batches.py): exact resume in one
process and over two torchrun processes, every example read, and clear errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from seqweave.config import DataConfig, ExperimentConfig
from seqweave.errors import CheckpointError, ConfigError, DataError
from seqweave.train import train
from seqweave.train.report import read_metrics
from tests.test_training import small_config, train_losses, weights


@pytest.fixture(scope="module")
def shards(data, tmp_path_factory):
    """The edit task's training file cut into three shards of unequal size."""
    train_file, _ = data
    lines = Path(train_file).read_text().splitlines(keepends=True)
    directory = tmp_path_factory.mktemp("shards")
    for number, (start, end) in enumerate([(0, 170), (170, 300), (300, len(lines))]):
        (directory / f"part-{number}.jsonl").write_text("".join(lines[start:end]))
    return directory


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests.conftest import write_edit_task

    return write_edit_task(tmp_path_factory.mktemp("data"), n_train=400, n_valid=20)


def streamed(data, shards, out_dir, window=60, **train_overrides) -> ExperimentConfig:
    cfg = small_config(data, out_dir, **train_overrides)
    stream = DataConfig(
        train=str(shards), valid=cfg.data.valid, max_tokens=200, stream=True, stream_window=window
    )
    return dataclasses.replace(cfg, data=stream)


def test_a_streamed_run_resumes_exactly(data, shards, tmp_path):
    """Dropout on, two batches per update, windows of 60 lines across three shards and
    into the second epoch: the checkpoint's stream position must be exact for the losses
    and weights to match the uninterrupted run."""
    whole = tmp_path / "whole"
    train(streamed(data, shards, whole, max_steps=24, validate_every=12))
    split = tmp_path / "split"
    train(streamed(data, shards, split, max_steps=12, validate_every=12))
    state = json.loads((split / "last" / "training_state.json").read_text())
    assert state["progress"]["stream"][0]["batch"] > 0  # mid-window: the strictest resume
    train(streamed(data, shards, split, max_steps=24, validate_every=12), resume=True)
    assert train_losses(split) == train_losses(whole)
    for name, tensor in weights(whole / "last").items():
        torch.testing.assert_close(weights(split / "last")[name], tensor, atol=0, rtol=0)
    assert (
        json.loads((whole / "last" / "training_state.json").read_text())["progress"]["epoch"] >= 1
    ), "the run should have streamed past the end of the corpus"


def test_streaming_learns_like_reading_into_memory(data, shards, tmp_path):
    """Same model and budget, every example once per epoch either way: both learn, and
    reach about the same validation loss (the batches differ, so not exactly)."""
    options = dict(max_steps=30, validate_every=30, lr=0.01, accumulate=1)
    train(small_config(data, tmp_path / "memory", **options))
    train(streamed(data, shards, tmp_path / "stream", **options))
    losses = {}
    for mode in ("memory", "stream"):
        records = read_metrics(tmp_path / mode / "metrics.jsonl")
        train_loss = train_losses(tmp_path / mode)
        valid = [r["valid_loss"] for r in records if r["kind"] == "valid"][-1]
        assert valid < 0.8 * train_loss[1], f"{mode} did not learn"
        losses[mode] = valid
    assert losses["stream"] == pytest.approx(losses["memory"], rel=0.1)


def test_a_malformed_line_deep_in_a_shard_is_named(data, tmp_path):
    directory = tmp_path / "bad"
    directory.mkdir()
    good = json.dumps({"source": "abc", "target": "cba"})
    lines = [good] * 9 + ['{"source": "abc"}'] + [good] * 5
    (directory / "part-0.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"part-0.jsonl:10: missing field 'target'"):
        train(streamed(data, directory, tmp_path / "out", window=4, max_steps=20))


def test_resuming_with_another_reading_is_refused(data, shards, tmp_path):
    out = tmp_path / "memory"
    train(small_config(data, out, max_steps=2, validate_every=2))
    with pytest.raises(CheckpointError, match=r"without data\.stream"):
        train(streamed(data, shards, out, max_steps=4), resume=True)


def test_streaming_refuses_what_it_cannot_batch(data, shards, tmp_path):
    cfg = streamed(data, shards, tmp_path)
    with pytest.raises(ConfigError, match="pack_sequences"):
        dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, pack_sequences=True))
    with pytest.raises(ConfigError, match="stream_window"):
        DataConfig(stream=True, stream_window=0)
    with pytest.raises(DataError, match="no JSON Lines shard"):
        train(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, train=str(tmp_path))))


@pytest.mark.slow
def test_two_processes_stream_their_own_shards_and_resume_exactly(shards, tmp_path):
    """torchrun with 2 gloo processes: rank 0 reads shards 0 and 2, rank 1 shard 1; the
    checkpoint keeps both positions and a resumed run continues both exactly."""
    config = tmp_path / "stream.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [model]
            d_model = 16
            num_heads = 2
            encoder_layers = 1
            decoder_layers = 1
            ffn_dim = 32
            dropout = 0.1
            max_positions = 64
            [tokenizer]
            kind = "alphabet"
            alphabet = "abcdefghij"
            [data]
            train = "{shards}"
            max_tokens = 200
            stream = true
            stream_window = 50
            [train]
            max_steps = 8
            validate_every = 4
            warmup_steps = 1
            metric = "none"
            progress = false
            log_every = 1
            """
        )
    )
    whole, split = tmp_path / "whole", tmp_path / "split"
    torchrun(config, whole)
    torchrun(config, split, "train.max_steps=4")
    positions = json.loads((split / "last" / "training_state.json").read_text())
    assert len(positions["progress"]["stream"]) == 2
    torchrun(config, split, resume=True)
    assert train_losses(split) == train_losses(whole)
    for name, tensor in weights(whole / "last").items():
        torch.testing.assert_close(weights(split / "last")[name], tensor, atol=0, rtol=0)


def torchrun(config: Path, out_dir: Path, *overrides: str, resume: bool = False) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--standalone", "-m", "seqweave", "train", str(config)]
    for override in (f"train.out_dir={out_dir}", *overrides):
        command += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command + ["--resume"] * resume, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
