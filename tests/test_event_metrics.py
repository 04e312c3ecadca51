"""Event-log metrics: hand-worked values, and true Damerau-Levenshtein against a search."""

from __future__ import annotations

import itertools
import math
from collections import deque

import pytest

from seqweave.metrics_events import (
    accuracy,
    brier,
    brier_score,
    damerau_levenshtein,
    prefix_overlap,
    suffix_similarity,
)


def test_brier_by_hand() -> None:
    distribution = {"A": 0.7, "B": 0.2, "<end>": 0.1}
    assert brier(distribution, "A") == pytest.approx(0.3**2 + 0.2**2 + 0.1**2)
    assert brier(distribution, "<end>") == pytest.approx(0.7**2 + 0.2**2 + 0.9**2)
    # an event the distribution does not name was predicted at probability 0
    assert brier(distribution, "X") == pytest.approx(0.49 + 0.04 + 0.01 + 1.0)
    assert brier({"A": 1.0}, "A") == 0.0 and brier({"A": 1.0}, "B") == 2.0
    assert brier_score([distribution, {"A": 1.0}], ["A", "A"]) == pytest.approx(0.14 / 2)


def test_accuracy_and_lengths() -> None:
    assert accuracy(["A", "B", "C"], ["A", "B", "D"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(["A"], ["A", "B"])


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("abc", "", 3),
        ("", "ab", 2),
        ("abc", "abc", 0),
        ("ab", "ba", 1),  # one transposition
        ("abc", "acb", 1),
        ("ca", "abc", 2),  # swap to "ac", insert b between: restricted (OSA) gives 3
        ("abcd", "badc", 2),
        ("kitten", "sitting", 3),
        ("abcdef", "bacdfe", 2),
    ],
)
def test_damerau_levenshtein_by_hand(a: str, b: str, distance: int) -> None:
    assert damerau_levenshtein(a, b) == distance
    assert damerau_levenshtein(list(b), list(a)) == distance  # symmetric, on lists too


def edit_distances(start: str, alphabet: str, max_length: int) -> dict[str, int]:
    """Fewest single edits (insert, delete, substitute, swap two adjacent symbols) from
    ``start`` to every string up to ``max_length``, by breadth-first search."""
    seen, queue = {start: 0}, deque([start])
    while queue:
        s = queue.popleft()
        nexts = {s[:i] + s[i + 1 :] for i in range(len(s))}
        nexts |= {s[:i] + c + s[i + 1 :] for i in range(len(s)) for c in alphabet}
        nexts |= {s[:i] + s[i + 1] + s[i] + s[i + 2 :] for i in range(len(s) - 1)}
        if len(s) < max_length:
            nexts |= {s[:i] + c + s[i:] for i in range(len(s) + 1) for c in alphabet}
        for t in nexts - seen.keys():
            seen[t] = seen[s] + 1
            queue.append(t)
    return seen


def test_damerau_levenshtein_is_the_fewest_edits() -> None:
    """Against a search over edit sequences, for every pair of strings up to length 3 over
    three symbols (the search may pass through strings two symbols longer)."""
    words = ["".join(w) for n in range(4) for w in itertools.product("abc", repeat=n)]
    for a in words:
        reference = edit_distances(a, "abc", 5)
        for b in words:
            assert damerau_levenshtein(a, b) == reference[b], (a, b)


def test_suffix_similarity() -> None:
    assert suffix_similarity(["A", "B"], ["A", "B"]) == 1.0
    assert suffix_similarity([], []) == 1.0
    assert suffix_similarity(["A"], []) == 0.0
    assert suffix_similarity(["C", "A"], ["A", "B", "C"]) == pytest.approx(1 - 2 / 3)


def test_prefix_overlap() -> None:
    training = [("A",), ("A", "B")]
    prefixes = [("A",), ("A", "B"), ("B",), ("A", "C")]
    result = prefix_overlap(training, prefixes, [True, False, True, False])
    assert result["seen_share"] == 0.5 and result["unseen"] == 2
    assert result["accuracy_seen"] == 0.5 and result["accuracy_unseen"] == 0.5
    only_seen = prefix_overlap(training, [("A",)], [True])
    assert math.isnan(only_seen["accuracy_unseen"])
