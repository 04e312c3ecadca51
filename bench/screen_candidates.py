"""How many tokens the output layer's screen leaves per position, on real decoder states.

    OMP_NUM_THREADS=1 .venv/bin/python bench/screen_candidates.py \
        [--hf-model ../shared/models/gec-bart-anchor] [--data ../shared/data/gec-synth/train.jsonl]

Decodes ``--limit`` sources greedily, then reads the final decoder states of every
position of the greedy outputs in one teacher-forced pass (the states greedy's passes
see), and screens them (models/argmax_screen.py): candidates per position (mean, median,
p99, max), the share of positions settled by the int8 bounds alone (one candidate), and
the share whose recomputed top two are a rounding-level tie (the pass then takes the full
product). Checks on the way that every position's float32 argmax is among its
candidates. Writes bench/results/screen_candidates.json (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

import seqweave
from seqweave.decoding.common import pad_batch
from seqweave.models.hf_import import import_hf

ROOT = Path(__file__).resolve().parents[1]


def greedy_states(model, texts: list[str], batch_size: int = 32):
    """Final decoder states (P, D) of every real position of the greedy outputs."""
    network = model.network
    sources = model.encode_sources(texts)
    outputs = model.generate_tokens(texts, decoder="greedy", batch_size=batch_size)
    states = []
    for start in range(0, len(texts), batch_size):
        chunk = range(start, min(start + batch_size, len(texts)))
        src, src_lengths = pad_batch([sources[i] for i in chunk], network.config.pad_id)
        targets = [[network.config.decoder_start_id, *outputs[i].tokens] for i in chunk]
        tgt_in, tgt_lengths = pad_batch(targets, network.config.pad_id)
        _, hidden = network.hidden_states(src, src_lengths, tgt_in)  # (B, T, D)
        for row, length in enumerate(tgt_lengths.tolist()):
            states.append(hidden[row, :length])
    return torch.cat(states)


def screen_counts(network, states: torch.Tensor) -> dict:
    """Candidate counts of ``states`` (P, D), and the share of rounding-level ties."""
    screen = network.output_screen()
    candidates = screen.candidates(states)  # (P, V)
    logits = network.logits(states)  # (P, V)
    argmax = logits.argmax(dim=-1)
    assert bool(candidates[torch.arange(len(states)), argmax].all()), "argmax screened out"
    counts = candidates.sum(dim=1).double()
    masked = logits.masked_fill(~candidates, float("-inf"))
    top = masked.topk(2, dim=1).values
    tolerance = torch.linalg.vector_norm(states, dim=1) * screen.tie + screen.bias_tie
    ties = (counts > 1) & (top[:, 0] - top[:, 1] <= tolerance)
    return {
        "positions": len(states),
        "mean": float(counts.mean()),
        "median": float(counts.median()),
        "p99": float(counts.quantile(0.99)),
        "max": int(counts.max()),
        "one_candidate": float((counts == 1).double().mean()),
        "rounding_ties": int(ties.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-model", default="../shared/models/gec-bart-anchor")
    parser.add_argument("--data", default="../shared/data/gec-synth/train.jsonl")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--output", default=str(ROOT / "bench/results/screen_candidates.json"))
    args = parser.parse_args()
    with Path(ROOT / args.data).open() as handle:
        texts = [json.loads(next(handle))["source"] for _ in range(args.limit)]
    with tempfile.TemporaryDirectory() as tmp:
        model = seqweave.load(import_hf(ROOT / args.hf_model, Path(tmp) / "m"))
    with torch.inference_mode():
        result = screen_counts(model.network, greedy_states(model, texts))
    result = {"model": args.hf_model, "data": args.data, "sentences": len(texts), **result}
    print(json.dumps(result, indent=2))
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
