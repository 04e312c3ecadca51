"""Next-event baselines: proper distributions, hand-worked smoothing, and the controlled
check on a known order-2 Markov source."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from seqweave.baselines import (
    END,
    PREDICTORS,
    AllOrderMarkov,
    MarkovPredictor,
    MostFrequentNext,
    PetriNetPredictor,
    RecurrentPredictor,
    greedy_suffix,
)
from seqweave.metrics_events import brier_score

TRACES = [["A", "B", "C"], ["A", "B", "C"], ["A", "C"], ["B", "A", "B"], ["A"]]


@pytest.mark.parametrize(
    "predictor",
    [
        MostFrequentNext(),
        MarkovPredictor(order=0),
        MarkovPredictor(order=1),
        MarkovPredictor(order=3, discount=0.9),
        AllOrderMarkov(max_order=1),
        AllOrderMarkov(max_order=4, support=2),
    ],
    ids=repr,
)
def test_every_prediction_is_a_distribution_over_events_and_end(predictor) -> None:
    predictor.fit(TRACES)
    for prefix in ([], ["A"], ["A", "B"], ["C", "C", "C"], ["unseen", "A"], ["unseen"]):
        distribution = predictor.predict_proba(prefix)
        assert set(distribution) == {"A", "B", "C", END}
        assert sum(distribution.values()) == pytest.approx(1.0, abs=1e-12)
        assert min(distribution.values()) >= 0.0


def test_markov_backoff_by_hand() -> None:
    """Traces A B and A C, order 1, discount 1/2. Order 0: A 2, B 1, C 1, END 2 of 6, four
    kinds, so P0 = (n - 1/2) / 6 + (1/2 * 4 / 6) / 4: A 1/3, B 1/6, C 1/6, END 1/3. After
    A: B 1, C 1 of 2, two kinds: P1 = (n - 1/2) / 2 + 1/2 * P0."""
    model = MarkovPredictor(order=1, discount=0.5).fit([["A", "B"], ["A", "C"]])
    expected = {"A": 1 / 6, "B": 1 / 3, "C": 1 / 3, END: 1 / 6}
    assert model.predict_proba(["A"]) == pytest.approx(expected)
    assert model.predict_proba(["X"]) == pytest.approx(
        {"A": 1 / 3, "B": 1 / 6, "C": 1 / 6, END: 1 / 3}
    )


def test_akom_uses_the_longest_context_seen_often_enough() -> None:
    model = AllOrderMarkov(max_order=2).fit(TRACES)
    # "B A" was seen once (then B): the longest context decides
    assert model.predict_proba(["B", "A"])["B"] == 1.0
    # with support 2 it backs off to "A" (B three times, C once, END once, of 5)
    backed = AllOrderMarkov(max_order=2, support=2).fit(TRACES)
    assert backed.predict_proba(["B", "A"]) == pytest.approx(
        {"A": 0.0, "B": 0.6, "C": 0.2, END: 0.2}
    )


def test_greedy_suffix_follows_the_most_likely_event_to_the_end() -> None:
    model = AllOrderMarkov(max_order=1).fit([["A", "B", "C"]] * 3 + [["A", "C"]])
    assert greedy_suffix(model, ["A"], max_length=10) == ["B", "C"]
    loop = AllOrderMarkov(max_order=1).fit([["A", "A", "A", "A"]])
    assert greedy_suffix(loop, ["A"], max_length=5) == ["A"] * 5  # capped
    assert set(PREDICTORS) == {"most_frequent", "markov", "akom", "petri_net", "recurrent"}


def test_the_petri_net_allows_what_the_discovered_process_allows() -> None:
    """B and C in either order after A, or D alone: the inductive miner finds a choice
    between a parallel B || C and D; replay of a prefix enables exactly what may follow,
    weighted by overall frequency (B 2, C 2, D 1 of the events after A)."""
    pytest.importorskip("pm4py")
    model = PetriNetPredictor().fit([["A", "B", "C"], ["A", "C", "B"], ["A", "D"]])
    expected = {
        (): {"A": 1.0},
        ("A",): {"B": 0.4, "C": 0.4, "D": 0.2},
        ("A", "C"): {"B": 1.0},
        ("A", "B", "C"): {END: 1.0},
        ("A", "D"): {END: 1.0},
    }
    for prefix, wanted in expected.items():
        distribution = model.predict_proba(prefix)
        assert {x: p for x, p in distribution.items() if p} == pytest.approx(wanted), prefix
    # a prefix the net does not fit still gets a distribution: A's transition fires anyway
    assert model.predict_proba(["B", "A"])["A"] == 0.0
    assert sum(model.predict_proba(["D", "D"]).values()) == pytest.approx(1.0)


def order2_source(seed: int, symbols: str = "abcd") -> dict[tuple, dict]:
    """A random order-2 source: per context of the last two events (START-padded), a
    Dirichlet(1/2) distribution over the symbols and a chance of ending in [0.05, 0.2)
    (none before the first event)."""
    rng = np.random.default_rng(seed)
    contexts = ["<start>", *symbols]
    table = {}
    for first in contexts:
        for second in contexts:
            weights = rng.dirichlet([0.5] * len(symbols))
            end = 0.0 if second == "<start>" else rng.uniform(0.05, 0.2)
            table[first, second] = {
                **{s: (1 - end) * w for s, w in zip(symbols, weights, strict=True)},
                END: end,
            }
    return table


def sample(table: dict, count: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    traces = []
    for _ in range(count):
        trace: list[str] = []
        while True:
            padded = ["<start>", "<start>", *trace]
            distribution = table[padded[-2], padded[-1]]
            event = rng.choice(list(distribution), p=list(distribution.values()))
            if event == END or len(trace) == 60:
                break
            trace.append(str(event))
        traces.append(trace)
    return traces


@functools.cache
def order2_check() -> tuple[list, list, list, float]:
    """Training traces, held-out prefixes and their next events (END included), and the
    Brier score of the true source's own probabilities on them (the Bayes-optimal one)."""
    table = order2_source(seed=3)
    train, test = sample(table, 4000, seed=4), sample(table, 800, seed=5)
    prefixes = [trace[:k] for trace in test for k in range(len(trace) + 1)]
    truth = [[*trace, END][k] for trace in test for k in range(len(trace) + 1)]
    bayes = brier_score([table[tuple(["<start>", "<start>", *p][-2:])] for p in prefixes], truth)
    return train, prefixes, truth, bayes


def test_on_an_order2_source_order2_reaches_the_bayes_brier_and_order1_does_not() -> None:
    """The controlled check: scored on every prefix of held-out traces (END included), the
    order-2 model comes within 1% of the Brier score of the true source's own
    probabilities, and order 1, which cannot see the event before last, is measurably
    worse."""
    train, prefixes, truth, bayes = order2_check()

    def score(model) -> float:
        model.fit(train)
        return brier_score([model.predict_proba(p) for p in prefixes], truth)

    order2, akom2 = score(MarkovPredictor(order=2)), score(AllOrderMarkov(max_order=2))
    order1 = score(MarkovPredictor(order=1))
    assert abs(order2 - bayes) < 0.01 * bayes, (order2, bayes)
    assert abs(akom2 - bayes) < 0.01 * bayes, (akom2, bayes)
    assert order1 > 1.05 * bayes, (order1, bayes)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_on_an_order2_source_the_recurrent_models_reach_the_bayes_brier(cell: str) -> None:
    """The same check for the neural models: 3 epochs of a 32-unit LSTM or GRU come within
    1% of the Bayes-optimal Brier score (measured: +0.29% and +0.43%)."""
    torch.set_num_threads(1)
    train, prefixes, truth, bayes = order2_check()
    model = RecurrentPredictor(cell=cell, hidden=32, epochs=3, lr=1e-2).fit(train)
    score = brier_score([model.predict_proba(p) for p in prefixes], truth)
    assert abs(score - bayes) < 0.01 * bayes, (score, bayes)
