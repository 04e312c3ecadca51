"""Sequence parallelism: each variant on 2 and 4 gloo processes equals single-process
attention (outputs and gradients of q, k, v in float64), and a model trained on sequence
shards follows the single-process loss curve.

Every rank computes the single-process reference itself (same seed, same tensors) and
compares its own shard, so a worker's assertion error fails the spawn and the test.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from seqweave.models.seqpar import ATTENTION
from seqweave.models.seqpar.model import SequenceParallel, sequence_shard, shard_length
from tests.conftest import tiny_model

TOLERANCE = 1e-10
HEADS = 4  # a multiple of 2 and 4, for Ulysses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, job: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        JOBS[job](rank, world)
    finally:
        dist.destroy_process_group()


def _spawn(job: str, world: int) -> None:
    mp.spawn(_worker, args=(world, _free_port(), job), nprocs=world, join=True)


# -- attention ---------------------------------------------------------------------------


def _reference(q, k, v, lengths, causal: bool):
    """Single-process attention over whole sequences, float64, with its gradients."""
    S = k.shape[2]
    mask = (torch.arange(S)[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, S)
    if causal:
        mask = mask & torch.ones(q.shape[2], S, dtype=torch.bool).tril()[None, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _shard(x, rank: int, world: int, dim: int = 2):
    T = x.shape[dim] // world
    return x.narrow(dim, rank * T, T).detach().clone().requires_grad_(x.requires_grad)


def _attention_case(rank, world, variant, causal, L, S, seed):
    """One case: queries over L positions, keys over S (L = S for self-attention)."""
    g = torch.Generator().manual_seed(seed)
    B, Dh = 3, 5

    def leaf(T):
        return torch.randn(B, HEADS, T, Dh, generator=g, dtype=torch.float64).requires_grad_()

    q, k, v = leaf(L), leaf(S), leaf(S)
    lengths = torch.tensor([S, 1 + S // 3, S - 1])  # padded rows; every row sees a key
    upstream = torch.randn(B, HEADS, L, Dh, generator=g, dtype=torch.float64)
    expected = _reference(q, k, v, lengths, causal)
    expected.backward(upstream)

    parts = [_shard(t, rank, world) for t in (q, k, v)]
    key_mask = _shard((torch.arange(S)[None, :] < lengths[:, None]), rank, world, dim=1)
    out = ATTENTION[variant](*parts, key_mask, causal, None)
    out.backward(_shard(upstream, rank, world))
    where = f"{variant} causal={causal} L={L} S={S} rank {rank}/{world}"
    torch.testing.assert_close(
        out, _shard(expected, rank, world), rtol=0, atol=TOLERANCE, msg=where
    )
    for name, mine, full in zip("qkv", parts, (q, k, v), strict=True):
        torch.testing.assert_close(
            mine.grad, _shard(full.grad, rank, world), rtol=0, atol=TOLERANCE, msg=name + where
        )


def _attention_job(rank: int, world: int) -> None:
    seed = 0
    for variant in ATTENTION:
        for causal in (False, True):
            seed += 1
            _attention_case(rank, world, variant, causal, 3 * world, 3 * world, seed)
        seed += 1  # cross-attention: a sharded decoder over a sharded, padded memory
        _attention_case(rank, world, variant, False, 2 * world, 5 * world, seed)


# -- training ----------------------------------------------------------------------------

STEPS = 50


def _batch(g: torch.Generator):
    """A random batch of ragged sources and targets; pad id 0."""
    B, S, T = 3, int(torch.randint(3, 14, (1,), generator=g)), int(torch.randint(2, 9, (1,)))
    src = torch.randint(4, 50, (B, S), generator=g)
    lengths = torch.randint(1, S + 1, (B,), generator=g)
    lengths[0] = S
    src[torch.arange(S)[None, :] >= lengths[:, None]] = 0
    tgt = torch.randint(4, 50, (B, T + 1), generator=g)
    tgt[1, T // 2 + 1 :] = 0  # a shorter target
    return src, lengths, tgt[:, :-1], tgt[:, 1:]


def _loss(logits, targets, tokens: int):
    flat = logits.reshape(-1, logits.shape[-1])
    return F.cross_entropy(flat, targets.reshape(-1), ignore_index=0, reduction="sum") / tokens


def _training_job(rank: int, world: int) -> None:
    """Single-process and sequence-parallel Adam on the same batches: equal losses. The
    variant changes every step, so one run trains through all three."""
    reference = tiny_model(seed=5, encoder_layers=1, decoder_layers=1).double().train()
    model = copy.deepcopy(reference)
    sharded = SequenceParallel(model, "ring")
    opt_ref = torch.optim.Adam(reference.parameters(), lr=1e-2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(7)
    losses = []
    for step in range(STEPS):
        src, lengths, tgt_in, tgt_out = _batch(g)
        tokens = int((tgt_out != 0).sum())
        expected = _loss(reference(src, lengths, tgt_in), tgt_out, tokens)
        expected.backward()
        opt_ref.step()
        opt_ref.zero_grad()

        sharded.variant = list(ATTENTION)[step % len(ATTENTION)]
        local = [sequence_shard(x, rank, world, 0) for x in (src, tgt_in, tgt_out)]
        loss = _loss(sharded(local[0], lengths, local[1]), local[2], tokens)
        loss.backward()
        for p in model.parameters():
            dist.all_reduce(p.grad)
        opt.step()
        opt.zero_grad()
        total = loss.detach().clone()
        dist.all_reduce(total)
        assert abs(float(total) - float(expected)) < 1e-4, (sharded.variant, step)
        losses.append(float(expected))
    assert sum(losses[-10:]) < sum(losses[:10]), "the runs must actually have trained"


def _both_jobs(rank: int, world: int) -> None:
    _attention_job(rank, world)
    _training_job(rank, world)


JOBS = {"attention": _attention_job, "both": _both_jobs}


def test_shard_length_pads_to_a_multiple_of_the_group():
    x = torch.arange(10).view(2, 5)
    assert shard_length(5, 4) == 2
    shards = [sequence_shard(x, r, 4, -1) for r in range(4)]
    assert torch.equal(torch.cat(shards, 1)[:, :5], x)
    assert (torch.cat(shards, 1)[:, 5:] == -1).all()


def test_two_processes_attention_and_training_equal_single_process():
    _spawn("both", 2)


@pytest.mark.slow
def test_four_processes_attention_equals_single_process():
    _spawn("attention", 4)


# -- end to end ----------------------------------------------------------------------------

E2E_CONFIG = """
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
train = "{train}"
max_tokens = 300
[train]
max_steps = 4
validate_every = 4
warmup_steps = 1
lr = 0.01
metric = "none"
progress = false
log_every = 1
"""


def torchrun(config, out_dir, *overrides: str, resume: bool = False, processes: int = 2) -> None:
    """``torchrun --nproc-per-node N -m seqweave train CONFIG`` with ``--set`` overrides."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes)]
    command += ["--standalone", "-m", "seqweave", "train", str(config)]
    for override in (f"train.out_dir={out_dir}", *overrides):
        command += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command + ["--resume"] * resume, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def train_losses(out_dir) -> list[float]:
    from seqweave.train.report import read_metrics

    return [r["loss"] for r in read_metrics(out_dir / "metrics.jsonl") if r["kind"] == "train"]


def assert_same_weights(directory, reference_directory) -> None:
    """Equal weights, but for key biases: their gradient is exactly 0 (softmax ignores a
    score added to every key), so Adam steps on rounding noise there."""
    from safetensors.torch import load_file

    expected = load_file(str(reference_directory / "model.safetensors"))
    got = load_file(str(directory / "model.safetensors"))
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        mine, theirs = got[name].clone(), tensor.clone()
        keys = {"attn.qkv.bias": slice(16, 32), "cross.kv.bias": slice(0, 16)}.get(
            ".".join(name.split(".")[-3:])
        )
        if keys is not None:
            mine[keys] = theirs[keys] = 0.0
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4, msg=name)


def single_process_run(tmp_path):
    """A tiny config and its single-process run's directory."""
    from seqweave.config import load_config
    from seqweave.train import train
    from tests.conftest import write_edit_task

    train_file, _ = write_edit_task(tmp_path, n_train=60, n_valid=4)
    config = tmp_path / "tiny.toml"
    config.write_text(E2E_CONFIG.format(train=train_file))
    single = tmp_path / "single"
    train(load_config(config, [f"train.out_dir={single}"]))
    assert len(train_losses(single)) == 4
    return config, single


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_torchrun_trains_sequence_parallel_like_one_process(tmp_path, processes):
    """``torchrun --nproc-per-node N -m seqweave train`` with ``train.sequence_parallel = 2``
    takes the single-process steps: the same losses and weights. With 4 processes, two
    data-parallel groups of two sequence shards each."""
    config, single = single_process_run(tmp_path)
    parallel = tmp_path / "parallel"
    torchrun(config, parallel, "train.sequence_parallel=2", processes=processes)
    assert train_losses(parallel) == pytest.approx(train_losses(single), abs=1e-4)
    assert_same_weights(parallel / "last", single / "last")


@pytest.mark.parametrize(
    "train, model, message",
    [
        (dict(sequence_parallel=0), {}, "must be >= 1"),
        (dict(sequence_parallel_attention="flash"), {}, "is not one of"),
        (dict(sequence_parallel=2), dict(architecture="prefix_lm"), "architecture"),
        (dict(sequence_parallel=2), dict(attention_dropout=0.1), "attention_dropout"),
        (
            dict(sequence_parallel=4, sequence_parallel_attention="ulysses"),
            dict(num_heads=2, d_model=16),
            "multiple of 4",
        ),
    ],
)
def test_config_refuses_what_the_sharded_pass_cannot_do(train, model, message):
    from seqweave.config import ExperimentConfig, ModelConfig, TrainConfig
    from seqweave.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(model=ModelConfig(**model), train=TrainConfig(**train))


def test_sequence_parallel_without_torchrun_is_refused(monkeypatch):
    from seqweave.config import TrainConfig
    from seqweave.errors import ConfigError
    from seqweave.train.distributed import Distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ConfigError, match="torchrun"):
        Distributed.from_environment("cpu", TrainConfig(sequence_parallel=2))
    with pytest.raises(ConfigError, match="torchrun"):
        Distributed.from_environment("cpu", TrainConfig(fsdp=True))
    assert not Distributed.from_environment("cpu", TrainConfig()).enabled
