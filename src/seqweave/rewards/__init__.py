"""Rewards for reinforcement learning on generated sequences: text in, a number in [0, 1] out.

``REWARDS`` maps a name to a function ``(output, reference) -> float``, both strings (the
model's decoded answer and the example's target), so a training option can name its reward
in the config and the trainer needs nothing else; a reward's module keeps its richer
breakdown (``score.score``) for logs and tests. A plain dict: nothing registers itself.
"""

from __future__ import annotations

from collections.abc import Callable

from seqweave.rewards.score import score


def score_reward(output: str, reference: str) -> float:
    """Thoth's SCORE of an answer against the reference answer's ``<key>`` steps."""
    return score(output, reference).total


REWARDS: dict[str, Callable[[str, str], float]] = {"score": score_reward}


def build_reward(name: str) -> Callable[[str, str], float]:
    """The reward called ``name``.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of {sorted(REWARDS)}")
    return REWARDS[name]
