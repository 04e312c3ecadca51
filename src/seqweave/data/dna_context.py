"""A deterministic "tool" that describes a DNA window in words instead of handing over the raw
sequence (CoKE, "Lost in Tokenization"): its nearest labelled training neighbours by k-mer
profile and the splice consensus dinucleotides at the boundary.

Why a tool fit on training rows only: the context carries labels, so a validation or test
label in the index would leak the answer. A query that is itself a training row passes its
id and every row with that id is skipped, so a training prompt never contains its own label."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product

import numpy as np

MODES = ("sequence", "context", "both")
BASES = "ACGT"


def kmer_vector(sequence: str, ks: tuple[int, ...] = (3, 4)) -> Counter:
    """Counts of every k-mer over A/C/G/T for each k; k-mers with ambiguity codes are
    skipped (they would otherwise match nothing or everything)."""
    counts: Counter = Counter()
    for k in ks:
        for i in range(len(sequence) - k + 1):
            word = sequence[i : i + k]
            if all(ch in BASES for ch in word):
                counts[word] += 1
    return counts


def cosine(a: Counter, b: Counter) -> float:
    dot = sum(v * b.get(key, 0) for key, v in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def motifs(sequence: str, centre: int = 30) -> list[str]:
    """Splice consensus at the window centre (0-based ``centre`` is the first base after the
    boundary): donor GT at centre/centre+1 (exon|GT intron), acceptor AG at centre-2/centre-1
    (intron AG|exon). Positions are reported 1-based, as biologists count."""
    found = []
    if sequence[centre : centre + 2] == "GT":
        found.append(f"donor GT at {centre + 1}-{centre + 2}")
    if sequence[centre - 2 : centre] == "AG":
        found.append(f"acceptor AG at {centre - 1}-{centre}")
    return found


@dataclass
class DNAContextTool:
    """Fit on (sequence, label, id) training rows; ``describe`` returns the text context."""

    neighbours: int = 5
    ks: tuple[int, ...] = (3, 4)
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    _matrix: np.ndarray | None = field(default=None, repr=False)

    def fit(self, rows: list[tuple[str, str, str]]) -> DNAContextTool:
        """Unit-normalised dense k-mer rows: one matrix product scores a query against all
        training rows (the same cosine as ``cosine``, fast enough for thousands of rows)."""
        self.rows = list(rows)
        self._matrix = np.stack([self._unit(seq) for seq, _, _ in self.rows])
        return self

    def _unit(self, sequence: str) -> np.ndarray:
        index = _kmer_index(self.ks)
        vec = np.zeros(len(index))
        for word, n in kmer_vector(sequence, self.ks).items():
            vec[index[word]] = n
        norm = np.linalg.norm(vec)
        return vec / norm if norm else vec

    def nearest(self, sequence: str, query_id: str | None = None) -> list[tuple[str, float]]:
        """(label, similarity) of the closest training rows, best first; ties broken by
        training order so the output is deterministic. Rows with ``query_id`` are skipped."""
        similarity = np.round(self._matrix @ self._unit(sequence), 6)
        if query_id is not None:
            mask = np.array([row[2] == query_id for row in self.rows])
            similarity = np.where(mask, -np.inf, similarity)
        order = np.lexsort((np.arange(len(similarity)), -similarity))[: self.neighbours]
        return [(self.rows[i][1], float(similarity[i])) for i in order]

    def describe(self, sequence: str, query_id: str | None = None) -> str:
        ranked = self.nearest(sequence, query_id)
        parts = [f"{label} {sim:.2f}" for label, sim in ranked]
        votes = Counter(label for label, _ in ranked)
        found = motifs(sequence) or ["no splice consensus at centre"]
        majority = ", ".join(f"{label}={n}" for label, n in sorted(votes.items()))
        return f"neighbours: {'; '.join(parts)} | votes: {majority} | motifs: {'; '.join(found)}"

    def prompt(self, sequence: str, mode: str, query_id: str | None = None) -> str:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "sequence":
            return spaced(sequence)
        context = self.describe(sequence, query_id)
        return context if mode == "context" else f"{spaced(sequence)} || {context}"


def spaced(sequence: str) -> str:
    """One word per base so a words tokenizer sees bases, not one 60-letter word."""
    return " ".join(sequence)


@lru_cache(maxsize=8)
def _kmer_index(ks: tuple[int, ...]) -> dict[str, int]:
    words = ["".join(p) for k in ks for p in product(BASES, repeat=k)]
    return {word: i for i, word in enumerate(words)}
