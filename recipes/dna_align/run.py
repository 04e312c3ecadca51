"""Embed-Search-Align on a synthetic genome, beside minimap2 and a k-mer profile.

    .venv/bin/python recipes/dna_align/run.py [--steps 300] [--reads 2000] [--fresh]

Protocol. The encoder is trained (``seqweave.genomics.contrastive``, the Python API of
``seqweave align-train``) on read/window pairs simulated from a *training* genome
(order-3 Markov, seed 11); every figure is on a *different* genome (order 3, seed 12,
its own transition table), so the encoder is scored on sequence it never saw. Reads:
100 reference bases, 1% substitutions, 0.4% indels, both strands
(``seqweave.data.synthetic_dna.sample_reads``). Windows: 256 bases every 128.

Figures per method: top-K recall (a window holding the read's whole true span among
the top K of either strand's list, so 2K windows), the share of reads placed within
5 bp (``position`` within 5 of the truth and the right strand), reads per second for
placement (embedding the reads, search, Smith-Waterman; one thread), and the seconds
to build the index (embedding every window, then faiss). minimap2 runs through mappy
(short-read preset) on the same reads and genome, and its primary hit is scored alike.
Writes recipes/dna_align/results.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from seqweave.checkpoint import write_json
from seqweave.config_parse import to_dict
from seqweave.data.formats.fasta import SequenceRecord
from seqweave.data.synthetic_dna import Read, markov_genome, reads_to_records, sample_reads
from seqweave.genomics.align import Aligner, Hit
from seqweave.genomics.contrastive import ContrastiveConfig, train_encoder
from seqweave.genomics.encoder import DnaEncoder, EncoderConfig
from seqweave.genomics.fragments import Fragments, fragment
from seqweave.genomics.kmers import kmer_profile
from seqweave.harness import add_run_arguments, cell_log_path, grid, run_grid, write_results

ROOT = Path(__file__).resolve().parents[2]
READ_LENGTH = 100
METHODS = ("ESA, trained encoder", "ESA, random-init encoder", "k-mer profile (k=5)", "minimap2")
# the trained encoder again, on reads of the genome it was trained on: how much of what it
# learnt is that genome's own statistics
SEEN = "ESA, trained encoder, on its training genome"


def genome_and_reads(settings: dict, seen: bool = False) -> tuple[str, list[Read]]:
    if seen:
        genome = markov_genome(settings["train_length"], 3, seed=11)
    else:
        genome = markov_genome(settings["genome_length"], 3, seed=12)
    reads = sample_reads(genome, settings["reads"], READ_LENGTH, 0.01, 0.004, seed=13)
    return genome, reads


def trained_encoder(settings: dict) -> DnaEncoder:
    """The encoder of runs/dna_align/encoder-STEPS, trained first when it is not there."""
    directory = Path(f"runs/dna_align/encoder-{settings['steps']}-d{settings['embedding_dim']}")
    if (directory / "model.safetensors").exists():
        return DnaEncoder.load(directory)
    torch.manual_seed(0)
    encoder = DnaEncoder(EncoderConfig(embedding_dim=settings["embedding_dim"]))
    training = [SequenceRecord("train", "", markov_genome(settings["train_length"], 3, seed=11))]
    steps = settings["steps"]
    config = ContrastiveConfig(steps=steps, warmup=max(1, steps // 10), read_length=READ_LENGTH)
    history = train_encoder(encoder, training, config, log=lambda line: print(line, flush=True))
    encoder.save(directory)
    write_json(directory / "train_log.json", {"training": to_dict(config), "log": history})
    return DnaEncoder.load(directory)


def embedding(method: str, settings: dict):
    if method.startswith("k-mer"):
        return kmer_profile(5)
    if method in ("ESA, trained encoder", SEEN):
        return trained_encoder(settings).embed_seqs
    torch.manual_seed(0)
    return DnaEncoder(EncoderConfig(embedding_dim=settings["embedding_dim"])).eval().embed_seqs


def recall(fragments: Fragments, ids: np.ndarray, reads: list[Read], k: int) -> float:
    """ids (R, 2, K'): share of reads with a window holding their true span in the top k."""
    end = READ_LENGTH
    found = [
        any(fragments.contains(i, "genome", r.start, r.start + end) for i in row[:, :k].ravel())
        for row, r in zip(ids, reads, strict=True)
    ]
    return float(np.mean(found))


def within(hits: list[tuple[int, str]], reads: list[Read], tolerance: int = 5) -> float:
    """Share of reads whose (position, strand) is the truth's strand and within tolerance."""
    good = [
        position >= 0 and abs(position - r.start) <= tolerance and strand == r.strand
        for (position, strand), r in zip(hits, reads, strict=True)
    ]
    return float(np.mean(good))


def minimap2(genome: str, reads: list[Read]) -> dict:
    import mappy

    started = time.perf_counter()
    aligner = mappy.Aligner(seq=genome, preset="sr", n_threads=1)
    built = time.perf_counter()
    hits = []
    for read in reads:
        hit = next(aligner.map(read.seq), None)
        if hit is None:
            hits.append((-1, "+"))
        else:
            clipped = hit.q_st if hit.strand == 1 else len(read.seq) - hit.q_en
            hits.append((hit.r_st - clipped, "+" if hit.strand == 1 else "-"))
    placed = time.perf_counter()
    return {
        "placed_within_5bp": within(hits, reads),
        "placed": float(np.mean([p >= 0 for p, _ in hits])),
        "reads_per_second": len(reads) / (placed - built),
        "index_seconds": built - started,
    }


def evaluate(cell: dict, settings: dict) -> dict:
    """One method on the evaluation genome's reads."""
    torch.set_num_threads(1)
    genome, reads = genome_and_reads(settings, seen=cell["method"] == SEEN)
    if cell["method"] == "minimap2":
        result = minimap2(genome, reads)
    else:
        embed = embedding(cell["method"], settings)
        windows = fragment([SequenceRecord("genome", "", genome)], 256, 128)
        started = time.perf_counter()
        aligner = Aligner(windows, embed)
        built = time.perf_counter()
        records = reads_to_records(reads)
        hits: list[Hit] = aligner.place(records, settings["top_k"])
        placed = time.perf_counter()
        ids, _ = aligner.retrieve([r.seq for r in reads], 10)
        result = {
            **{f"recall@{k}": recall(windows, ids, reads, k) for k in (1, 5, 10)},
            "placed_within_5bp": within([(h.position, h.strand) for h in hits], reads),
            "placed": float(np.mean([h.contig != "*" for h in hits])),
            "reads_per_second": len(reads) / (placed - built),
            "index_seconds": built - started,
            "windows": len(windows),
        }
    print(cell["method"], {k: round(v, 3) for k, v in result.items()}, flush=True)
    return result


COLUMNS = {
    "recall@1": "{:.3f}", "recall@5": "{:.3f}", "recall@10": "{:.3f}",
    "placed_within_5bp": "{:.3f}", "reads_per_second": "{:.0f}", "index_seconds": "{:.1f}",
}  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [form.format(row[key]) if key in row else "—" for key, form in COLUMNS.items()]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300, help="encoder training steps")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--genome-length", type=int, default=1_000_000)
    parser.add_argument("--train-length", type=int, default=1_000_000)
    parser.add_argument("--top-k", type=int, default=5, help="windows aligned per strand")
    add_run_arguments(parser, ROOT / "recipes/dna_align/results.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    settings = {
        "steps": args.steps, "reads": args.reads, "genome_length": args.genome_length,
        "train_length": args.train_length, "top_k": args.top_k,
        "embedding_dim": args.embedding_dim,
    }  # fmt: skip

    def write(rows: list[dict], complete: bool = False) -> None:
        write_results(
            args.out, seeds=None, device="cpu", jobs=args.jobs, started=started,
            complete=complete, settings=settings, results=rows, table=table(rows),
            protocol="encoder trained on genome seed 11, every figure on genome seed 12",
        )  # fmt: skip

    log = cell_log_path(args.out, "runs/dna_align", args.fresh)
    rows = run_grid(evaluate, grid(method=[*METHODS, SEEN]), settings, log, args.jobs, write)
    write(rows, complete=True)
    print(table(rows))


if __name__ == "__main__":
    main()
