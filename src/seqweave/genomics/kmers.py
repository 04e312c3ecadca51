"""A k-mer profile embedding: the classical alignment-free baseline for the encoder.

A sequence becomes its vector of k-mer counts (4**k entries, k-mers with an ``N`` left
out), L2-normalised, so the index ranks windows by the cosine of their k-mer profiles.
Nothing is learnt; it is what a bioinformatician would try first, and what a trained
encoder has to beat to be worth its training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_CODES = np.full(256, -1, dtype=np.int64)
for _i, _base in enumerate("ACGT"):
    _CODES[ord(_base)] = _i


def kmer_counts(seq: str, k: int) -> np.ndarray:
    """(4**k,) float32 counts of the k-mers of ``seq`` (A < C < G < T, first base most
    significant); k-mers with any other letter are not counted."""
    out = np.zeros(4**k, dtype=np.float32)
    codes = _CODES[np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)]
    if len(codes) < k:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)  # (L - k + 1, k)
    windows = windows[(windows >= 0).all(axis=1)]
    np.add.at(out, windows @ (4 ** np.arange(k - 1, -1, -1)), 1.0)
    return out


def kmer_profile(k: int) -> Callable[[list[str]], np.ndarray]:
    """An ``Embed`` (``seqweave.genomics.align``): sequences -> (N, 4**k) unit rows."""

    def embed(seqs: list[str]) -> np.ndarray:
        out = np.stack([kmer_counts(s, k) for s in seqs]) if seqs else np.zeros((0, 4**k))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms == 0, 1, norms)).astype(np.float32)

    return embed
