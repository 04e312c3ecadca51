"""Next-event predictors for event logs: most-frequent-next, k-order Markov with backoff,
and all-k-order Markov (AKOM).

Every predictor is fit on whole traces (sequences of activity names) and answers
``predict_proba(prefix) -> {event: probability}`` over the events seen in training plus
``END`` (the case ends here), summing to 1. Contexts are read from the prefix padded on the
left with ``START`` symbols, so "A as the first event" and "A after B" are different
contexts, as a trace's beginning is different from its middle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Protocol

END = "<end>"
START = "<start>"

Distribution = dict[str, float]


class NextEventPredictor(Protocol):
    def fit(self, traces: Iterable[Sequence[str]]) -> NextEventPredictor: ...

    def predict_proba(self, prefix: Sequence[str]) -> Distribution: ...


def _context_counts(traces: Iterable[Sequence[str]], order: int) -> dict[tuple, Counter]:
    """For every context length 0 .. order: counts of the event after each context, over
    every position of every trace followed by END (the left edge padded with START)."""
    counts: dict[tuple, Counter] = {}
    for trace in traces:
        events = [START] * order + list(trace) + [END]
        for i in range(order, len(events)):
            for length in range(order + 1):
                context = tuple(events[i - length : i])
                counts.setdefault(context, Counter())[events[i]] += 1
    return counts


def _context(prefix: Sequence[str], length: int) -> tuple:
    padded = [START] * length + list(prefix)
    return tuple(padded[len(padded) - length :]) if length else ()


class MarkovPredictor:
    """k-order Markov chain with interpolated absolute discounting (Ney, Essen and Kneser
    1994) down to order 0 and then to the uniform distribution over the vocabulary:

        P_j(x | c_j) = max(n(c_j x) - d, 0) / n(c_j)  +  d * T(c_j) / n(c_j) * P_{j-1}(x | c_{j-1})

    with n the training counts, T(c) the number of distinct events seen after c, and
    P_j = P_{j-1} for a context never seen. Every event keeps some probability, so an
    unseen continuation never scores as impossible, and with much data the estimate tends
    to the maximum-likelihood one (the discount is a fixed d per count)."""

    def __init__(self, order: int = 2, discount: float = 0.5):
        if order < 0 or not 0.0 < discount < 1.0:
            raise ValueError(f"need order >= 0 and 0 < discount < 1, got {order}, {discount}")
        self.order, self.discount = order, discount

    def fit(self, traces: Iterable[Sequence[str]]) -> MarkovPredictor:
        self.counts = _context_counts(traces, self.order)
        self.vocabulary = sorted(self.counts[()])
        self._cached = lru_cache(maxsize=None)(self._distribution)
        return self

    def predict_proba(self, prefix: Sequence[str]) -> Distribution:
        return dict(self._cached(_context(prefix, self.order)))

    def _distribution(self, context: tuple) -> tuple[tuple[str, float], ...]:
        if not context:
            lower = dict.fromkeys(self.vocabulary, 1.0 / len(self.vocabulary))
        else:
            lower = dict(self._cached(context[1:]))
        seen = self.counts.get(context)
        if seen is None:
            return tuple(lower.items())
        total = sum(seen.values())
        backoff = self.discount * len(seen) / total
        return tuple(
            (x, max(seen[x] - self.discount, 0.0) / total + backoff * p) for x, p in lower.items()
        )


class AllOrderMarkov:
    """All-k-order Markov (AKOM, Pitkow and Pirolli 1999): predict from the longest context
    of at most ``max_order`` events (START padding included) seen at least ``support`` times
    in training, by its maximum-likelihood next-event distribution; order 0 (the overall
    next-event frequencies) when none is. Unsmoothed by design: events never seen after
    that context get probability 0."""

    def __init__(self, max_order: int = 3, support: int = 1):
        if max_order < 0 or support < 1:
            raise ValueError(f"need max_order >= 0 and support >= 1, got {max_order}, {support}")
        self.max_order, self.support = max_order, support

    def fit(self, traces: Iterable[Sequence[str]]) -> AllOrderMarkov:
        self.counts = _context_counts(traces, self.max_order)
        self.vocabulary = sorted(self.counts[()])
        return self

    def predict_proba(self, prefix: Sequence[str]) -> Distribution:
        for length in range(self.max_order, -1, -1):
            seen = self.counts.get(_context(prefix, length))
            if seen is not None and sum(seen.values()) >= self.support:
                break
        total = sum(seen.values())
        return {x: seen[x] / total for x in self.vocabulary}


class MostFrequentNext:
    """The floor: ignore the prefix, predict the overall frequencies of next events (END
    included) in training."""

    def fit(self, traces: Iterable[Sequence[str]]) -> MostFrequentNext:
        self.model = AllOrderMarkov(max_order=0).fit(traces)
        return self

    def predict_proba(self, prefix: Sequence[str]) -> Distribution:
        return self.model.predict_proba(())


def most_likely(distribution: Distribution) -> str:
    """The most probable event; ties go to the first in sorted order, so runs repeat."""
    return min(distribution, key=lambda x: (-distribution[x], x))


def greedy_suffix(
    predictor: NextEventPredictor, prefix: Sequence[str], max_length: int
) -> list[str]:
    """The rest of the case by repeatedly taking the most likely next event, until END (not
    included) or ``max_length`` events."""
    events, suffix = list(prefix), []
    while len(suffix) < max_length:
        event = most_likely(predictor.predict_proba(events))
        if event == END:
            break
        events.append(event)
        suffix.append(event)
    return suffix
