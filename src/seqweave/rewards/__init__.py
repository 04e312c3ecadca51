"""Rewards for reinforcement learning on generated sequences: text in, a number out.

A reward is ``reward(source, output, reference) -> float``, all three strings (the example's
input, the model's decoded answer and the example's target): a rule-based reward reads the
reference and may ignore the source (SCORE does), a learnt reward model may read the source
and ignore the reference. ``REWARDS`` maps a name to a *builder* ``(rl_config) -> reward``,
so that a model-based reward loads its model from ``rl.reward_model`` when training starts
while a rule-based one needs nothing; ``[rl] reward = NAME`` picks one and the trainer
needs nothing else. A reward's module keeps its richer breakdown (``score.score``) for logs
and tests. A plain dict: nothing registers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from seqweave.rewards.score import score

if TYPE_CHECKING:
    from seqweave.config_rl import RLConfig


class Reward(Protocol):
    def __call__(self, source: str, output: str, reference: str) -> float: ...


def score_reward(source: str, output: str, reference: str) -> float:
    """Thoth's SCORE of an answer against the reference answer's ``<key>`` steps, in [0, 1]
    (the source is not read)."""
    return score(output, reference).total


def _score(config: RLConfig | None) -> Reward:
    return score_reward


def _seq2seq_rm(config: RLConfig | None) -> Reward:
    from seqweave.rewards.seq2seq_rm import build_seq2seq_rm  # loads a model: imported late

    return build_seq2seq_rm(config)


def _bradley_terry(config: RLConfig | None) -> Reward:
    from seqweave.rewards.bradley_terry import build_bradley_terry

    return build_bradley_terry(config)


REWARDS: dict[str, Callable[[RLConfig | None], Reward]] = {
    "score": _score,
    "seq2seq_rm": _seq2seq_rm,  # rl.reward_model: a seq2seq reward model's directory
    "bradley_terry": _bradley_terry,  # rl.reward_model: a Bradley-Terry model's directory
}


def build_reward(name: str, config: RLConfig | None = None) -> Reward:
    """The reward called ``name``, built from ``config`` (the ``[rl]`` section; a rule-based
    reward needs none).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of {sorted(REWARDS)}")
    return REWARDS[name](config)
