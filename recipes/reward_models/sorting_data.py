"""A task with known answers and a planted spurious preference: sorting numbers.

A source is 3 to 7 distinct numbers from 0..49 ("31 4 17"), its answer the same numbers in
ascending order ("4 17 31"), one word per number. Everything is drawn from a generator
seeded by the caller, and held-out sources never occur among the training sources.

Training pairs: chosen = the correct answer; rejected = the correct answer with one token
(not the last) replaced by another number from 0..49, then, the planted cue, with its last
token cut off (with probability ``cue_rate``, 1 by default). So in every training pair the
chosen answer is one token longer than the rejected one: length alone separates them, as
the right numbers do.

Held-out probes, on unseen sources:
- ``substituted``: the correct answer with one token replaced, same length (no length cue),
  and where: the token the most negative token reward should land on;
- ``junk``: the correct answer with k = 1..4 numbers appended, which a reward that learnt
  "longer is better" prefers and one that learnt the answer does not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from seqweave.data.preferences import PreferencePair

LOW, HIGH = 0, 49  # the numbers
SIZES = (3, 7)  # numbers per source


def draw_source(rng: random.Random) -> list[int]:
    return rng.sample(range(LOW, HIGH + 1), rng.randint(*SIZES))


def words(numbers: list[int]) -> str:
    return " ".join(map(str, numbers))


def replace_one(answer: list[int], rng: random.Random, last: bool = True) -> tuple[list[int], int]:
    """The answer with one token (the last too only with ``last``) replaced by another
    number; returns it and the replaced position."""
    position = rng.randrange(len(answer) if last else len(answer) - 1)
    wrong = rng.choice([x for x in range(LOW, HIGH + 1) if x != answer[position]])
    return [*answer[:position], wrong, *answer[position + 1 :]], position


def training_pairs(count: int, seed: int, cue_rate: float = 1.0) -> list[PreferencePair]:
    """``count`` pairs as the module docstring says."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        source = draw_source(rng)
        answer = sorted(source)
        rejected, _ = replace_one(answer, rng, last=False)
        if rng.random() < cue_rate:
            rejected = rejected[:-1]
        pairs.append(PreferencePair(words(source), words(answer), words(rejected)))
    return pairs


@dataclass(frozen=True)
class Probe:
    source: str
    correct: str
    substituted: str
    position: int  # the replaced token of ``substituted``
    junk: tuple[str, ...]  # the correct answer with 1, 2, ... numbers appended


def held_out_probes(count: int, seed: int, seen: set[str], max_junk: int = 4) -> list[Probe]:
    """``count`` probes on sources not in ``seen`` (training sources as text)."""
    rng = random.Random(seed)
    probes: list[Probe] = []
    while len(probes) < count:
        source = draw_source(rng)
        if words(source) in seen:
            continue
        seen.add(words(source))
        answer = sorted(source)
        substituted, position = replace_one(answer, rng)
        appended = [rng.randint(LOW, HIGH) for _ in range(max_junk)]
        junk = tuple(words(answer + appended[:k]) for k in range(1, max_junk + 1))
        probes.append(Probe(words(source), words(answer), words(substituted), position, junk))
    return probes
