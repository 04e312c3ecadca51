"""SCORE: Thoth's structured component-based reward for a protocol answer.

A rule-based reward (Sun et al. 2025) in place of a judge model, so that reinforcement
learning on protocols is cheap, deterministic and hard to game. It reads an answer in the
Sketch-and-Fill format (``seqweave.data.protocol_format``) against reference steps:

1. **Format gate**: every section present once and in order, ``<key>`` a JSON array of
   well-typed steps, ``<orc>`` numbered prose lines. Fails: the total is 0 and so is every
   component (there is nothing to compare).
2. **Consistency gate**: as many prose lines as JSON steps, and each JSON step's action
   and objects written in its prose line (case-insensitive, as whole words). Fails: the
   total is 0, the components are still reported, so a log shows what the answer would
   have earned; a structure that its own prose contradicts must not be rewarded.
3. **Step count**: ``max(0, cos(pi * d / (2 * M)))``, d = |predicted - reference steps|,
   M = the reference's step count: 1 when the granularity is right, 0 once the answer is
   off by as many steps as the reference has.
4. **Order**: the longest common subsequence of the two action sequences over M: the
   share of the reference's actions the answer performs in the reference's order.
5. **Semantic**: over the monotone alignment of steps with equal actions that matches
   best, each pair scores the mean of its object Jaccard and its parameter agreement
   (shared names with equal values over all names); the sum over max(M, predicted steps),
   so padding with extra steps costs here too.

The total is the weighted mean of the three components (``ScoreWeights``, equal thirds by
default; the paper tunes its own), so a perfect answer scores exactly 1 and every answer
scores in [0, 1]. Names, objects and values compare after lower-casing and collapsing
spaces; "2.5 mL" and "2500 uL" differ (no unit conversion).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from seqweave.data.protocol_format import FormatError, Step, parse_answer, split_sections
from seqweave.data.protocol_format import parse_steps as _parse_steps


@dataclass(frozen=True)
class ScoreWeights:
    """How the three components combine; normalised by their sum, so only ratios matter."""

    step: float = 1.0
    order: float = 1.0
    semantic: float = 1.0

    def __post_init__(self) -> None:
        values = (self.step, self.order, self.semantic)
        if min(values) < 0 or sum(values) <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {values}")


@dataclass(frozen=True)
class ScoreBreakdown:
    """The reward and its parts; ``reason`` says why a gate failed ("" when none did)."""

    total: float
    formatted: bool
    consistent: bool
    step: float
    order: float
    semantic: float
    reason: str = ""


def score(
    output: str,
    reference: str | Sequence[Step],
    weights: ScoreWeights = ScoreWeights(),
) -> ScoreBreakdown:
    """The SCORE reward of ``output`` against ``reference`` (an answer text in the format,
    whose ``<key>`` is read, or its steps).

    Raises:
        ValueError: a reference that is not in the format or has no steps (a bad reference
            is the caller's error, not a bad answer).
    """
    target = reference_steps(reference)
    try:
        answer = parse_answer(output)
    except FormatError as error:
        return ScoreBreakdown(0.0, False, False, 0.0, 0.0, 0.0, str(error))
    predicted = answer.steps
    step = step_count_reward(len(predicted), len(target))
    order = order_reward([s.action for s in predicted], [s.action for s in target])
    semantic = semantic_reward(predicted, target)
    problems = inconsistencies(predicted, answer.prose)
    if problems:
        return ScoreBreakdown(0.0, True, False, step, order, semantic, problems[0])
    mean = weights.step * step + weights.order * order + weights.semantic * semantic
    total = mean / (weights.step + weights.order + weights.semantic)
    return ScoreBreakdown(min(1.0, total), True, True, step, order, semantic)


def reference_steps(reference: str | Sequence[Step]) -> list[Step]:
    """The reference's steps, from an answer text (its ``<key>``) or as given."""
    if isinstance(reference, str):
        try:
            steps = _parse_steps(split_sections(reference)["key"])
        except FormatError as error:
            raise ValueError(f"reference is not in the protocol format: {error}") from None
    else:
        steps = list(reference)
    if not steps:
        raise ValueError("reference has no steps")
    return steps


def step_count_reward(predicted: int, reference: int) -> float:
    """cos(pi * d / (2 * reference)) for d = |predicted - reference|, clipped at 0."""
    distance = abs(predicted - reference)
    return max(0.0, math.cos(math.pi * distance / (2 * reference)))


def order_reward(predicted: Sequence[str], reference: Sequence[str]) -> float:
    """LCS(predicted, reference) / len(reference) over normalised action names."""
    lcs = longest_common_subsequence([_norm(a) for a in predicted], [_norm(a) for a in reference])
    return lcs / len(reference)


def longest_common_subsequence(first: Sequence[str], second: Sequence[str]) -> int:
    """The length of the longest common subsequence (dynamic programming, one row kept)."""
    previous = [0] * (len(second) + 1)
    for item in first:
        current = [0]
        for j, other in enumerate(second):
            best = previous[j] + 1 if item == other else max(previous[j + 1], current[j])
            current.append(best)
        previous = current
    return previous[-1]


def semantic_reward(predicted: Sequence[Step], reference: Sequence[Step]) -> float:
    """The best monotone alignment of equal-action steps, summed pair similarity over
    max(len(predicted), len(reference))."""
    previous = [0.0] * (len(reference) + 1)
    for guess in predicted:
        current = [0.0]
        for j, truth in enumerate(reference):
            best = max(previous[j + 1], current[j])
            if _norm(guess.action) == _norm(truth.action):
                best = max(best, previous[j] + step_similarity(guess, truth))
            current.append(best)
        previous = current
    return previous[-1] / max(len(predicted), len(reference))


def step_similarity(guess: Step, truth: Step) -> float:
    """Mean of the objects' Jaccard similarity and the parameters' agreement, in [0, 1]."""
    objects = _jaccard({_norm(o) for o in guess.objects}, {_norm(o) for o in truth.objects})
    guessed = {_norm(k): _norm(v) for k, v in guess.parameters.items()}
    true = {_norm(k): _norm(v) for k, v in truth.parameters.items()}
    names = set(guessed) | set(true)
    agree = sum(1 for name in names if guessed.get(name) == true.get(name))
    parameters = agree / len(names) if names else 1.0
    return (objects + parameters) / 2


def inconsistencies(steps: Sequence[Step], prose: Sequence[str]) -> list[str]:
    """Why ``<key>`` and ``<orc>`` disagree: each problem in words; empty when they agree."""
    if len(steps) != len(prose):
        return [f"<key> has {len(steps)} steps but <orc> has {len(prose)}"]
    problems = []
    for number, (step, line) in enumerate(zip(steps, prose, strict=True), start=1):
        text = _norm(line)
        for term in (step.action, *step.objects):
            if not _mentions(text, _norm(term)):
                problems.append(f"step {number}: {term!r} is not in its prose line")
    return problems


def _mentions(text: str, term: str) -> bool:
    """Whether ``term`` occurs in ``text`` as whole words (not inside a longer word)."""
    return bool(term) and re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) is not None


def _jaccard(first: set[str], second: set[str]) -> float:
    union = first | second
    return len(first & second) / len(union) if union else 1.0


def _norm(text: str) -> str:
    return " ".join(text.lower().split())
