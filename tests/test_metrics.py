"""Tests for seqweave.metrics: hand-checked cases, sacrebleu itself, and JFLEG's published GLEU."""

from __future__ import annotations

import json
import math
import random

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.errors import ConfigError
from seqweave.metrics import METRICS, compute_metric, gleu
from tests.shared import require_shared

HEADLINE_RANGE = {"bleu": 100.0, "chrf": 100.0, "rouge": 100.0, "gleu": 100.0, "exact": 1.0}


def score(name: str, hyps: list[str], refs: list[list[str]], srcs: list[str] | None = None):
    return compute_metric(name, hyps, refs, srcs)


# --- the registry and the shape of results --------------------------------------------------


def test_registry_names() -> None:
    assert set(METRICS) == {"bleu", "chrf", "rouge", "gleu", "exact"}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_headline_key_comes_first(name: str) -> None:
    result = score(name, ["the cat sat on the mat"], [["the cat sat on the mat"]], ["a cat sat"])
    assert next(iter(result)) == name
    assert all(isinstance(value, float) for value in result.values())


@pytest.mark.parametrize("name", sorted(METRICS))
def test_identical_hypothesis_gets_the_maximum(name: str) -> None:
    hyps = ["the cat sat on the mat .", "a dog barked at the moon all night"]
    result = score(name, hyps, [[h] for h in hyps], ["the cat sit on mat", "a dog bark at moon"])
    assert result[name] == pytest.approx(HEADLINE_RANGE[name])


@pytest.mark.parametrize("name", sorted(METRICS))
def test_empty_hypothesis_scores_zero(name: str) -> None:
    result = score(name, [""], [["the cat sat on the mat"]], ["the cat sit on the mat"])
    assert result[name] == 0.0


# --- BLEU and chrF: sacrebleu itself --------------------------------------------------------

HYPS = ["the cat is on the mat", "there is a dog in the garden today", "hello world"]
REFS_A = ["the cat sat on the mat", "a dog is in the garden today", "hello , world"]
REFS_B = ["there is a cat on the mat", "there is a dog in the yard today", "hello world !"]


def test_bleu_equals_sacrebleu_single_reference() -> None:
    expected = sacrebleu.corpus_bleu(HYPS, [REFS_A])
    result = score("bleu", HYPS, [[r] for r in REFS_A])
    assert result["bleu"] == pytest.approx(expected.score)
    assert result["bleu_bp"] == pytest.approx(expected.bp)
    assert [result[f"bleu_p{n}"] for n in range(1, 5)] == pytest.approx(expected.precisions)


def test_bleu_and_chrf_equal_sacrebleu_multi_reference() -> None:
    refs = [[a, b] for a, b in zip(REFS_A, REFS_B, strict=True)]
    assert score("bleu", HYPS, refs)["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, [REFS_A, REFS_B]).score
    )
    assert score("chrf", HYPS, refs)["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(HYPS, [REFS_A, REFS_B]).score
    )


def test_second_reference_can_only_help_bleu() -> None:
    single = score("bleu", HYPS, [[r] for r in REFS_A])["bleu"]
    double = score("bleu", HYPS, [[a, b] for a, b in zip(REFS_A, REFS_B, strict=True)])["bleu"]
    assert double > single


def test_ragged_references_match_sacrebleu_none_padding() -> None:
    # Row 1 has one reference, the others two: sacrebleu skips None segment by segment.
    refs = [[REFS_A[0], REFS_B[0]], [REFS_A[1]], [REFS_A[2], REFS_B[2]]]
    padded = [REFS_A, [REFS_B[0], None, REFS_B[2]]]
    assert score("bleu", HYPS, refs)["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, padded).score
    )
    assert score("chrf", HYPS, refs)["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(HYPS, padded).score
    )


@pytest.mark.parametrize("name", sorted(METRICS))
def test_ragged_duplicates_equal_single_references(name: str) -> None:
    # Repeating a reference adds no information, so padding must not leak into any metric.
    single = [[r] for r in REFS_A]
    ragged = [[REFS_A[0]], [REFS_A[1], REFS_A[1], REFS_A[1]], [REFS_A[2], REFS_A[2]]]
    sources = ["the cat are on mat", "there are dog in garden today", "hello word"]
    assert score(name, HYPS, ragged, sources) == pytest.approx(score(name, HYPS, single, sources))


# --- ROUGE and exact match ------------------------------------------------------------------


def test_rouge_hand_computed() -> None:
    # hyp 3 words, all in the 6-word ref: P = 1, R = 3/6, F = 2PR/(P+R) = 2/3.
    # bigrams: 2 of 2 hyp bigrams in the 5 ref bigrams: F = 2·1·0.4/1.4 = 4/7. LCS = 3: as rouge1.
    result = score("rouge", ["the cat sat"], [["the cat sat on the mat"]])
    assert result["rouge1"] == pytest.approx(200 / 3)
    assert result["rouge2"] == pytest.approx(400 / 7)
    assert result["rougeL"] == pytest.approx(200 / 3)
    assert result["rouge"] == result["rougeL"]


def test_rouge_takes_best_reference_and_averages_sentences() -> None:
    best = score("rouge", ["the cat sat"], [["the cat sat on the mat", "the cat sat"]])
    assert best["rouge"] == pytest.approx(100.0)
    two = score("rouge", ["the cat sat", "xyz"], [["the cat sat"], ["the dog ran"]])
    assert two["rouge1"] == pytest.approx(50.0)


def test_exact_strips_whitespace_and_checks_any_reference() -> None:
    hyps = ["  the cat ", "a dog", "a bird"]
    refs = [["the cat"], ["the dog", "a dog\n"], ["a fish"]]
    assert score("exact", hyps, refs) == {"exact": pytest.approx(2 / 3), "exact_first": 1 / 3}


def test_exact_is_case_sensitive() -> None:
    assert score("exact", ["The cat"], [["the cat"]])["exact"] == 0.0


# --- GLEU -----------------------------------------------------------------------------------
# Worked example: source "a b c d e f", reference "a b c d e g" (the last word is an error).
# Copying the source: per order n, the hypothesis n-grams that match the reference, minus those
# that match source n-grams missing from the reference (the ones ending in "f"):
#   n=1: 5 - 1 = 4 of 6;  n=2: 4 - 1 = 3 of 5;  n=3: 3 - 1 = 2 of 4;  n=4: 2 - 1 = 1 of 3.
#   Lengths are equal, so no brevity penalty: GLEU = (4/6 · 3/5 · 2/4 · 1/3)^(1/4) = (1/15)^(1/4).
# A wrong edit "a b c d e h" keeps the matches and loses the penalties:
#   (5/6 · 4/5 · 3/4 · 2/3)^(1/4) = (1/3)^(1/4), although its BLEU equals the copy's.
# Deleting the error, "a b c d e": precisions 1, brevity exp(1 - 6/5): GLEU = exp(-0.2).

SRC = "a b c d e f"
REF = "a b c d e g"


def test_gleu_copying_the_source_is_penalised() -> None:
    copy = gleu([SRC], [[REF]], [SRC])
    assert copy["gleu"] == pytest.approx(100 * (1 / 15) ** 0.25)
    assert copy["gleu_std"] == pytest.approx(0.0, abs=1e-9)


def test_gleu_rewards_changing_an_error_where_bleu_does_not() -> None:
    wrong_edit = gleu(["a b c d e h"], [[REF]], [SRC])["gleu"]
    assert wrong_edit == pytest.approx(100 * (1 / 3) ** 0.25)
    assert wrong_edit > gleu([SRC], [[REF]], [SRC])["gleu"]
    bleu_copy = score("bleu", [SRC], [[REF]])["bleu"]
    assert score("bleu", ["a b c d e h"], [[REF]])["bleu"] == pytest.approx(bleu_copy)


def test_gleu_brevity_penalty() -> None:
    assert gleu(["a b c d e"], [[REF]], [SRC])["gleu"] == pytest.approx(100 * math.exp(-0.2))


def test_gleu_too_short_for_four_grams_is_zero() -> None:
    # No 4-gram anywhere in the corpus: a zero count, which the official scorer scores as 0.
    assert gleu(["a b c"], [["a b c"]], ["a b c"])["gleu"] == 0.0


def test_gleu_samples_one_reference_per_round_like_the_official_scorer() -> None:
    # Against REF the copy scores (1/15)^(1/4); against a reference that kept "f", 100.
    # Round j picks reference int(random() · 2) from Random(101 · j), as JFLEG's gleu.py does.
    rounds = 500
    picks_kept = sum(int(random.Random(101 * j).random() * 2) == 1 for j in range(rounds))
    expected = (picks_kept * 100 + (rounds - picks_kept) * 100 * (1 / 15) ** 0.25) / rounds
    result = gleu([SRC], [[REF, SRC]], [SRC], iterations=rounds)
    assert result["gleu"] == pytest.approx(expected)
    assert result["gleu_std"] > 0


def _jfleg_dev() -> list[dict]:
    with require_shared("data", "jfleg", "dev.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.slow
def test_gleu_reproduces_published_jfleg_dev_source_score() -> None:
    # keisks/jfleg README leader board: SOURCE (no correction) scores GLEU 38.21 on dev.
    rows = _jfleg_dev()
    sources = [row["source"] for row in rows]
    result = compute_metric("gleu", sources, [row["references"] for row in rows], sources)
    assert result["gleu"] == pytest.approx(38.21, abs=0.05)


@pytest.mark.slow
def test_gleu_reproduces_published_jfleg_dev_reference_score() -> None:
    # Same leader board: REFERENCE 55.26 on dev, "computed by averaging each reference", i.e.
    # each reference scored against the other three. Exercises sampling among 3 references.
    rows = _jfleg_dev()
    sources = [row["source"] for row in rows]
    scores = []
    for k in range(4):
        hyps = [row["references"][k] for row in rows]
        others = [row["references"][:k] + row["references"][k + 1 :] for row in rows]
        scores.append(compute_metric("gleu", hyps, others, sources)["gleu"])
    assert sum(scores) / 4 == pytest.approx(55.26, abs=0.05)


# --- errors ---------------------------------------------------------------------------------


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as caught:
        compute_metric("meteor", ["a"], [["a"]])
    for name in METRICS:
        assert name in str(caught.value)


def test_mismatched_lengths_name_both() -> None:
    with pytest.raises(ValueError, match=r"2 hypotheses but 1 reference rows"):
        compute_metric("bleu", ["a", "b"], [["a"]])
    with pytest.raises(ValueError, match=r"1 hypotheses but 3 sources"):
        compute_metric("gleu", ["a"], [["a"]], ["a", "b", "c"])


def test_gleu_without_sources() -> None:
    with pytest.raises(ValueError, match="source"):
        compute_metric("gleu", ["a b c d"], [["a b c d"]])


@pytest.mark.parametrize(
    ("hyps", "refs", "message"),
    [([], [], "empty"), (["a"], [[]], "no reference"), (["a"], ["a"], "string")],
)
def test_malformed_inputs(hyps: list, refs: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metric("exact", hyps, refs)


# --- properties -----------------------------------------------------------------------------

WORDS = st.sampled_from(["the", "a", "cat", "dog", "sat", "on", "mat", ".", "ran", "big"])
SENTENCE = st.lists(WORDS, min_size=0, max_size=8).map(" ".join)
LONG_SENTENCE = st.lists(WORDS, min_size=4, max_size=8).map(" ".join)
ROW = st.tuples(SENTENCE, st.lists(SENTENCE, min_size=1, max_size=3), SENTENCE)


@settings(max_examples=40, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=5))
def test_scores_stay_in_range(rows: list[tuple[str, list[str], str]]) -> None:
    hyps, refs, srcs = (list(column) for column in zip(*rows, strict=True))
    for name, top in HEADLINE_RANGE.items():
        result = compute_metric(name, hyps, refs, srcs)
        assert 0.0 <= result[name] <= top + 1e-9, (name, result)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(LONG_SENTENCE, SENTENCE), min_size=1, max_size=5))
def test_hypotheses_equal_to_references_score_the_maximum(pairs: list[tuple[str, str]]) -> None:
    hyps = [hyp for hyp, _ in pairs]
    refs = [[hyp, other] for hyp, other in pairs]
    srcs = [other for _, other in pairs]
    assert compute_metric("exact", hyps, refs)["exact"] == 1.0
    assert compute_metric("exact", hyps, refs)["exact_first"] == 1.0
    assert compute_metric("chrf", hyps, [[h] for h in hyps])["chrf"] == pytest.approx(100.0)
    assert compute_metric("bleu", hyps, [[h] for h in hyps])["bleu"] == pytest.approx(100.0)
    assert compute_metric("gleu", hyps, [[h] for h in hyps], srcs)["gleu"] == pytest.approx(100.0)
