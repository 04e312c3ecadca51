"""Ranking metrics (metrics_recsys.py) on hand-worked examples, and the baselines
(baselines/recsys.py) against counts done by hand."""

from __future__ import annotations

import math

import pytest
import torch

from seqweave.baselines.recsys import CoOccurrence, Markov, Popularity
from seqweave.metrics_recsys import (
    MISSING,
    full_ranks,
    hit_rate,
    ndcg,
    oracle_best_step,
    ranking_figures,
    sample_negatives,
    sampled_ranks,
)


def test_full_ranks_by_hand_with_ties_against_the_target_and_exclusions():
    scores = torch.tensor(
        [
            [0.9, 0.5, 0.7, 0.1, 0.7],  # target 2 (0.7): 0.9 above, 0.7 tied -> rank 3
            [0.9, 0.5, 0.7, 0.1, 0.7],  # same, item 0 and 4 excluded -> rank 1
            [0.2, 0.2, 0.2, 0.2, 0.2],  # all tied, target 0 -> rank 5
            [0.2, 0.4, 0.3, 0.1, 0.0],  # no item id for the target -> inf
        ]
    )
    targets = torch.tensor([2, 2, 0, MISSING])
    excluded = torch.zeros(4, 5, dtype=torch.bool)
    excluded[1, [0, 4]] = True
    excluded[2, 0] = True  # the target itself is never excluded
    ranks = full_ranks(scores, targets, excluded)
    assert ranks.tolist() == [3.0, 1.0, 5.0, math.inf]


def test_hit_rate_and_ndcg_by_hand():
    ranks = torch.tensor([1.0, 3.0, 10.0, 11.0, math.inf])
    assert hit_rate(ranks, 10) == pytest.approx(3 / 5)
    expected = (1 / math.log2(2) + 1 / math.log2(4) + 1 / math.log2(11)) / 5
    assert ndcg(ranks, 10) == pytest.approx(expected)
    assert hit_rate(ranks, 1) == pytest.approx(1 / 5)
    figures = ranking_figures(ranks, torch.tensor([1.0, 1.0, 2.0, 50.0, math.inf]))
    assert figures["full_hr@10"] == pytest.approx(3 / 5)
    assert figures["sampled100_hr@10"] == pytest.approx(3 / 5)
    assert figures["sampled100_ndcg@10"] == pytest.approx((1 + 1 + 1 / math.log2(3)) / 5)


def test_sampled_ranks_by_hand():
    scores = torch.tensor([[0.1, 0.8, 0.3, 0.5, 0.3], [0.1, 0.2, 0.3, 0.25, 0.05]])
    negatives = torch.tensor([[0, 3, 4], [0, 1, 4]])
    ranks = sampled_ranks(scores, torch.tensor([2, 2]), negatives)
    assert ranks.tolist() == [3.0, 1.0]  # row 0: 3 above, 4 tied; row 1: all below


def test_negatives_are_seeded_distinct_and_never_interacted():
    candidates = list(range(10, 200))
    interacted = {10, 11, 12, 50}
    first = sample_negatives(candidates, interacted, 100, seed=0, key=7)
    assert first == sample_negatives(candidates, interacted, 100, seed=0, key=7)
    assert first != sample_negatives(candidates, interacted, 100, seed=0, key=8)
    assert len(set(first)) == 100 and not set(first) & interacted
    assert set(first) <= set(candidates)
    with pytest.raises(ValueError, match="fewer than"):
        sample_negatives(list(range(5)), {0}, 5, 0, 0)


def test_oracle_best_step_by_hand():
    step_ranks = torch.tensor([[5.0, 2.0, 20.0], [1.0, 3.0, 1.0], [30.0, 40.0, 12.0]])
    result = oracle_best_step(step_ranks, k=10)
    assert result["oracle_hr@10"] == pytest.approx(2 / 3)
    assert result["oracle_ndcg@10"] == pytest.approx((1 / math.log2(3) + 1) / 3)
    assert result["step_hr@10"] == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    # the oracle's hits: user 0 by step 1, user 1 by steps 0 and 2 (a tie: the first)
    assert result["best_step_share_of_oracle_hits@10"] == pytest.approx([0.5, 0.5, 0.0])


SEQUENCES = [["a", "b", "c"], ["a", "b", "d"], ["b", "c", "a"], ["x", "c"]]
ITEMS = ["<pad>", "a", "b", "c", "d"]  # "x" is no candidate


def test_popularity_counts():
    scores = Popularity().fit(SEQUENCES, ITEMS).scores(["a"])
    assert scores.tolist() == [0, 3, 3, 3, 1]


def test_markov_counts_transitions_from_the_last_item_with_popularity_below_them():
    model = Markov().fit(SEQUENCES, ITEMS)
    scores = model.scores(["d", "b"])  # b -> c twice, b -> d once
    assert scores[3] == pytest.approx(2, abs=1e-2) and scores[4] == pytest.approx(1, abs=1e-2)
    assert scores.argmax() == 3 and scores[1] < 1 and scores[1] > scores[0]
    # an unknown last item: popularity alone
    assert Markov().fit(SEQUENCES, ITEMS).scores(["x"]).argmax() in (1, 2, 3)


def test_cooccurrence_counts_within_the_window_weighted_by_recency():
    model = CoOccurrence(window=1, recent=2).fit(SEQUENCES, ITEMS)
    # neighbours at distance 1: a-b (2), b-c (2), b-d (1), c-a (1); x-c is not a candidate
    scores = model.scores(["c", "a"])  # a weighted 1, c weighted 1/2
    expected_a = {"b": 2, "c": 1}
    expected_c = {"b": 2, "a": 1}
    for item in ("a", "b", "c", "d"):
        by_hand = expected_a.get(item, 0) + 0.5 * expected_c.get(item, 0)
        assert scores[ITEMS.index(item)] == pytest.approx(by_hand, abs=1e-2)
