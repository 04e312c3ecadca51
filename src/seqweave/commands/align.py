"""seqweave align --model DIR --reference genome.fasta --reads reads.fastq --output hits.tsv

Places each read on the reference by Embed-Search-Align: the reference's windows are
embedded by the encoder in DIR (from ``seqweave align-train``) into a faiss index, each
read's top-k windows on both strands are retrieved, and Smith-Waterman picks the place
(``seqweave.genomics.align``). Writes one line per read (``seqweave.genomics.hits``).
"""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="encoder directory (align-train)")
    parser.add_argument("--reference", required=True, help="FASTA file")
    parser.add_argument("--reads", required=True, help="FASTQ (or FASTA) file of reads")
    parser.add_argument("--output", required=True, help="hits TSV to write")
    parser.add_argument("--top-k", type=int, default=5, help="windows aligned per strand")
    parser.add_argument("--index", default="flat", choices=("flat", "ivf", "hnsw"))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")


def run(args: argparse.Namespace) -> int:
    import torch

    from seqweave.errors import ConfigError
    from seqweave.genomics.align import Aligner
    from seqweave.genomics.encoder import DnaEncoder
    from seqweave.genomics.fragments import fragment
    from seqweave.genomics.hits import write_hits
    from seqweave.genomics.sequences import read_reads, read_reference

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = DnaEncoder.load(args.model)
    started = time.perf_counter()
    reference = read_reference(args.reference)
    reads = read_reads(args.reads)
    config = encoder.config
    windows = fragment(reference, config.fragment_length, config.fragment_stride)
    aligner = Aligner(windows, encoder.embed_seqs, args.index)
    indexed = time.perf_counter()
    hits = aligner.place(reads, args.top_k)
    placed = time.perf_counter()
    write_hits(args.output, hits)
    rate = len(reads) / max(placed - indexed, 1e-9)
    print(
        f"{sum(h.contig != '*' for h in hits)}/{len(reads)} reads placed; "
        f"{len(windows)} windows indexed in {indexed - started:.1f}s; {rate:.0f} reads/s "
        f"-> {args.output}",
        file=sys.stderr,
    )
    return 0
