"""Order-k Markov models of reads: the baseline a bioinformatician puts beside a DNA LM.

The probability of each base given the k before it in the same read, smoothed by
interpolating with order k-1 (hierarchical Dirichlet smoothing:
``p_k(x | c) = (n(c, x) + beta * p_{k-1}(x | c')) / (n(c) + beta)``, c' the context
without its oldest base) down to an add-one distribution over single bases. The
first bases of a read, with fewer than k before them, use the longest context they
have, so every base is scored and bits per base pair compare with a language model's
over the same reads. Counting and scoring are vectorised with numpy, so orders up to
8 over millions of bases take seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SYMBOLS = "ACGTN"
_CODE = np.full(256, 4, dtype=np.int64)  # anything but ACGT reads as N
for _index, _base in enumerate("ACGT"):
    _CODE[ord(_base)] = _CODE[ord(_base.lower())] = _index
NUM = len(SYMBOLS)


def _encode(reads: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All reads as one code array, and each base's index within its read."""
    joined = "".join(reads).encode("ascii", "replace")
    codes = _CODE[np.frombuffer(joined, dtype=np.uint8)]
    lengths = np.array([len(read) for read in reads], dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return codes, np.arange(len(codes)) - starts


def _contexts(codes: np.ndarray, order: int) -> np.ndarray:
    """(N,) context code of the ``order`` bases before each position (garbage where the
    read has fewer; callers mask by position)."""
    context = np.zeros_like(codes)
    for back in range(1, order + 1):
        shifted = np.zeros_like(codes)
        shifted[back:] = codes[:-back]
        context += shifted * NUM ** (back - 1)
    return context


@dataclass
class MarkovDNA:
    """An order-``order`` Markov model over ``ACGTN``; ``fit`` then ``bits``."""

    order: int
    beta: float = 1.0
    counts: list[np.ndarray] = field(default_factory=list, repr=False)  # per order j: (5**j, 5)

    def fit(self, reads: Sequence[str]) -> MarkovDNA:
        codes, position = _encode(reads)
        self.counts = []
        for j in range(self.order + 1):
            keep = position >= j
            cells = _contexts(codes, j)[keep] * NUM + codes[keep]
            table = np.bincount(cells, minlength=NUM ** (j + 1)).reshape(NUM**j, NUM)
            self.counts.append(table.astype(np.float64))
        return self

    def probabilities(self, reads: Sequence[str]) -> np.ndarray:
        """(N,) probability of each base of ``reads`` (concatenated) given its context."""
        if not self.counts:
            raise ValueError("fit the model before scoring")
        codes, position = _encode(reads)
        unigram = self.counts[0][0]
        p = (unigram[codes] + 1.0) / (unigram.sum() + NUM)
        for j in range(1, self.order + 1):
            keep = position >= j
            table = self.counts[j]
            context = _contexts(codes, j)[keep]
            seen = table[context, codes[keep]]
            p[keep] = (seen + self.beta * p[keep]) / (table[context].sum(axis=1) + self.beta)
        return p

    def bits(self, reads: Sequence[str]) -> tuple[float, int]:
        """(total bits, bases) of ``reads``: bits per base pair is their ratio."""
        p = self.probabilities(reads)
        return float(-np.log2(p).sum()), len(p)


def bits_per_base(model: MarkovDNA, reads: Sequence[str]) -> float:
    total, bases = model.bits(reads)
    return total / max(bases, 1)


def select_order(
    train: Sequence[str], valid: Sequence[str], orders: Sequence[int] = range(1, 9)
) -> tuple[int, dict[int, float]]:
    """Fit each order on ``train``, score bits per base on ``valid``; the best order and
    every order's validation bits per base."""
    scores = {k: bits_per_base(MarkovDNA(k).fit(train), valid) for k in orders}
    return min(scores, key=scores.get), scores
