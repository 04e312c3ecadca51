"""Train a recipe's model with ``seqweave.train``, or reuse the one a finished run left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from seqweave.config import ExperimentConfig, to_dict

FINISHED = "finished.json"
# what seqweave.train leaves in train.out_dir; only these are cleared before training again
RUN_FILES = (
    FINISHED,
    "metrics.jsonl",
    "config.json",
    "loss_curve.png",
    "best",
    "last",
    "checkpoints",
    "tokenizer",
)


def clear_run(out_dir: Path) -> None:
    """Remove an earlier run's files from ``out_dir`` (training appends to its metrics log),
    leaving anything else there alone."""
    for name in RUN_FILES:
        path = out_dir / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def finished_run(config: ExperimentConfig) -> bool:
    """Whether ``train.out_dir`` holds a model trained to the end with exactly this config
    (``train_or_load`` leaves a ``finished.json`` with the config when training returns)."""
    out_dir = Path(config.train.out_dir)
    marker = out_dir / FINISHED
    if not (out_dir / "best").exists() or not marker.exists():
        return False
    return json.loads(marker.read_text()).get("config") == to_dict(config)


def train_or_load(config: ExperimentConfig, retrain: bool = False, reuse_any: bool = False) -> Path:
    """The ``best`` model directory of ``config``'s run, training it only when needed.

    A finished run of the same config is reused; ``reuse_any`` reuses whatever model
    ``train.out_dir`` holds (a recipe's ``--skip-training``); ``retrain`` trains again
    regardless. The files of a run with another config or an interrupted one are cleared
    first (``clear_run``), since training appends to its metrics log.

    Raises:
        FileNotFoundError: ``reuse_any`` and no model in ``train.out_dir``.
    """
    from seqweave.train import train

    out_dir = Path(config.train.out_dir)
    if reuse_any and not retrain:
        if not (out_dir / "best").exists():
            raise FileNotFoundError(f"{out_dir}/best: no model to reuse; train it first")
        return out_dir / "best"
    if not retrain and finished_run(config):
        return out_dir / "best"
    clear_run(out_dir)
    best = train(config)
    (out_dir / FINISHED).write_text(json.dumps({"config": to_dict(config)}, indent=2) + "\n")
    return best
