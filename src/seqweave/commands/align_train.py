"""seqweave align-train --reference genome.fasta --output DIR [--steps 1000] ...

Trains the contrastive DNA encoder of ``seqweave align`` on read/window pairs drawn
from the reference (``seqweave.genomics.contrastive``) and writes a model directory
(``config.json``, ``model.safetensors``, ``train_log.json``). Its own command rather
than a ``seqweave train`` objective: the training pairs are simulated from a genome on
the fly, and the model is an encoder with no decoder state to step.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", required=True, nargs="+", help="FASTA file(s)")
    parser.add_argument("--output", required=True, help="model directory to write")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--read-length", type=int, default=100, help="simulated read length")
    parser.add_argument("--sub-rate", type=float, default=0.01)
    parser.add_argument("--indel-rate", type=float, default=0.004)
    parser.add_argument("--fragment-length", type=int, default=256, help="window length")
    parser.add_argument("--fragment-stride", type=int, default=128, help="window step")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--kmer", type=int, default=4, help="bases per (overlapping) token")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--pool-dim", type=int, default=512, help="features averaged per base")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=0.0, help="stop early (0: never)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")


def run(args: argparse.Namespace) -> int:
    import torch

    from seqweave.checkpoint import write_json
    from seqweave.config_parse import to_dict
    from seqweave.genomics.contrastive import ContrastiveConfig, train_encoder
    from seqweave.genomics.encoder import DnaEncoder, EncoderConfig, default_model
    from seqweave.genomics.sequences import read_reference

    if args.threads:
        torch.set_num_threads(args.threads)
    records = [r for path in args.reference for r in read_reference(path)]
    model = dataclasses.replace(
        default_model(args.kmer), d_model=args.d_model, encoder_layers=args.layers,
        ffn_dim=2 * args.d_model, max_positions=max(512, args.fragment_length),
    )  # fmt: skip
    config = EncoderConfig(
        model,
        args.kmer,
        args.embedding_dim,
        args.pool_dim,
        args.fragment_length,
        args.fragment_stride,
    )
    training = ContrastiveConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, temperature=args.temperature,
        read_length=args.read_length, sub_rate=args.sub_rate, indel_rate=args.indel_rate,
        seed=args.seed, max_seconds=args.max_seconds, warmup=min(100, args.steps // 10 + 1),
    )  # fmt: skip
    encoder = DnaEncoder(config)
    log = lambda line: print(line, file=sys.stderr, flush=True)
    history = train_encoder(encoder, records, training, log)
    out = encoder.save(args.output)
    write_json(Path(out) / "train_log.json", {"training": to_dict(training), "log": history})
    print(f"wrote {out}", file=sys.stderr)
    return 0
