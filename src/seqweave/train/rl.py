"""Policy-gradient fine-tuning on a reward: GRPO and REINFORCE with a baseline (``[rl]``).

Per update, for ``rl.sources_per_step`` training sources, the policy samples
``rl.group_size`` outputs each with seqweave's sampling decoder; the reward
(``seqweave.rewards``) scores every output against the example's target; advantages are

- GRPO (Shao et al. 2024, DeepSeekMath): group-relative, ``(r - mean_g) / (std_g + eps)``
  over the samples of one source, so a group whose samples all score alike teaches nothing;
- REINFORCE: ``r - b`` with one baseline ``b`` for all samples, the micro-batch's mean
  reward or a running mean of earlier batches (``rl.baseline``).

The loss is token-level: every sampled token carries its sequence's advantage, and the
per-token loss ``-min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) + beta * KL`` is averaged
over all sampled tokens of the update (DAPO's token mean, rather than GRPO's mean of
per-sequence means, so a long answer is not weighted down per token). ``ratio`` is the
probability of the token under the policy over its probability when sampled: exactly 1 on
the first of ``rl.inner_steps`` steps, clipped on the later ones. KL is the k3 estimator
to the frozen reference model (``train.init_from``), ``exp(q - p) - (q - p) - 1`` with p, q
the policy's and the reference's log-probabilities: non-negative, and zero with a zero
gradient where the two agree. Log-probabilities are of ``logits / rl.temperature``, the
distribution that was sampled. Dropout is off throughout, so the sampling policy and the
trained one are the same function.

The trainer is the supervised one with its batches, update and validation replaced, so
logging, checkpoints (safetensors, atomic), ``best`` and resume are the ordinary ones; a
step of the log is one sampled batch, and ``best`` is the checkpoint with the highest mean
reward of greedy outputs on the validation set.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch import Tensor

from seqweave.checkpoint import load_model_config, load_weights
from seqweave.config import DecodeConfig
from seqweave.decoding import decode_many
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.rewards import Reward, build_reward
from seqweave.train.batches import EpochBatches, MicroBatch, Update
from seqweave.train.data import Batch
from seqweave.train.loop import Trainer, learning_rate
from seqweave.train.validate import validation_loss

EPS = 1e-4  # in the group's standard deviation: a uniform group gets advantage 0, not 0 / 0


def group_advantages(rewards: Tensor, group_size: int, eps: float = EPS) -> Tensor:
    """GRPO's advantages: (N,) rewards, consecutive groups of ``group_size`` samples of one
    source -> (N,) ``(r - group mean) / (group std + eps)`` (population std)."""
    groups = rewards.view(-1, group_size)  # (N / G, G)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, unbiased=False, keepdim=True)
    return ((groups - mean) / (std + eps)).reshape(-1)


def k3_kl(policy: Tensor, reference: Tensor) -> Tensor:
    """Per-token KL estimate (k3, Schulman 2020) from the sampled tokens' log-probabilities
    under the policy and the reference (same shapes): ``exp(q - p) - (q - p) - 1 >= 0``.

    Written with ``expm1`` and floored at 0: ``exp(d) - d - 1`` in float32 rounds to a
    small negative number for a tiny ``d`` (policy and reference equal but for rounding)."""
    log_ratio = reference - policy
    return (torch.expm1(log_ratio) - log_ratio).clamp_min(0.0)


@dataclass
class PolicyLoss:
    """The clipped token-level policy-gradient loss with the KL penalty."""

    kl_coef: float
    clip_eps: float

    def __call__(
        self, logp: Tensor, old_logp: Tensor, ref_logp: Tensor, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Log-probabilities (B, T) of the sampled tokens, advantages (B,), mask (B, T) True
        at real tokens -> (the mean over real tokens, its parts for the log)."""
        ratio = torch.exp(logp - old_logp)  # (B, T)
        gain = advantages[:, None] * ratio
        clipped = advantages[:, None] * ratio.clamp(1 - self.clip_eps, 1 + self.clip_eps)
        policy = -torch.minimum(gain, clipped)
        kl = k3_kl(logp, ref_logp)
        weights = mask.float() / mask.sum().clamp(min=1)
        loss = ((policy + self.kl_coef * kl) * weights).sum()
        parts = {"kl": (kl * weights).sum(), "policy": (policy * weights).sum()}
        return loss, {name: float(value.detach()) for name, value in parts.items()}


def token_logprobs(model, batch: Batch, temperature: float = 1.0) -> Tensor:
    """Log-probabilities (B, T) of ``batch.tgt_out`` under ``model``'s teacher-forced pass,
    0 at padding."""
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    picked = logp.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(batch.tgt_out == model.config.pad_id, 0.0)


def sample_batch(sources: list[list[int]], outputs, cfg) -> Batch:
    """Sampled outputs as a teacher-forcing batch: an output that ended keeps its end token
    (its probability is part of the sample), one cut by the length limit gets none."""
    targets = [o.tokens + ([cfg.eos_id] if o.finished else []) for o in outputs]
    B, S, T = len(sources), max(map(len, sources)), max(max(map(len, targets)), 1)
    src = torch.full((B, S), cfg.pad_id, dtype=torch.long)
    tgt_in = torch.full((B, T), cfg.pad_id, dtype=torch.long)
    tgt_out = torch.full((B, T), cfg.pad_id, dtype=torch.long)
    for row, (source, target) in enumerate(zip(sources, targets, strict=True)):
        src[row, : len(source)] = torch.tensor(source)
        if not target:  # cut before its first token: nothing to learn from
            continue
        tgt_in[row, : len(target)] = torch.tensor([cfg.decoder_start_id, *target[:-1]])
        tgt_out[row, : len(target)] = torch.tensor(target)
    lengths = torch.tensor([len(s) for s in sources])
    return Batch(src, lengths, tgt_in, tgt_out, sum(map(len, targets)))


@dataclass
class Rollout:
    """One micro-batch of samples, ready for any number of inner steps."""

    batch: Batch
    advantages: Tensor  # (B,)
    old_logp: Tensor | None  # (B, T) at sampling, only kept for inner_steps > 1
    ref_logp: Tensor  # (B, T)
    rewards: list[float]


def reference_model(directory: str | Path, device: torch.device) -> torch.nn.Module:
    """The frozen model of the KL penalty: ``train.init_from`` as it was loaded."""
    model = build_model(load_model_config(Path(directory)))
    load_weights(model, Path(directory))
    model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


class PromptBatches(EpochBatches):
    """The training sources shuffled per epoch, ``rl.sources_per_step`` to a micro-batch."""

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(len(self.data.sources)))
        random.Random(self.config.train.seed * 100_003 + epoch).shuffle(order)
        size = self.config.rl.sources_per_step
        return [order[i : i + size] for i in range(0, len(order), size)]


@dataclass
class RLTrainer(Trainer):
    """``Trainer`` with the reward's batches, update and validation (the module docstring)."""

    running_baseline: float | None = field(default=None)

    def run(self) -> None:
        self._check_policy()
        super().run()

    def _check_policy(self) -> None:
        """The policy must be the reference's architecture: a weight of one that the other
        lacks would leave the policy partly untrained at the start."""
        ours = {k: v.shape for k, v in self.model.state_dict().items()}
        theirs = {k: v.shape for k, v in self.reference.state_dict().items()}
        if ours != theirs:
            differ = sorted(set(ours.items()) ^ set(theirs.items()))[:4]
            raise ConfigError(
                f"train.init_from={self.config.train.init_from}: [model] is not that model's "
                f"architecture (weights that differ: {differ}); copy its [model] section"
            )

    @cached_property
    def reference(self) -> torch.nn.Module:
        return reference_model(self.config.train.init_from, self.device)

    @cached_property
    def reward(self) -> Reward:
        return build_reward(self.config.rl.reward, self.config.rl)

    @cached_property
    def objective(self) -> PolicyLoss:
        return PolicyLoss(self.config.rl.kl_coef, self.config.rl.clip_eps)

    def _update(self, update: Update) -> tuple[float, int]:
        """Sample and score every micro-batch of ``update`` (``PromptBatches``), then
        ``rl.inner_steps`` optimizer steps on them; returns (loss times tokens, tokens) as
        the supervised update does."""
        lr = learning_rate(self.progress.step + 1, self.config.train)
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr
        self.model.eval()  # no dropout: the sampling policy is the trained one
        rollouts = [self._rollout(micro, n) for n, micro in enumerate(update.micro)]
        tokens = sum(r.batch.num_tokens for r in rollouts)
        for _ in range(self.config.rl.inner_steps):
            loss_sum, parts = self._inner_step(rollouts, tokens)
        rewards = [value for r in rollouts for value in r.rewards]
        self.log.write(
            {
                "kind": "rl",
                "step": self.progress.step + 1,
                "reward": sum(rewards) / len(rewards),
                "reward_max": max(rewards),
                "sampled_tokens": tokens / len(rewards),
                **parts,
            }
        )
        return loss_sum * tokens, tokens

    def _inner_step(self, rollouts: list[Rollout], tokens: int) -> tuple[float, dict]:
        loss_sum, parts = 0.0, {"kl": 0.0, "policy": 0.0}
        temperature = self.config.rl.temperature
        for rollout in rollouts:
            share = rollout.batch.num_tokens / tokens
            logp = token_logprobs(self.model, rollout.batch, temperature)
            old = logp.detach() if rollout.old_logp is None else rollout.old_logp
            mask = rollout.batch.tgt_out != self.model.config.pad_id
            loss, part = self.objective(logp, old, rollout.ref_logp, rollout.advantages, mask)
            (loss * share).backward()
            loss_sum += float(loss.detach()) * share
            parts = {k: parts[k] + v * share for k, v in part.items()}
        if self.config.train.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, parts

    def _rollout(self, micro: MicroBatch, number: int) -> Rollout:
        """Sample ``group_size`` outputs per source, score them, and the advantages."""
        rl = self.config.rl
        rows = [j for j in range(len(micro.sources)) for _ in range(rl.group_size)]  # groups
        sources = [micro.sources[j] for j in rows]
        seed = (self.config.train.seed * 1_000_003 + self.progress.step) * 101 + number
        decode = DecodeConfig(
            decoder="sample",
            temperature=rl.temperature,
            top_k=rl.top_k,
            max_new_tokens=rl.max_new_tokens,
            batch_size=len(rows),
            seed=seed,
        )
        outputs = decode_many(self.model, sources, decode)
        texts = self.tokenizer.decode_batch([o.tokens for o in outputs])
        examples = [micro.examples[j] for j in rows]
        rewards = [
            self.reward(e.source, text, e.target or "")
            for e, text in zip(examples, texts, strict=True)
        ]
        batch = sample_batch(sources, outputs, self.model.config).to(self.device)
        with torch.no_grad():
            ref_logp = token_logprobs(self.reference, batch, rl.temperature)
            old = token_logprobs(self.model, batch, rl.temperature) if rl.inner_steps > 1 else None
        advantages = self._advantages(torch.tensor(rewards, device=self.device))
        return Rollout(batch, advantages, old, ref_logp, rewards)

    def _advantages(self, rewards: Tensor) -> Tensor:
        rl = self.config.rl
        if rl.algorithm == "grpo":
            return group_advantages(rewards, rl.group_size)
        mean = float(rewards.mean())
        if rl.baseline == "batch":
            return rewards - mean
        baseline = mean if self.running_baseline is None else self.running_baseline
        self.running_baseline = rl.baseline_momentum * baseline + (1 - rl.baseline_momentum) * mean
        return rewards - baseline

    def _validate(self, model: torch.nn.Module) -> dict:
        """The validation loss and the mean reward of greedy outputs (at most
        ``rl.max_new_tokens`` tokens) on up to ``train.valid_decode_limit`` validation
        examples, which picks ``best``."""
        if self.valid_set is None:
            return {}
        data, limit = self.valid_set, self.config.train.valid_decode_limit
        result = validation_loss(model, data, self.config)
        budget = min(self.config.rl.max_new_tokens, self._max_new_tokens())
        decode = DecodeConfig(max_new_tokens=budget, batch_size=64)
        outputs = decode_many(model, data.sources[:limit], decode)
        texts = self.tokenizer.decode_batch([o.tokens for o in outputs])
        rewards = [
            self.reward(e.source, text, e.target or "")
            for e, text in zip(data.examples[:limit], texts, strict=True)
        ]
        result |= {"valid_reward": sum(rewards) / max(len(rewards), 1)}
        record = {"kind": "valid", "step": self.progress.step, **result}
        self.log.write(record)
        self.log.message(
            f"step {self.progress.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in result.items())
        )
        return {**result, "score": result["valid_reward"]}
