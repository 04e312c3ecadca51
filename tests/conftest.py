"""Shared fixtures: tiny models (d=16, 2 layers, vocab 50) that make the suite run in seconds."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
import torch

from seqweave.config import ModelConfig
from seqweave.models import build_model
from tests.shared import require_shared

VOCAB = 50
# every model kind on the decoder-state API, as ModelConfig overrides
MODEL_KINDS = {
    "transformer": dict(architecture="transformer"),
    "prefix_lm": dict(architecture="prefix_lm"),
    "palm": dict(architecture="prefix_lm", partial_attention=True),
}


def tiny_config(**overrides) -> ModelConfig:
    values = dict(
        vocab_size=VOCAB,
        d_model=16,
        num_heads=2,
        encoder_layers=2,
        decoder_layers=2,
        ffn_dim=32,
        dropout=0.0,
        max_positions=128,
    )
    values.update(overrides)
    return ModelConfig(**values)


def tiny_model(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(tiny_config(**overrides)).eval()


def random_sources(generator: torch.Generator, count: int, low: int = 2, high: int = 12):
    """Token lists over the non-special ids 4..VOCAB-1, each ending with eos (2)."""
    sources = []
    for _ in range(count):
        length = int(torch.randint(low, high + 1, (1,), generator=generator))
        ids = torch.randint(4, VOCAB, (length,), generator=generator).tolist()
        sources.append([*ids, 2])
    return sources


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one thread, and much faster when the CPUs are shared."""
    with single_thread():
        yield


@contextlib.contextmanager
def single_thread():
    """Run a block on one torch thread (the session fixtures train under it, so the suite
    stays fast when the CPUs are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def shared() -> Path:
    """The shared data directory (skips where absent; fails where required)."""
    return require_shared()


class EngineGate:
    """Holds a serving engine's thread inside its first call of a wrapped sink, so a test
    can queue rows while a batch is provably running: ``live`` says whether the held row
    was still decoding. Release in a ``finally``."""

    def __init__(self) -> None:
        self.holding, self.released = threading.Event(), threading.Event()
        self.live: bool | None = None

    def wrap(self, sink):
        def held(tokens: list[int], finish: str | None) -> None:
            sink(tokens, finish)
            if not self.holding.is_set():
                self.live = finish is None
                self.holding.set()
                self.released.wait(60)

        return held

    def release(self) -> None:
        self.released.set()


def edit_task_pair(rng) -> dict[str, str]:
    """A copy-mostly task over letters, like text correction: the rare letters are edited
    ('i' becomes 'j', 'h' is dropped, 'g' is doubled), the common ones copied."""
    letters = rng.choices("abcdefghi", weights=[8, 8, 8, 8, 8, 8, 1, 1, 1], k=rng.randint(3, 16))
    source = "".join(letters)
    target = source.replace("i", "j").replace("h", "").replace("g", "gg")
    return {"source": source, "target": target}


def write_edit_task(directory: Path, n_train: int = 3000, n_valid: int = 100, seed: int = 0):
    import json
    import random

    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("valid", n_valid)):
        with (directory / f"{name}.jsonl").open("w") as handle:
            for _ in range(n):
                handle.write(json.dumps(edit_task_pair(rng)) + "\n")
    return directory / "train.jsonl", directory / "valid.jsonl"


def train_tiny(directory: Path, architecture: str, steps: int = 400):
    """Train a small model on the edit task with the real trainer; returns its best directory."""
    from seqweave.config import (
        DataConfig,
        ExperimentConfig,
        ModelConfig,
        TokenizerConfig,
        TrainConfig,
    )
    from seqweave.train import train

    train_file, valid_file = write_edit_task(directory / "data", n_train=2000)
    cfg = ExperimentConfig(
        model=ModelConfig(
            architecture=architecture,
            d_model=48,
            num_heads=4,
            encoder_layers=2,
            decoder_layers=2 if architecture == "transformer" else 3,
            position="sinusoidal" if architecture == "transformer" else "rope",
            ffn_dim=96,
            dropout=0.0,
            max_positions=96,
        ),
        tokenizer=TokenizerConfig(kind="alphabet", alphabet="abcdefghij"),  # j: only in targets
        data=DataConfig(train=str(train_file), valid=str(valid_file), max_tokens=1024),
        train=TrainConfig(
            out_dir=str(directory / architecture),
            max_steps=steps,
            validate_every=steps,
            warmup_steps=50,
            lr=3e-3,
            label_smoothing=0.0,
            metric="exact",
            progress=False,
            log_every=50,
        ),
    )
    with single_thread():
        return train(cfg)


@pytest.fixture(scope="session")
def trained_dirs(tmp_path_factory):
    """Directories of small models of both architectures, trained on the edit task."""
    root = tmp_path_factory.mktemp("trained")
    return {a: train_tiny(root, a) for a in ("transformer", "prefix_lm")}


@pytest.fixture(scope="session")
def trained(trained_dirs):
    """The trained small models, as loaded ``Seq2Seq`` objects."""
    import seqweave

    return {architecture: seqweave.load(path) for architecture, path in trained_dirs.items()}


@pytest.fixture(scope="session")
def nar_dir(trained, trained_dirs, tmp_path_factory):
    """A NAR drafter distilled from the trained encoder-decoder's greedy outputs."""
    import random

    from seqweave.config import (
        DataConfig,
        ExperimentConfig,
        ModelConfig,
        TokenizerConfig,
        TrainConfig,
    )
    from seqweave.train import train
    from seqweave.train.distil import write_distilled

    root = tmp_path_factory.mktemp("nar")
    rng = random.Random(11)
    target = trained["transformer"]
    sources = [edit_task_pair(rng)["source"] for _ in range(1600)]
    write_distilled(target, sources[100:], root / "train.jsonl")
    write_distilled(target, sources[:100], root / "valid.jsonl")
    cfg = ExperimentConfig(
        model=ModelConfig(
            architecture="nar_drafter",
            draft_block=6,
            d_model=48,
            num_heads=4,
            encoder_layers=2,
            decoder_layers=2,
            ffn_dim=96,
            dropout=0.0,
            max_positions=96,
        ),
        tokenizer=TokenizerConfig(path=str(trained_dirs["transformer"])),
        data=DataConfig(
            train=str(root / "train.jsonl"), valid=str(root / "valid.jsonl"), max_tokens=1024
        ),
        train=TrainConfig(
            out_dir=str(root / "run"),
            max_steps=300,
            validate_every=300,
            warmup_steps=50,
            lr=3e-3,
            label_smoothing=0.0,
            metric="exact",  # a drafter is scored by its validation loss instead
            progress=False,
            log_every=100,
        ),
    )
    with single_thread():
        return train(cfg)
