"""Sharded training with PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``).

Every rank holds 1/N of each parameter, gradient and optimizer moment; the forward
gathers the parameters and the backward reduce-scatters (averages) the gradients, so
an update equals data parallelism's. The whole model (or its sequence-parallel wrapper)
is one FSDP unit: the layers call each other's ``forward`` directly (the fast paths of
``models/layers.py``), which would skip the hooks of per-layer units.

``fully_shard`` replaces the parameters with sharded ones (DTensors), so the optimizer
built before it is built again over them (``reshard_optimizer``, which also carries over a
resumed state), and a checkpoint gathers full tensors first (``full_copy``), so it stays
the single-process checkpoint: atomic safetensors that load in one process.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor

from seqweave.models import build_model


def shard_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Shard ``model`` in place over all ranks; returns it (what the pass calls)."""
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    fully_shard(model, mesh=mesh)
    return model


def reshard_optimizer(
    optimizer: torch.optim.Optimizer, rebuilt: torch.optim.Optimizer
) -> torch.optim.Optimizer:
    """``rebuilt`` (the same optimizer built again over the sharded parameters) with
    ``optimizer``'s state, each moment sharded like its parameter."""
    rebuilt.load_state_dict(optimizer.state_dict())
    for param, values in rebuilt.state.items():
        for name, value in values.items():
            if isinstance(param, DTensor) and torch.is_tensor(value) and value.shape == param.shape:
                values[name] = distribute_tensor(value, param.device_mesh, param.placements)
    return rebuilt


def _full(value):
    return value.full_tensor() if isinstance(value, DTensor) else value


class _Saved:
    """An optimizer's gathered state, where a checkpoint asks for ``state_dict()``."""

    def __init__(self, state: dict):
        self.state = state

    def state_dict(self) -> dict:
        return self.state


def full_copy(model: nn.Module, optimizer: torch.optim.Optimizer):
    """A plain single-process copy of a sharded model and its optimizer's full state.
    Collective: every rank calls it, in step."""
    weights = {name: _full(tensor) for name, tensor in model.state_dict().items()}
    state = optimizer.state_dict()
    state = {
        "state": {i: {k: _full(v) for k, v in s.items()} for i, s in state["state"].items()},
        "param_groups": state["param_groups"],
    }
    plain = build_model(model.config).to(next(iter(weights.values())).device)
    plain.load_state_dict(weights)
    return plain, _Saved(state)
