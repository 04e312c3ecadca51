"""Fragment embeddings in a faiss index: exact (flat) or approximate (IVF, HNSW).

Embeddings are unit vectors, so every index ranks by inner product (cosine). A flat
index compares a query with every fragment: exact, and linear in the genome. IVF
clusters the fragments and visits ``nprobe`` clusters per query; HNSW walks a
neighbour graph. Both trade a little recall for query time that grows far slower
than the genome (measured in ``recipes/dna_align``).
"""

from __future__ import annotations

import numpy as np

from seqweave.errors import ConfigError

INDEX_KINDS = ("flat", "ivf", "hnsw")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "the vector index needs faiss: pip install 'seqweave[genomics]'"
        ) from None
    return faiss


def build_index(
    vectors: np.ndarray, kind: str = "flat", nlist: int = 0, nprobe: int = 8, hnsw_m: int = 32
):
    """A faiss index over ``vectors`` (N, D) float32 unit rows.

    ``nlist`` 0 picks about 4 sqrt(N) clusters for IVF (faiss's rule of thumb), at
    most N / 39 so that k-means has enough points per centroid.

    Raises:
        ConfigError: an unknown kind.
    """
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    N, D = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(D)
    elif kind == "ivf":
        nlist = nlist or max(1, min(int(4 * N**0.5), N // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(D), D, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(nprobe, nlist)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(D, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = max(64, 2 * hnsw_m)
    else:
        raise ConfigError(f"unknown index kind {kind!r}; valid: {', '.join(INDEX_KINDS)}")
    index.add(vectors)
    return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k fragments per query: scores (Q, k) and fragment indices (Q, k), -1 where an
    approximate index found fewer than k."""
    k = min(k, index.ntotal)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
