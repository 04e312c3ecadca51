"""Next-item recommenders without a network, the baselines of sequential recommendation.

One interface (``Recommender``): ``fit`` on training sequences of item ids and a fixed
item list (the candidates, in the order scores are given), then ``scores(history)``:
a score for every item of that list as the user's next one, higher is better. The
ranking metrics (``seqweave.metrics_recsys``) take these scores as they take a
model's.

- ``popularity``: how often the item occurs in training (the same list for everyone);
- ``markov``: first-order Markov chain: how often the item followed the history's
  last item, popularity breaking ties (scaled far below one transition);
- ``cooccurrence``: item-item co-occurrence within a window of positions, summed
  over the history's last ``recent`` items with the nearer ones weighted more,
  popularity breaking ties.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Recommender(Protocol):
    def fit(self, sequences: Sequence[Sequence[str]], items: Sequence[str]) -> Recommender: ...

    def scores(self, history: Sequence[str]) -> np.ndarray:
        """(len(items),) float scores of every item as the next one."""
        ...


class _Indexed:
    """The item list and training counts every baseline starts from."""

    def _index(self, sequences: Sequence[Sequence[str]], items: Sequence[str]) -> None:
        self.index = {item: i for i, item in enumerate(items)}
        self.counts = np.zeros(len(items))
        for sequence in sequences:
            for item in sequence:
                if item in self.index:
                    self.counts[self.index[item]] += 1
        # popularity as a tie-breaker: below any single count of the main signal
        self.prior = self.counts / (self.counts.max() + 1.0) * 1e-3

    def _ids(self, sequence: Sequence[str]) -> list[int]:
        """Indices of the known items of ``sequence`` (unknown ones are skipped)."""
        return [self.index[item] for item in sequence if item in self.index]


class Popularity(_Indexed):
    def fit(self, sequences, items) -> Popularity:
        self._index(sequences, items)
        return self

    def scores(self, history) -> np.ndarray:
        return self.counts.copy()


class Markov(_Indexed):
    """Transitions counted in a sparse table: row = previous item, column = next item."""

    def fit(self, sequences, items) -> Markov:
        self._index(sequences, items)
        self.next: dict[int, dict[int, int]] = {}
        for sequence in sequences:
            ids = self._ids(sequence)
            for previous, following in itertools.pairwise(ids):
                row = self.next.setdefault(previous, {})
                row[following] = row.get(following, 0) + 1
        return self

    def scores(self, history) -> np.ndarray:
        out = self.prior.copy()
        ids = self._ids(history)
        for item, count in self.next.get(ids[-1], {}).items() if ids else ():
            out[item] += count
        return out


class CoOccurrence(_Indexed):
    """Pairs of items at most ``window`` positions apart count once each way."""

    def __init__(self, window: int = 5, recent: int = 5):
        self.window = window
        self.recent = recent

    def fit(self, sequences, items) -> CoOccurrence:
        self._index(sequences, items)
        self.pairs: dict[int, dict[int, int]] = {}
        for sequence in sequences:
            ids = self._ids(sequence)
            for i, a in enumerate(ids):
                for b in ids[i + 1 : i + 1 + self.window]:
                    for x, y in ((a, b), (b, a)):
                        row = self.pairs.setdefault(x, {})
                        row[y] = row.get(y, 0) + 1
        return self

    def scores(self, history) -> np.ndarray:
        out = self.prior.copy()
        ids = self._ids(history)[-self.recent :]
        for distance, item in enumerate(reversed(ids)):
            weight = 1.0 / (1 + distance)
            for other, count in self.pairs.get(item, {}).items():
                out[other] += weight * count
        return out


RECOMMENDERS = {"popularity": Popularity, "markov": Markov, "cooccurrence": CoOccurrence}
