"""Model directories and training checkpoints, written atomically, read without pickle.

A model directory is what users of the field expect::

    config.json              the ModelConfig
    model.safetensors        the weights (tied tensors stored once)
    tokenizer.json           the HF tokenizers file
    generation_config.json   default DecodeConfig

A training checkpoint is a model directory plus ``training_state.json`` (step,
epoch, position in the epoch, best score, resolved config) and
``optimizer.safetensors`` (optimizer moments and RNG states as tensors).

Every file is written to a temporary name, fsynced and renamed; a checkpoint
directory is assembled under a temporary name and renamed into place, then the
``last``/``best`` links are swapped atomically. A process killed at any moment
therefore leaves the previous checkpoint complete and loadable.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tokenizers
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from seqweave.config import DecodeConfig, ModelConfig, from_dict, to_dict
from seqweave.errors import CheckpointError, ConfigError
from seqweave.tokenizers import TOKENIZER_FILE, Tokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
GENERATION_FILE = "generation_config.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to produce the file, fsync it, then rename it onto ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)


def write_json(path: str | Path, value: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2) + "\n"))


def save_model_dir(
    directory: str | Path,
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    decode: DecodeConfig | None = None,
) -> Path:
    """Write the four files of a model directory (each atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / CONFIG_FILE, to_dict(model.config))
    atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_model(model, str(tmp)))
    atomic_write(directory / TOKENIZER_FILE, lambda tmp: tokenizer.backend.save(str(tmp)))
    write_json(directory / GENERATION_FILE, changed_fields(decode or DecodeConfig()))
    return directory


def changed_fields(config) -> dict[str, Any]:
    """The fields that differ from the defaults: what a model directory pins down, so that
    settings it never chose follow the library's defaults."""
    default = to_dict(type(config)())
    return {k: v for k, v in to_dict(config).items() if v != default[k]}


def _refuse_pickles(directory: Path) -> None:
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{directory}: no {WEIGHTS_FILE}, only {', '.join(pickles)}; seqweave never "
            "unpickles weight files (they can run code). Convert them to safetensors first."
        )


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return value


def load_model_config(directory: Path) -> ModelConfig:
    try:
        return from_dict(ModelConfig, read_json(directory / CONFIG_FILE))
    except ConfigError as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {error}") from None


def load_decode_config(directory: Path) -> DecodeConfig:
    path = directory / GENERATION_FILE
    if not path.exists():
        return DecodeConfig()
    try:
        return from_dict(DecodeConfig, read_json(path))
    except ConfigError as error:
        raise CheckpointError(f"{path}: {error}") from None


def load_tokenizer(directory: Path, config: ModelConfig) -> Tokenizer:
    """The directory's tokenizer, with its special tokens named by the ids in ``config``
    (a Marian vocabulary has no ``<s>``; its start and end tokens are both ``</s>``)."""
    names = {}
    try:
        backend = tokenizers.Tokenizer.from_file(str(directory / TOKENIZER_FILE))
    except Exception:  # Tokenizer.load below reports what is wrong with the file
        backend = None
    if backend is not None:
        for role in ("pad", "bos", "eos"):
            token = backend.id_to_token(getattr(config, f"{role}_id"))
            if token is not None:
                names[role] = token
    return Tokenizer.load(directory, **names)


def require_weights(directory: Path) -> Path:
    """The weights file of a model directory; a directory with only pickles is refused."""
    path = directory / WEIGHTS_FILE
    if not path.exists():
        _refuse_pickles(directory)
        raise CheckpointError(f"{path} is missing")
    return path


def load_weights(model: torch.nn.Module, directory: Path) -> None:
    """Load ``model.safetensors`` into ``model`` strictly (every tensor, every shape)."""
    path = require_weights(directory)
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is corrupt or unreadable: {error}") from None
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit the model in {CONFIG_FILE}: {error}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match {CONFIG_FILE}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is corrupt or unreadable: {error}") from None


# -- training checkpoints --------------------------------------------------------------------


def publish_checkpoint(out_dir: Path, step: int, write: Callable[[Path], None]) -> Path:
    """Assemble checkpoint ``step`` with ``write(tmp_dir)``, rename it into place and point
    ``out_dir/last`` at it. Returns the final directory."""
    root = out_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write(tmp)
    fsync_directory(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_directory(root)
    point_link(out_dir / "last", final)
    return final


def point_link(link: Path, target: Path) -> None:
    """Atomically make ``link`` a relative symlink to ``target``."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)
    fsync_directory(link.parent)


def prune_checkpoints(out_dir: Path, keep: int) -> None:
    """Delete old step directories and leftovers of interrupted saves, sparing the
    newest ``keep`` and whatever ``last``/``best`` point at."""
    root = out_dir / "checkpoints"
    if not root.is_dir():
        return
    for leftover in root.glob(".tmp-step-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    steps = sorted(root.glob("step-*"))
    pinned = {(out_dir / name).resolve() for name in ("last", "best") if (out_dir / name).exists()}
    for old in steps[: max(0, len(steps) - keep)]:
        if old.resolve() not in pinned:
            shutil.rmtree(old, ignore_errors=True)
