"""Tests for SCORE (Thoth's structured reward): gates, each component against its formula
or an independent reference, and properties over perturbed answers."""

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.data.protocol_format import Step, render_answer
from seqweave.data.synthetic_protocols import answer, draw_protocol, finish, prose
from seqweave.rewards import REWARDS, build_reward
from seqweave.rewards.score import ScoreWeights, order_reward, score

REFERENCE = [
    Step("add", ("PBS", "tube"), {"volume": "250 uL"}),
    Step("mix", ("tube",), {"method": "vortexing"}),
    Step("incubate", ("tube",), {"temperature": "37 °C", "duration": "30 min"}),
    Step("centrifuge", ("tube",), {"speed": "3000 x g", "duration": "5 min"}),
]


def text(steps):
    return answer(list(steps))


def brute_force_lcs(first, second):
    """The longest common subsequence by trying every subsequence of the first."""
    for size in range(len(first), 0, -1):
        for chosen in itertools.combinations(first, size):
            it = iter(second)
            if all(item in it for item in chosen):
                return size
    return 0


def test_perfect_answer_scores_one():
    result = score(text(REFERENCE), REFERENCE)
    assert result.total == 1.0 and result.formatted and result.consistent
    assert (result.step, result.order, result.semantic) == (1.0, 1.0, 1.0)
    assert score(text(REFERENCE), text(REFERENCE)).total == 1.0  # reference as answer text


@pytest.mark.parametrize("section", ["think", "key", "orc"])
def test_missing_section_scores_zero(section):
    broken = text(REFERENCE).replace(f"<{section}>", "").replace(f"</{section}>", "")
    result = score(broken, REFERENCE)
    assert result.total == 0.0 and not result.formatted and section in result.reason


@pytest.mark.parametrize(
    "key",
    [
        '[{"action": "add", "objects": ["PBS", "tube"], "parameters": {}',  # not JSON
        '{"action": "add", "objects": [], "parameters": {}}',  # not an array
        '[{"action": "add", "objects": "tube", "parameters": {}}]',  # objects not a list
        '[{"action": "", "objects": [], "parameters": {}}]',  # empty action
        '[{"action": "add", "objects": []}]',  # missing field
    ],
)
def test_invalid_key_scores_zero(key):
    output = f"<think>x</think><key>{key}</key><orc>1. Add PBS to the tube.</orc>"
    result = score(output, REFERENCE)
    assert result.total == 0.0 and not result.formatted
    assert (result.step, result.order, result.semantic) == (0.0, 0.0, 0.0)


def test_inconsistent_key_and_text_are_gated():
    prose_lines = [prose(step) for step in REFERENCE]
    prose_lines[2] = "Incubate the flask at 37 °C for 30 min."  # object differs from <key>
    result = score(render_answer("plan", REFERENCE, prose_lines), REFERENCE)
    assert result.total == 0.0 and result.formatted and not result.consistent
    assert "tube" in result.reason
    assert result.order == 1.0  # the components are still reported
    fewer = score(render_answer("plan", REFERENCE, prose_lines[:3]), REFERENCE)
    assert fewer.total == 0.0 and not fewer.consistent
    substring = [p.replace("Mix", "Remix") for p in map(prose, REFERENCE)]  # not a whole word
    assert not score(render_answer("plan", REFERENCE, substring), REFERENCE).consistent


@pytest.mark.parametrize("d", [1, 2, 3, 4, 6])
def test_step_count_off_by_d_gives_the_cosine(d):
    m = len(REFERENCE)
    shorter = REFERENCE[: max(1, m - d)]
    longer = REFERENCE + [REFERENCE[-1]] * d
    for steps in (shorter, longer):
        distance = abs(len(steps) - m)
        expected = max(0.0, math.cos(math.pi * distance / (2 * m)))
        assert score(text(steps), REFERENCE).step == expected
    assert score(text(longer), REFERENCE).step == max(0.0, math.cos(math.pi * d / (2 * m)))


def test_swapped_pair_lowers_order_by_the_lcs_amount():
    for i in range(len(REFERENCE) - 1):
        swapped = list(REFERENCE)
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
        result = score(text(swapped), REFERENCE)
        assert result.order == pytest.approx(1 - 1 / len(REFERENCE))  # distinct actions: LCS n-1
        assert result.step == 1.0 and result.total < 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from("abcde"), max_size=6),
    st.lists(st.sampled_from("abcde"), min_size=1, max_size=6),
)
def test_order_reward_is_lcs_over_reference_length(predicted, reference):
    assert order_reward(predicted, reference) == brute_force_lcs(predicted, reference) / len(
        reference
    )


def _perturb(rng, steps):
    """A nearby answer: steps dropped, duplicated, reordered or with a parameter changed."""
    steps = list(steps)
    for _ in range(rng.randint(0, 4)):
        kind, i = rng.randrange(4), rng.randrange(len(steps))
        if kind == 0 and len(steps) > 1:
            steps.pop(i)
        elif kind == 1:
            steps.insert(i, steps[i])
        elif kind == 2:
            j = rng.randrange(len(steps))
            steps[i], steps[j] = steps[j], steps[i]
        else:
            name = next(iter(steps[i].parameters))
            steps[i] = Step(steps[i].action, steps[i].objects, {**steps[i].parameters, name: "9 h"})
    return steps


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10_000))
def test_reward_in_unit_interval_and_reference_is_best(seed):
    rng = random.Random(seed)
    reference = finish(draw_protocol(rng))
    candidate = _perturb(rng, reference)
    result = score(text(candidate), reference)
    assert 0.0 <= result.total <= 1.0
    assert all(0.0 <= value <= 1.0 for value in (result.step, result.order, result.semantic))
    if result.total == 1.0:  # full marks only for the reference's own steps
        assert candidate == reference
    permuted = rng.sample(reference, len(reference))
    assert score(text(permuted), reference).total <= score(text(reference), reference).total


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=200))
def test_any_text_scores_in_unit_interval(output):
    assert 0.0 <= score(output, REFERENCE).total <= 1.0


def test_weights_only_ratios_matter_and_bad_weights_fail():
    swapped = [REFERENCE[1], REFERENCE[0], *REFERENCE[2:]]
    only_order = score(text(swapped), REFERENCE, ScoreWeights(0, 2, 0))
    assert only_order.total == pytest.approx(only_order.order)
    with pytest.raises(ValueError):
        ScoreWeights(-1, 1, 1)


def test_registry_and_bad_reference():
    reward = build_reward("score")
    assert reward("any source", text(REFERENCE), text(REFERENCE)) == 1.0
    swapped = text([REFERENCE[1], REFERENCE[0], *REFERENCE[2:]])
    assert reward("", swapped, text(REFERENCE)) == score(swapped, REFERENCE).total < 1.0
    assert REWARDS["score"](None) is reward  # a builder; SCORE reads no config
    with pytest.raises(ValueError, match="score"):
        build_reward("nope")
    with pytest.raises(ValueError, match="reference"):
        score(text(REFERENCE), "no sections here")


def test_semantic_reward_counts_objects_and_parameters_on_aligned_steps():
    changed = list(REFERENCE)
    changed[0] = Step("add", ("PBS", "tube"), {"volume": "500 uL"})  # parameters agree 0 of 1
    changed[2] = Step("incubate", ("tube",), {"temperature": "37 °C", "duration": "1 h"})  # 1 of 2
    result = score(text(changed), REFERENCE)
    assert result.semantic == pytest.approx((0.5 + 1 + 0.75 + 1) / 4)
    assert result.order == 1.0 and result.step == 1.0
