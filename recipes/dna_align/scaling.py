"""How the window index grows with the genome: build time, memory, query time, recall.

    .venv/bin/python recipes/dna_align/scaling.py [--lengths 10000,...,10000000]
        [--real-upto 1000000] [--fresh]

For each genome length: windows of 256 bases every 128, embedded by the encoder that
``run.py`` trained (genome seed 12, as there) up to ``--real-upto`` bases; beyond it,
embedding every window would take longer than this CPU allows, so the index gets as
many random unit vectors of the same dimension, and the queries are stored vectors
plus noise (cosine about 0.9 to their source). The flat index's cost depends only on
the number and size of the vectors, so its figures hold for either; IVF's and HNSW's
recall depends on how the vectors cluster, so beyond ``--real-upto`` it is indicative.

Per index kind (flat, IVF with about 4 sqrt(N) lists and 8 probed, HNSW with M = 32):
seconds to build, bytes (the serialised index), milliseconds per query (1000 reads,
both strands, top 10, one thread), and recall against the flat index's top 10 (and,
with real embeddings, the true top-10 recall as in ``run.py``). Embedding seconds per
window are measured on the real cells. Writes recipes/dna_align/scaling.json and
scaling.png. Run from the repository root after run.py.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from seqweave.data.formats.fasta import SequenceRecord
from seqweave.data.synthetic_dna import markov_genome, reverse_complement, sample_reads
from seqweave.genomics.encoder import DnaEncoder
from seqweave.genomics.fragments import fragment
from seqweave.genomics.index import INDEX_KINDS, build_index, search
from seqweave.harness import add_run_arguments, cell_log_path, grid, run_grid, write_results

ROOT = Path(__file__).resolve().parents[2]
QUERIES = 1000
TOP = 10


def real_vectors(length: int, encoder_dir: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Window and read embeddings (both strands) of a genome, and the truth to score."""
    genome = markov_genome(length, 3, seed=12)
    windows = fragment([SequenceRecord("genome", "", genome)], 256, 128)
    reads = sample_reads(genome, QUERIES, 100, 0.01, 0.004, seed=13)
    encoder = DnaEncoder.load(encoder_dir)
    started = time.perf_counter()
    stored = encoder.embed_seqs(windows.seqs)
    per_window = (time.perf_counter() - started) / len(windows)
    queries = encoder.embed_seqs([s for r in reads for s in (r.seq, reverse_complement(r.seq))])
    holds = [
        {i for i in range(len(windows)) if windows.contains(i, "genome", r.start, r.start + 100)}
        for r in reads
    ]
    return stored, queries, {"holds": holds, "embed_seconds_per_window": per_window}


def random_vectors(length: int, dim: int) -> tuple[np.ndarray, np.ndarray, dict]:
    windows = max(0, -(-(length - 256) // 128)) + 1
    rng = np.random.default_rng(length)
    stored = rng.standard_normal((windows, dim)).astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    picks = stored[rng.integers(0, windows, 2 * QUERIES)]
    queries = picks + 0.5 * rng.standard_normal(picks.shape).astype(np.float32) / dim**0.5
    return stored, queries / np.linalg.norm(queries, axis=1, keepdims=True), {}


def overlap(exact: np.ndarray, ids: np.ndarray) -> float:
    """Mean share of the exact top-k that ``ids`` (Q, k) found."""
    return float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(exact, ids, strict=True)]))


def measure(cell: dict, settings: dict) -> dict:
    """Every index kind on one genome length."""
    import faiss

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    length = cell["length"]
    real = length <= settings["real_upto"]
    if real:
        stored, queries, extra = real_vectors(length, settings["encoder"])
    else:
        stored, queries, extra = random_vectors(length, settings["dim"])
    result = {"windows": len(stored), "embeddings": "encoder" if real else "random"}
    if "embed_seconds_per_window" in extra:
        result["embed_seconds_per_window"] = extra["embed_seconds_per_window"]
    exact = None
    for kind in INDEX_KINDS:
        started = time.perf_counter()
        index = build_index(stored, kind)
        built = time.perf_counter()
        _, ids = search(index, queries, TOP)
        searched = time.perf_counter()
        exact = ids if exact is None else exact
        figures = {
            "build_seconds": built - started,
            "bytes": int(faiss.serialize_index(index).size),
            "ms_per_read": 1000 * (searched - built) / (len(queries) / 2),
            "recall_vs_flat": overlap(exact, ids),
        }
        if real:
            pairs = ids.reshape(QUERIES, -1)  # both strands' top 10 of each read
            found = [bool(holds & set(p)) for holds, p in zip(extra["holds"], pairs, strict=True)]
            figures["recall@10"] = float(np.mean(found))
        result[kind] = figures
    print(length, result, flush=True)
    return result


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("build_seconds", "index build (s)"), ("bytes", "index size (bytes)"),
              ("ms_per_read", "search per read (ms, both strands)")]  # fmt: skip
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    lengths = [row["length"] for row in rows]
    for axis, (key, title) in zip(axes, panels, strict=True):
        for kind in INDEX_KINDS:
            axis.plot(lengths, [row[kind][key] for row in rows], marker="o", label=kind)
        real = [row["length"] for row in rows if row["embeddings"] == "encoder"]
        if real:
            axis.axvspan(min(lengths), max(real), color="0.92", zorder=0)
        axis.set(xscale="log", yscale="log", xlabel="genome length (bases)", title=title)
        axis.grid(alpha=0.3)
    axes[0].legend(title="faiss index")
    figure.suptitle("Window index vs genome length (shaded: encoder embeddings; beyond: random)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = "10000,30000,100000,300000,1000000,3000000,10000000"
    parser.add_argument("--lengths", default=default)
    parser.add_argument("--real-upto", type=int, default=1_000_000)
    parser.add_argument("--encoder", default="runs/dna_align/encoder-160-d64")
    add_run_arguments(parser, ROOT / "recipes/dna_align/scaling.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    dim = DnaEncoder.load(args.encoder).config.embedding_dim
    settings = {"real_upto": args.real_upto, "encoder": args.encoder, "dim": dim}
    lengths = [int(n) for n in args.lengths.split(",")]

    def write(rows: list[dict], complete: bool = False) -> None:
        write_results(
            args.out, seeds=None, device="cpu", jobs=args.jobs, started=started,
            complete=complete, settings=settings, results=rows,
        )  # fmt: skip

    log = cell_log_path(args.out, "runs/dna_align", args.fresh)
    rows = run_grid(measure, grid(length=lengths), settings, log, args.jobs, write)
    write(rows, complete=True)
    plot(rows, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
