"""Saving and restoring everything a training run needs to continue exactly.

Weights, optimizer moments and the torch RNG state go into safetensors files;
counters, the best score and the resolved config into ``training_state.json``.
Resuming from a checkpoint taken at step k and training to step n gives the
same losses as training to n without stopping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqweave.checkpoint import (
    load_tensors,
    load_weights,
    publish_checkpoint,
    read_json,
    save_model_dir,
    save_tensors,
    write_json,
)
from seqweave.config import DecodeConfig, ExperimentConfig, to_dict
from seqweave.errors import CheckpointError
from seqweave.tokenizers import Tokenizer

STATE_FILE = "training_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"


@dataclass
class Progress:
    """Where training stands: updates done, and the next batch to read."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float | None = None
    best_step: int | None = None
    stream: list[dict[str, int]] | None = None  # data.stream: each rank's StreamPosition

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state into tensors (for safetensors) and plain values (JSON)."""
    state = optimizer.state_dict()
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        plain["state"][str(index)] = []
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                plain["state"][str(index)].append([name, value])
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = rng
    return tensors, plain


def rank_rng_tensors(states: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each torchrun rank's CPU generator state (``rng_state`` of every rank, in rank
    order), under names ``restore_optimizer`` finds: ranks draw different dropout masks
    for their different examples, so each must resume its own stream."""
    return {f"rng.torch.rank{rank}": state for rank, state in enumerate(states)}


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict, rank: int = 0
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, items in plain["state"].items():
        for name, value in items:
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})
    torch.set_rng_state(tensors.get(f"rng.torch.rank{rank}", tensors["rng.torch"]))
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])


def save_checkpoint(
    out_dir: Path,
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    config: ExperimentConfig,
    decode: DecodeConfig,
    rank_rng: list[torch.Tensor] | None = None,
) -> Path:
    """Write checkpoint ``progress.step`` atomically and point ``out_dir/last`` at it;
    ``rank_rng``: every rank's generator state when several processes train."""
    tensors, plain = optimizer_tensors(optimizer)
    if rank_rng is not None and len(rank_rng) > 1:
        tensors.update(rank_rng_tensors(rank_rng))

    def write(directory: Path) -> None:
        save_model_dir(directory, model, tokenizer, decode)
        save_tensors(directory / OPTIMIZER_FILE, tensors)
        write_json(
            directory / STATE_FILE,
            {"progress": progress.as_dict(), "optimizer": plain, "config": to_dict(config)},
        )

    return publish_checkpoint(out_dir, progress.step, write)


def load_checkpoint(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, rank: int = 0
) -> Progress:
    """Restore weights, optimizer, RNG (``rank``'s own, when each rank's was saved) and
    progress from a checkpoint directory."""
    if not directory.exists():
        raise CheckpointError(f"no checkpoint to resume from at {directory}")
    state = read_json(directory / STATE_FILE)
    load_weights(model, directory)
    tensors = load_tensors(directory / OPTIMIZER_FILE)
    restore_optimizer(optimizer, tensors, state["optimizer"], rank)
    return Progress(**state["progress"])
