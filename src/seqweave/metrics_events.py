"""Metrics for next-element prediction on event logs (predictive process monitoring).

- ``accuracy``: the share of prefixes whose most likely next event is the true one;
- ``brier_score``: Brier's (1950) multi-class score, the squared distance between the
  predicted distribution and the one-hot truth, summed over the events (end of case
  included) and averaged over prefixes: 0 is perfect, 2 the worst; unlike accuracy it
  rewards calibrated probabilities, which is what tells an order-2 source's true model
  from a near miss;
- ``suffix_similarity``: 1 - DL(a, b) / max(|a|, |b|) for a predicted and a true rest of
  the case, with DL the true Damerau-Levenshtein distance (adjacent transpositions even
  with edits between them, not the restricted "optimal string alignment" variant), as
  Tax et al. 2017 score suffixes;
- ``prefix_overlap``: how many evaluation prefixes occur verbatim among the training
  prefixes, and the accuracy on those that do not (Abb and Rehse: on these logs a model
  can score well by recalling training prefixes).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence


def accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    if len(predicted) != len(truth) or not truth:
        raise ValueError(f"need equal, non-zero lengths, got {len(predicted)} and {len(truth)}")
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def brier(distribution: Mapping[Hashable, float], truth: Hashable) -> float:
    """One prediction's Brier score: sum over events of (p - [event is the truth])^2, the
    truth counted at probability 0 if the distribution does not name it."""
    score = sum(p * p for x, p in distribution.items() if x != truth)
    return score + (1.0 - distribution.get(truth, 0.0)) ** 2


def brier_score(
    distributions: Sequence[Mapping[Hashable, float]], truth: Sequence[Hashable]
) -> float:
    if len(distributions) != len(truth) or not truth:
        raise ValueError(f"need equal, non-zero lengths, got {len(distributions)}, {len(truth)}")
    total = sum(brier(d, t) for d, t in zip(distributions, truth, strict=True))
    return total / len(truth)


def damerau_levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """The true Damerau-Levenshtein distance (Lowrance and Wagner 1975): the fewest
    insertions, deletions, substitutions and transpositions of adjacent symbols, where a
    transposed pair may also be edited around (``"CA" -> "ABC"`` is 2: swap, insert).
    O(|a| |b|) time and memory."""
    infinity = len(a) + len(b)
    last_row_of: dict[Hashable, int] = {}  # symbol -> last row of a where it occurred
    # d[i + 1][j + 1] is the distance between a[:i] and b[:j]; row/column 0 are sentinels
    d = [[infinity] * (len(b) + 2) for _ in range(len(a) + 2)]
    for i in range(len(a) + 1):
        d[i + 1][1] = i
    for j in range(len(b) + 1):
        d[1][j + 1] = j
    for i in range(1, len(a) + 1):
        last_col_match = 0  # last column of b (in this row) where b[j] == a[i]
        for j in range(1, len(b) + 1):
            k = last_row_of.get(b[j - 1], 0)
            m = last_col_match
            cost = 0 if a[i - 1] == b[j - 1] else 1
            if cost == 0:
                last_col_match = j
            d[i + 1][j + 1] = min(
                d[i][j] + cost,  # substitute (or match)
                d[i + 1][j] + 1,  # insert
                d[i][j + 1] + 1,  # delete
                d[k][m] + (i - k - 1) + 1 + (j - m - 1),  # transpose, edits in between
            )
        last_row_of[a[i - 1]] = i
    return d[len(a) + 1][len(b) + 1]


def suffix_similarity(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """1 - DL / max length: 1 for an exact suffix, 0 for nothing in common (and 1 when
    both are empty)."""
    longest = max(len(predicted), len(truth))
    return 1.0 if longest == 0 else 1.0 - damerau_levenshtein(predicted, truth) / longest


def prefix_overlap(
    training_prefixes: Iterable[Sequence[Hashable]],
    prefixes: Sequence[Sequence[Hashable]],
    correct: Sequence[bool],
) -> dict[str, float]:
    """``seen_share``: the share of ``prefixes`` that occur verbatim among the training
    prefixes; ``accuracy_unseen`` (and ``accuracy_seen``): the share of ``correct``
    predictions among the prefixes that do not (that do); NaN where there are none."""
    if len(prefixes) != len(correct) or not prefixes:
        raise ValueError(f"need equal, non-zero lengths, got {len(prefixes)}, {len(correct)}")
    known = {tuple(p) for p in training_prefixes}
    seen = [tuple(p) in known for p in prefixes]
    return {
        "seen_share": sum(seen) / len(seen),
        "unseen": float(len(seen) - sum(seen)),
        "accuracy_seen": _share([c for c, s in zip(correct, seen, strict=True) if s]),
        "accuracy_unseen": _share([c for c, s in zip(correct, seen, strict=True) if not s]),
    }


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")
