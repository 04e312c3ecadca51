"""The parallel context from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

Without those variables everything is a single process and every collective
is a no-op, so the training loop has one code path.

With ``train.sequence_parallel = N`` the ranks form groups of N consecutive ranks;
the ranks of a group take the same examples and each holds one shard of every
sequence (``models/seqpar``), and the groups are data parallel. Gradients are
averaged over all ranks either way (DDP, or FSDP2 with ``train.fsdp``): a rank's
gradient is that of its shard's loss, and the loop's loss weight (world size /
tokens) turns the average into the single-process gradient.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seqweave.errors import ConfigError
from seqweave.models.seqpar.model import SequenceParallel, sequence_shard
from seqweave.train.fsdp import shard_model


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    sequence_parallel: int = 1  # ranks per sequence
    attention: str = "ring"  # the sequence-parallel attention (models/seqpar ATTENTION)
    fsdp: bool = False
    sequence_group: object = None  # this rank's process group of sequence shards

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def data_rank(self) -> int:
        """Which slice of each batch this rank's group of sequence shards trains on."""
        return self.rank // self.sequence_parallel

    @property
    def data_size(self) -> int:
        return self.world_size // self.sequence_parallel

    @classmethod
    def from_environment(cls, device_type: str, train=None) -> Distributed:
        """Join the process group torchrun set up: gloo on CPU, NCCL on CUDA; ``train``
        (a TrainConfig) asks for sequence parallelism and FSDP.

        Raises:
            ConfigError: sequence parallelism or FSDP without torchrun, or a world size
                that is not a multiple of ``train.sequence_parallel``.
        """
        sp = train.sequence_parallel if train is not None else 1
        fsdp = bool(train is not None and train.fsdp)
        attention = train.sequence_parallel_attention if train is not None else "ring"
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            if sp > 1 or fsdp:
                raise ConfigError(
                    "train.sequence_parallel > 1 and train.fsdp run under torchrun "
                    "(torchrun --nproc-per-node N -m seqweave train CONFIG)"
                )
            return cls()
        if world_size % sp:
            raise ConfigError(f"train.sequence_parallel={sp} does not divide {world_size} ranks")
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        group = None
        if 1 < sp < world_size:  # every rank creates every group, in the same order
            for first in range(0, world_size, sp):
                created = dist.new_group(list(range(first, first + sp)))
                if first <= rank < first + sp:
                    group = created
        return cls(rank, world_size, local_rank, sp, attention, fsdp, group)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over ranks (in place); identity in a single process."""
        if self.enabled:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def minimum(self, value: int, device: torch.device) -> int:
        """The smallest of the ranks' values; the value itself in a single process."""
        if not self.enabled:
            return value
        tensor = torch.tensor(value, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor)

    def gather_objects(self, value) -> list:
        """Every rank's ``value`` (picklable built-ins only), in rank order, on every rank."""
        if not self.enabled:
            return [value]
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def shard_sequences(self, batch, pad_id: int):
        """This rank's shard of every sequence of a collated batch (the whole batch without
        sequence parallelism); the source lengths stay those of the whole sources."""
        if self.sequence_parallel == 1:
            return batch
        rank, size = self.rank % self.sequence_parallel, self.sequence_parallel

        def cut(tensor, pad):
            return None if tensor is None else sequence_shard(tensor, rank, size, pad)

        return dataclasses.replace(
            batch,
            src=cut(batch.src, pad_id),
            tgt_in=cut(batch.tgt_in, pad_id),
            tgt_out=cut(batch.tgt_out, pad_id),
            original=cut(batch.original, pad_id),
            corrupted=cut(batch.corrupted, False),
        )

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """What the training pass runs: the model on sequence shards when asked, under DDP,
        or under FSDP2 (``fsdp.py``)."""
        if not self.enabled:
            return model
        if self.sequence_parallel > 1:
            model = SequenceParallel(model, self.attention, self.sequence_group)
        if self.fsdp:
            return shard_model(model, device)
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        """Drain each group's queue before tearing down. A gloo worker thread destroys a
        finished collective after reporting it done; if the group is destroyed meanwhile
        (DDP's reducer holds the last reference when ``train`` returns), the main thread
        joins that thread while holding the GIL the thread needs to free the collective's
        Python tensors: a hang at exit. A second barrier is queued only after the first
        is destroyed, and holds no Python tensor itself."""
        if self.enabled and dist.is_initialized():
            groups = [None] if self.sequence_group is None else [None, self.sequence_group]
            for group in groups:  # the same order on every rank
                dist.barrier(group=group)
                dist.barrier(group=group)
            dist.destroy_process_group()
