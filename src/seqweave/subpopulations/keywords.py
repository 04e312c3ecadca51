"""The built-in analyst for machines without a language model: keyword clustering.

Dimensions are groups of *substitutable* words: words that fill the same slot of a sentence
("a red shirt", "a blue shirt") share left and right neighbours, so each candidate word gets a
vector of its neighbour counts and the words are clustered on those vectors (average-link
agglomerative clustering on cosine similarity, written here with numpy; deterministic, so no
restarts). Each word of a cluster is an attribute named by that word; words that occur in
nearly the same texts (Jaccard >= ``duplicate_overlap``) are one attribute named by both.
Candidate words are the highest summed TF-IDF words whose document frequency lies between
``min_df`` texts and ``max_df`` of the texts (very common words are template filler, not a
subpopulation). A text gets, per dimension, the attribute whose terms it contains with the
highest TF-IDF weight, else ``other``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from seqweave.subpopulations.structure import OTHER, Attribute, Dimension

_STOPWORD_TEXT = (
    "a an the and or of in on at to for with by from is are was were be been his her their "
    "its this that these those some one two three there here it he she they who while as into "
    "over near through up down out off next other another has have"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class KeywordAnalyst:
    """TF-IDF + clustering of words by their neighbours; see the module docstring."""

    def __init__(
        self,
        dimensions: int = 4,
        candidates: int = 80,
        min_df: int = 3,
        max_df: float = 0.75,
        duplicate_overlap: float = 0.8,
    ):
        self.num_dimensions = dimensions
        self.candidates = candidates
        self.min_df = min_df
        self.max_df = max_df
        self.duplicate_overlap = duplicate_overlap
        self.idf: dict[str, float] = {}

    def propose(self, texts: Sequence[str]) -> list[Dimension]:
        tokenised = [words(text) for text in texts]
        document_frequency = Counter(w for tokens in tokenised for w in set(tokens))
        n = len(texts)
        self.idf = {w: math.log((1 + n) / (1 + df)) + 1 for w, df in document_frequency.items()}
        weight: Counter = Counter()
        for tokens in tokenised:
            for w, count in Counter(tokens).items():
                weight[w] += count * self.idf[w]
        eligible = [
            w
            for w, _ in weight.most_common()
            if w not in STOPWORDS
            and len(w) > 2
            and self.min_df <= document_frequency[w] <= self.max_df * n
        ][: self.candidates]
        if len(eligible) < 2:
            return []
        vectors = context_vectors(eligible, tokenised)
        clusters = cluster_words(eligible, vectors, presence(eligible, tokenised))
        clusters = sorted(clusters, key=lambda c: -sum(document_frequency[w] for w in c))
        dimensions = []
        for cluster in clusters[: self.num_dimensions * 2]:
            attributes = self.attributes_of(cluster, tokenised, document_frequency)
            if len(attributes) >= 2:
                name = "/".join(a.name for a in attributes[:3])
                dimensions.append(Dimension(name, tuple(attributes)))
        return dimensions[: self.num_dimensions]

    def attributes_of(self, cluster, tokenised, document_frequency) -> list[Attribute]:
        """One attribute per word, words found in nearly the same texts merged."""
        texts_of = {w: {i for i, tokens in enumerate(tokenised) if w in tokens} for w in cluster}
        groups: list[list[str]] = []
        for w in sorted(cluster, key=lambda w: -document_frequency[w]):
            for group in groups:
                a, b = texts_of[group[0]], texts_of[w]
                if len(a & b) / len(a | b) >= self.duplicate_overlap:
                    group.append(w)
                    break
            else:
                groups.append([w])
        return [Attribute("/".join(group), tuple(group)) for group in groups]

    def assign(self, texts: Sequence[str], dimensions: Sequence[Dimension]) -> list[dict]:
        rows = []
        for text in texts:
            present = Counter(words(text))
            row = {}
            for dimension in dimensions:
                best, best_score = OTHER, 0.0
                for attribute in dimension.attributes:
                    score = sum(present[t] * self.idf.get(t, 1.0) for t in attribute.terms)
                    if score > best_score:
                        best, best_score = attribute.name, score
                row[dimension.name] = best
            rows.append(row)
        return rows

    def describe(self) -> dict:
        return {"analyst": "keywords", "max_dimensions": self.num_dimensions}


def context_vectors(vocabulary: list[str], tokenised: list[list[str]]) -> np.ndarray:
    """(W, C) positive pointwise mutual information of each word with its left and right
    neighbours (sentence edges included), rows scaled to unit length. PPMI rather than raw
    counts: in captions "a" precedes subjects and colours alike, and raw counts let that one
    frequent neighbour decide; PPMI weighs the neighbours that single a slot out."""
    index = {w: i for i, w in enumerate(vocabulary)}
    features: dict[str, int] = {}
    entries: Counter = Counter()
    for tokens in tokenised:
        padded = ["<s>", *tokens, "</s>"]
        for position in range(1, len(padded) - 1):
            row = index.get(padded[position])
            if row is None:
                continue
            for side, neighbour in (("L", padded[position - 1]), ("R", padded[position + 1])):
                column = features.setdefault(f"{side}:{neighbour}", len(features))
                entries[row, column] += 1
    matrix = np.zeros((len(vocabulary), max(1, len(features))))  # (W, C)
    for (row, column), count in entries.items():
        matrix[row, column] = count
    total = matrix.sum()
    expected = matrix.sum(1, keepdims=True) * matrix.sum(0, keepdims=True) / max(total, 1.0)
    with np.errstate(divide="ignore"):
        ppmi = np.maximum(np.log(matrix / np.maximum(expected, 1e-12)), 0.0)  # (W, C)
    norms = np.linalg.norm(ppmi, axis=1, keepdims=True)
    return ppmi / np.maximum(norms, 1e-12)


def presence(vocabulary: list[str], tokenised: list[list[str]]) -> np.ndarray:
    """(N, W) 1 where text n holds word w."""
    index = {w: i for i, w in enumerate(vocabulary)}
    present = np.zeros((len(tokenised), len(vocabulary)))  # (N, W)
    for row, tokens in enumerate(tokenised):
        for w in set(tokens):
            if w in index:
                present[row, index[w]] = 1.0
    return present


def cluster_words(
    vocabulary: list[str],
    vectors: np.ndarray,
    present: np.ndarray,
    min_similarity: float = 0.1,
    max_overlap: float = 0.2,
):
    """Average-link agglomerative clustering on cosine similarity, merging while the best
    pair of clusters is at least ``min_similarity`` alike. Two clusters whose texts overlap
    (texts holding a word of each, over the smaller cluster's texts, above ``max_overlap``)
    never merge: a dimension's attributes exclude each other (a text has one per dimension),
    whereas "a man in a red shirt" has a subject and a colour, which fill similar slots.
    The overlap is of the clusters' text sets, not a mean over word pairs: rare words (a
    synonym) co-occur little with anything and would dilute a mean."""
    similarity = vectors @ vectors.T  # (W, W)
    clusters = [[i] for i in range(len(vocabulary))]
    while len(clusters) > 1:
        members = np.stack([present[:, c].max(1) for c in clusters], axis=1)  # (N, K)
        both = members.T @ members  # (K, K)
        size = np.diag(both)
        overlap = both / np.maximum(np.minimum.outer(size, size), 1.0)
        best, pair = -1.0, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                if overlap[a, b] > max_overlap:
                    continue
                value = similarity[np.ix_(clusters[a], clusters[b])].mean()
                if value > best:
                    best, pair = value, (a, b)
        if best < min_similarity:
            break
        a, b = pair
        clusters[a] = clusters[a] + clusters.pop(b)
    return [[vocabulary[i] for i in cluster] for cluster in clusters]
