"""The ``[rl]`` section: reinforcement learning on a reward instead of the token loss.

With ``rl.algorithm`` set, ``seqweave train`` starts from ``train.init_from`` (the supervised
model, which also stays frozen as the KL reference) and, per update, samples outputs for
``rl.sources_per_step`` training sources, scores them with the reward ``rl.reward`` names
(``seqweave.rewards.REWARDS``) and takes a policy-gradient step (``seqweave.train.rl``).
The checks that need other sections (``train.init_from``, the architecture) are in
``seqweave.config_checks.check_rl``.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqweave.errors import ConfigError

ALGORITHMS = ("off", "grpo", "reinforce")
BASELINES = ("batch", "running")


@dataclass(frozen=True)
class RLConfig:
    # off: ordinary training on the token loss | grpo: group-relative advantages over
    # group_size samples of each source, KL to the reference | reinforce: one baseline for
    # all samples (the batch mean or a running mean of rewards), KL likewise
    algorithm: str = "off"
    reward: str = "score"  # a name of seqweave.rewards.REWARDS
    reward_model: str = ""  # a model-based reward's model directory (its builder reads it)
    group_size: int = 4  # samples per source
    sources_per_step: int = 8  # sources per micro-batch (rows: sources * group_size)
    kl_coef: float = 0.04  # beta of the per-token k3 KL penalty to the reference model
    clip_eps: float = 0.2  # PPO-style clip of the probability ratio (inner_steps > 1)
    inner_steps: int = 1  # gradient steps per sampled batch; the first has ratio 1
    temperature: float = 1.0  # of the sampling decoder
    top_k: int = 0  # of the sampling decoder (0: all tokens)
    max_new_tokens: int = 256  # per sampled output; a cut output gets no end token
    baseline: str = "batch"  # reinforce: batch (the micro-batch's mean) | running
    baseline_momentum: float = 0.9  # reinforce with a running baseline

    @property
    def on(self) -> bool:
        return self.algorithm != "off"

    def __post_init__(self) -> None:
        for name, valid in (("algorithm", ALGORITHMS), ("baseline", BASELINES)):
            if getattr(self, name) not in valid:
                raise ConfigError(
                    f"rl.{name}={getattr(self, name)!r} is not one of {', '.join(valid)}"
                )
        from seqweave.rewards import REWARDS  # imported here: rewards may import models

        if self.reward not in REWARDS:
            raise ConfigError(f"rl.reward={self.reward!r} is not one of {', '.join(REWARDS)}")
        least = 2 if self.algorithm == "grpo" else 1  # one sample: every advantage is 0
        for name, low in (
            ("group_size", least),
            ("sources_per_step", 1),
            ("inner_steps", 1),
            ("max_new_tokens", 1),
            ("top_k", 0),
        ):
            if getattr(self, name) < low:
                raise ConfigError(f"rl.{name} must be >= {low}, got {getattr(self, name)}")
        if self.kl_coef < 0:
            raise ConfigError(f"rl.kl_coef must be >= 0, got {self.kl_coef}")
        if self.temperature <= 0:
            raise ConfigError(f"rl.temperature must be > 0, got {self.temperature}")
        if not 0 < self.clip_eps < 1:
            raise ConfigError(f"rl.clip_eps must be in (0, 1), got {self.clip_eps}")
        if not 0 <= self.baseline_momentum < 1:
            raise ConfigError(
                f"rl.baseline_momentum must be in [0, 1), got {self.baseline_momentum}"
            )
