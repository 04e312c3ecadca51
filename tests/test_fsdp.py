"""Sharded training (FSDP2 ``fully_shard``) on 2 gloo processes, with sequence parallelism
on top: the single-process losses and weights, checkpoints that load in one process, and
a resumed run that continues exactly."""

from __future__ import annotations

import pytest

import seqweave
from tests.test_sequence_parallel import (
    assert_same_weights,
    single_process_run,
    torchrun,
    train_losses,
)


@pytest.mark.slow
def test_fsdp_with_sequence_parallel_resumes_and_matches_one_process(tmp_path):
    config, single = single_process_run(tmp_path)
    sharded = tmp_path / "sharded"
    options = ("train.fsdp=true", "train.sequence_parallel=2")
    options += ("train.sequence_parallel_attention=ring_self",)
    torchrun(config, sharded, *options, "train.max_steps=2")
    halfway = seqweave.load(sharded / "last")  # a plain model, loaded in this process
    assert not any(type(p).__name__ == "DTensor" for p in halfway.network.parameters())
    torchrun(config, sharded, *options, resume=True)
    assert train_losses(sharded) == pytest.approx(train_losses(single), abs=1e-5)
    assert_same_weights(sharded / "last", single / "last")
