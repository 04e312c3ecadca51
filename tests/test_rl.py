"""Policy-gradient training (seqweave.train.rl): advantages, the KL estimator, one GRPO step,
the [rl] section's errors, and `seqweave train` end to end with a reward."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch

from seqweave.config import (
    DataConfig,
    DecodeConfig,
    ExperimentConfig,
    ModelConfig,
    RLConfig,
    TokenizerConfig,
    TrainConfig,
    from_dict,
)
from seqweave.decoding import decode_many
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.rewards import REWARDS
from seqweave.train import train
from seqweave.train.report import read_metrics
from seqweave.train.rl import PolicyLoss, group_advantages, k3_kl, sample_batch, token_logprobs

TINY = ModelConfig(
    vocab_size=12, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=1, ffn_dim=32,
    dropout=0.0, max_positions=32,
)  # fmt: skip
PREFERRED = 7  # the token the toy reward likes


def test_group_advantages_are_zero_mean_per_group_and_zero_for_a_uniform_group():
    rewards = torch.tensor([0.1, 0.5, 0.9, 0.3, 2.0, 2.0, 2.0, 2.0, 0.0, 1.0, 0.0, 1.0])
    advantages = group_advantages(rewards, 4).view(3, 4)
    assert torch.allclose(advantages.mean(dim=1), torch.zeros(3), atol=1e-6)
    assert torch.equal(advantages[1], torch.zeros(4))  # uniform: nothing to learn
    assert torch.allclose(advantages[2], torch.tensor([-1.0, 1.0, -1.0, 1.0]), atol=1e-3)
    # relative to the group, not the batch: shifting one group's rewards changes nothing
    shifted = rewards.clone()
    shifted[:4] += 10
    assert torch.allclose(group_advantages(shifted, 4), advantages.reshape(-1), atol=1e-5)


def test_k3_is_an_unbiased_kl_estimate_and_zero_where_policy_is_reference():
    torch.manual_seed(0)
    p = torch.randn(10).log_softmax(0)
    q = torch.randn(10).log_softmax(0)
    exact = (p.exp() * (p - q)).sum()  # KL(policy || reference), enumerated
    expected_k3 = (p.exp() * k3_kl(p, q)).sum()  # E over the policy's tokens
    assert torch.allclose(expected_k3, exact, atol=1e-6)
    assert (k3_kl(p, q) >= 0).all()
    assert torch.equal(k3_kl(p, p), torch.zeros(10))


def sources_batch(n: int = 4) -> list[list[int]]:
    generator = torch.Generator().manual_seed(1)
    return [[*torch.randint(3, 12, (5,), generator=generator).tolist(), 2] for _ in range(n)]


def sampled(model, sources, group: int, seed: int = 0):
    rows = [s for s in sources for _ in range(group)]
    decode = DecodeConfig(decoder="sample", max_new_tokens=6, batch_size=64, seed=seed)
    outputs = decode_many(model, rows, decode)
    rewards = torch.tensor([o.tokens.count(PREFERRED) / 6 for o in outputs])
    return sample_batch(rows, outputs, model.config), rewards


def test_kl_is_zero_and_a_uniform_group_gives_no_gradient_when_policy_is_reference():
    torch.manual_seed(0)
    policy = build_model(TINY).eval()
    reference = copy.deepcopy(policy)
    batch, _ = sampled(policy, sources_batch(), group=4)
    logp = token_logprobs(policy, batch)
    with torch.no_grad():
        ref_logp = token_logprobs(reference, batch)
    mask = batch.tgt_out != TINY.pad_id
    advantages = group_advantages(torch.full((len(mask),), 0.5), 4)
    loss, parts = PolicyLoss(kl_coef=0.1, clip_eps=0.2)(
        logp, logp.detach(), ref_logp, advantages, mask
    )
    assert parts["kl"] == 0.0
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in policy.parameters())


def first_token_probability(model, sources) -> float:
    """Mean probability of PREFERRED as the first output token over ``sources``."""
    batch = sample_batch(sources, [_Empty() for _ in sources], model.config)
    with torch.no_grad():
        logits = model(batch.src, batch.src_lengths, batch.tgt_in[:, :1])
    return float(logits[:, 0].softmax(-1)[:, PREFERRED].mean())


class _Empty:  # an output that ended at once: its batch holds the end token only
    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.finished = True


def test_one_grpo_step_raises_the_probability_of_the_rewarded_token():
    torch.manual_seed(0)
    policy = build_model(TINY).eval()
    reference = copy.deepcopy(policy)
    sources = sources_batch()
    before = first_token_probability(policy, sources)
    batch, rewards = sampled(policy, sources, group=8)
    assert rewards.std() > 0  # the toy reward separates the samples
    logp = token_logprobs(policy, batch)
    with torch.no_grad():
        ref_logp = token_logprobs(reference, batch)
    mask = batch.tgt_out != TINY.pad_id
    loss, _ = PolicyLoss(kl_coef=0.04, clip_eps=0.2)(
        logp, logp.detach(), ref_logp, group_advantages(rewards, 8), mask
    )
    loss.backward()
    torch.optim.SGD(policy.parameters(), lr=0.5).step()
    assert first_token_probability(policy, sources) > before * 1.1


def test_clipped_ratio_stops_the_gradient_past_the_clip():
    logp = torch.tensor([[math.log(0.5)]], requires_grad=True)
    old = torch.tensor([[math.log(0.3)]])  # ratio 1.67 > 1 + eps
    mask = torch.ones(1, 1, dtype=torch.bool)
    loss, _ = PolicyLoss(kl_coef=0.0, clip_eps=0.2)(logp, old, logp.detach(), torch.ones(1), mask)
    loss.backward()
    assert logp.grad is not None and logp.grad.abs().item() == 0.0
    assert loss.item() == pytest.approx(-1.2)


@pytest.mark.parametrize(
    ("rl", "field"),
    [
        ({"algorithm": "ppo"}, "rl.algorithm"),
        ({"algorithm": "grpo", "group_size": 1}, "rl.group_size"),
        ({"algorithm": "grpo", "kl_coef": -0.1}, "rl.kl_coef"),
        ({"algorithm": "grpo", "temperature": 0}, "rl.temperature"),
        ({"algorithm": "grpo", "reward": "bleu"}, "rl.reward"),
        ({"algorithm": "reinforce", "baseline": "median"}, "rl.baseline"),
        ({"algorithm": "grpo", "clip_eps": 1.5}, "rl.clip_eps"),
        ({"algorithm": "grpo", "max_new_tokens": 0}, "rl.max_new_tokens"),
        ({"algorithm": "grpo", "steps": 3}, "rl.steps"),
    ],
)
def test_bad_rl_settings_name_the_field(rl, field):
    values = {"train": {"init_from": "some/model"}, "rl": rl}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        from_dict(ExperimentConfig, values)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({}, "train.init_from"),
        ({"train": {"init_from": "m"}, "model": {"architecture": "nar_drafter"}}, "architecture"),
        ({"train": {"init_from": "m", "fsdp": True}}, "train.fsdp"),
        ({"train": {"init_from": "m"}, "objectives": {"claps": {"weight": 1.0}}}, "claps"),
    ],
)
def test_rl_refuses_what_it_cannot_train(values, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        from_dict(ExperimentConfig, {**values, "rl": {"algorithm": "grpo"}})
    assert not RLConfig().on


def write_toy_task(directory: Path) -> tuple[Path, Path]:
    """Copy a word list: enough for a few supervised steps to give a model that decodes."""
    import json
    import random

    rng = random.Random(0)
    words = ["red", "green", "blue", "yes", "no"]
    for name, n in (("train", 80), ("valid", 8)):
        with (directory / f"{name}.jsonl").open("w") as handle:
            for _ in range(n):
                text = " ".join(rng.choice(words) for _ in range(3))
                handle.write(json.dumps({"source": text, "target": text}) + "\n")
    return directory / "train.jsonl", directory / "valid.jsonl"


def toy_config(tmp_path: Path, out: str, **sections) -> ExperimentConfig:
    train_file, valid_file = write_toy_task(tmp_path)
    train_values = dict(
        out_dir=str(tmp_path / out), max_steps=6, validate_every=3, warmup_steps=1,
        log_every=1, metric="none", progress=False, seed=2, lr=3e-3,
    )  # fmt: skip
    train_values |= sections.pop("train", {})
    return ExperimentConfig(
        model=ModelConfig(
            d_model=16,
            num_heads=2,
            encoder_layers=1,
            decoder_layers=1,
            ffn_dim=32,
            max_positions=16,
            dropout=0.0,
        ),
        tokenizer=TokenizerConfig(kind="words", vocab_size=20, min_frequency=1),
        data=DataConfig(train=str(train_file), valid=str(valid_file), max_tokens=120),
        train=TrainConfig(**train_values),
        **sections,
    )


def yes_share(config) -> object:
    """A toy reward: the share of the output's words that are "yes"."""

    def reward(source: str, output: str, reference: str) -> float:
        words = output.split()
        return words.count("yes") / max(len(words), 1)

    return reward


@pytest.mark.parametrize("algorithm", ["grpo", "reinforce"])
def test_seqweave_train_runs_rl_from_the_supervised_model(tmp_path, monkeypatch, algorithm):
    monkeypatch.setitem(REWARDS, "yes_share", yes_share)
    sft = train(toy_config(tmp_path, "sft"))
    rl = RLConfig(
        algorithm=algorithm, reward="yes_share", group_size=4, sources_per_step=4,
        max_new_tokens=5, baseline="running",
    )  # fmt: skip
    best = train(toy_config(tmp_path, "rl", rl=rl, train={"init_from": str(sft)}))
    assert (best / "model.safetensors").exists()
    records = read_metrics(tmp_path / "rl" / "metrics.jsonl")
    steps = [r for r in records if r["kind"] == "rl"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert all(0.0 <= r["reward"] <= 1.0 and r["kl"] >= 0.0 for r in steps)
    assert [r["step"] for r in records if r["kind"] == "valid" and "valid_reward" in r] == [3, 6]


def test_rl_refuses_a_policy_of_another_shape_than_its_reference(tmp_path):
    sft = train(toy_config(tmp_path, "sft", train={"max_steps": 1}))
    rl = RLConfig(algorithm="grpo")
    config = toy_config(tmp_path, "rl", rl=rl, train={"init_from": str(sft)})
    wider = dataclasses.replace(config, model=dataclasses.replace(config.model, ffn_dim=48))
    with pytest.raises(ConfigError, match=r"train\.init_from"):
        train(wider)
