"""Packed reads vs padded reads: real tokens per second of a training step.

    .venv/bin/python bench/dna_packing.py [--rounds 5] [--threads 1]

Reads of a synthetic genome (``seqweave.data.synthetic_dna``), tokenized by a DNA
BPE (vocabulary 512), train the recipe's decoder (recipes/dna/pretrain.toml's
model) for one update per batch: forward, backward, AdamW. Three ways to batch the
same reads at the same budget of about ``--tokens`` tokens per batch:

- ``padded, random``: reads in random order, each its own row, padded to the longest
  of the batch (what a plain data loader does);
- ``padded, bucketed``: the trainer's default, ``token_batches`` with rows sorted by
  length, so batches hold reads of similar length (``max_tokens`` counts padded tokens);
- ``packed, rows of N``: ``data.pack_sequences``, reads packed into rows of N tokens
  (``data.max_target_len``) with the block-diagonal mask (``max_tokens`` counts real
  tokens).

Two read sets: fixed 100 bp reads (lengths in tokens vary only through the BPE), and
trimmed reads of 40-250 bp (what quality trimming leaves). Interleaved timing, median
over rounds; only real (non-pad) tokens count. Writes bench/results/dna_packing.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch

from seqweave.config import ExperimentConfig, load_config
from seqweave.data.batching import token_batches
from seqweave.data.packing import collate_packed, packed_batches
from seqweave.data.synthetic_dna import markov_genome, sample_reads
from seqweave.data.tokenized import collate
from seqweave.harness.results import command_line, machine_line
from seqweave.models import build_model
from seqweave.objectives.registry import build_training_loss
from seqweave.tokenizers.dna_bpe import train_dna_bpe
from seqweave.train import resolve_model_config
from seqweave.train.loop import make_optimizer

ROOT = Path(__file__).resolve().parents[1]


def read_sets(seed: int = 0) -> dict[str, list[str]]:
    genome = markov_genome(200_000, 5, seed=seed)
    fixed = [r.seq for r in sample_reads(genome, 3000, 100, 0.005, 0.002, seed=seed)]
    rng = random.Random(seed)
    trimmed = [
        read[: rng.randint(40, 250)]
        for read in (r.seq for r in sample_reads(genome, 3000, 250, 0.005, 0.002, seed=seed + 1))
    ]
    return {"100 bp": fixed, "40-250 bp": trimmed}


def batchings(targets: list[list[int]], tokens: int, seed: int) -> dict[str, list]:
    """Each batching of the same reads: name -> list of (indices, packed row length or 0)."""
    lengths = [len(t) + 1 for t in targets]
    order = list(range(len(targets)))
    random.Random(seed).shuffle(order)
    random_batches, current, longest = [], [], 0
    for i in order:  # padded tokens of a random batch: rows x its longest read
        if current and (len(current) + 1) * max(longest, lengths[i]) > tokens:
            random_batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, lengths[i])
    bucketed = token_batches([(1, n) for n in lengths], tokens, shuffle=True, seed=seed)
    packed = packed_batches(lengths, tokens, seed)
    return {
        "padded, random": [(b, 0) for b in random_batches],
        "padded, bucketed": [(b, 0) for b in bucketed],
        **{f"packed, rows of {n}": [(b, n) for b in packed] for n in (64, 128, 256)},
    }


def time_update(model, loss_fn, optimizer, batch) -> float:
    began = time.perf_counter()
    loss = loss_fn(model, model, batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - began


def make_batch(targets, indices, row_tokens: int, cfg):
    """The batch of ``indices``: packed into rows of ``row_tokens``, or padded (0)."""
    chosen = [targets[i] for i in indices]
    source = [cfg.eos_id]
    if row_tokens:
        return collate_packed([source] * len(chosen), chosen, cfg, row_tokens)
    return collate([source] * len(chosen), chosen, cfg)


def measure(reads: list[str], base: ExperimentConfig, args) -> dict[str, dict]:
    """Median real tokens per second of each batching of ``reads``, interleaved by round,
    and the share of real tokens in its first 50 batches."""
    tokenizer = train_dna_bpe(reads, 512)
    targets = tokenizer.encode_batch(reads)
    model_cfg = resolve_model_config(base.model, tokenizer)
    cfg = ExperimentConfig(model=model_cfg, train=base.train)
    torch.manual_seed(0)
    model = build_model(model_cfg).train()
    optimizer = make_optimizer(model, cfg.train)
    loss_fn = build_training_loss(cfg)
    methods = batchings(targets, args.tokens, seed=1)
    speeds: dict[str, list[float]] = {m: [] for m in methods}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for method, batches in methods.items():
            tokens, seconds = 0, 0.0
            for indices, rows in batches[round_ * args.batches : (round_ + 1) * args.batches]:
                batch = make_batch(targets, indices, rows, model_cfg)
                seconds += time_update(model, loss_fn, optimizer, batch)
                tokens += batch.num_tokens
            if round_:
                speeds[method].append(tokens / seconds)
    results = {}
    for method, batches in methods.items():
        collated = [make_batch(targets, indices, rows, model_cfg) for indices, rows in batches[:50]]
        results[method] = {
            "tokens_per_second": statistics.median(speeds[method]),
            "first_batch_shape": list(collated[0].tgt_in.shape),
            "real_token_share": sum(b.num_tokens for b in collated)
            / sum(b.tgt_in.numel() for b in collated),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4, help="batches per method and round")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = load_config(ROOT / "recipes/dna/pretrain.toml")
    results = {}
    for name, reads in read_sets().items():
        results[name] = measure(reads, base, args)
        for method, row in results[name].items():
            print(
                f"{name:10s} {method:18s} {row['tokens_per_second']:8.0f} tok/s  "
                f"real share {row['real_token_share']:.2f}",
                flush=True,
            )
    out = ROOT / "bench/results/dna_packing.json"
    out.write_text(
        json.dumps(
            {
                "command": command_line(),
                "machine": machine_line("cpu", 1, args.threads),
                "tokens_per_batch": args.tokens,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
