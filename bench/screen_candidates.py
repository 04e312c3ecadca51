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
from seqweave.models.argmax_screen import recompute
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
    """Candidate counts of ``states`` (P, D), and the positions whose recomputed top two are
    a rounding-level tie (a pass holding one takes the full product)."""
    screen = network.output_screen()
    keep = screen.candidates(states)  # (P, V)
    argmax = network.logits(states).argmax(dim=-1)
    assert bool(keep[torch.arange(len(states)), argmax].all()), "argmax screened out"
    counts = keep.sum(dim=1)
    ambiguous = (counts > 1).nonzero()[:, 0]
    output = network.output_tokens if network.output is None else network.output
    weight = network._output_transposed.get(output.weight)
    bias = network.final_logits_bias
    _, tied = recompute(states.index_select(0, ambiguous), keep, ambiguous, weight, bias)
    counts = counts.double()
    return {
        "positions": len(states),
        "mean": float(counts.mean()),
        "median": float(counts.median()),
        "p99": float(counts.quantile(0.99)),
        "max": int(counts.max()),
        "one_candidate": float((counts == 1).double().mean()),
        "rounding_ties": int(tied.sum()),
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
