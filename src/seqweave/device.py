"""Device selection shared by training, generation and the benchmarks."""

from __future__ import annotations

import platform

import torch

from seqweave.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an unavailable device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device


def describe_machine(device: str, runs_at_a_time: int = 1) -> str:
    """Where a recipe's figures were measured, for its results file: the GPU's name or the
    CPU's architecture (one thread per run), how many runs shared it, and torch's version,
    since side-by-side timings only compare within one such line."""
    if device.startswith("cuda"):
        where = torch.cuda.get_device_name(torch.device(device))
    else:
        where = f"{platform.machine()} CPU, 1 thread per run"
    return f"{where}, {runs_at_a_time} run(s) at a time, torch {torch.__version__}"
