"""What one decoder pass costs with K new tokens per row, at batch 1 and 32.

    .venv/bin/python bench/step_cost.py [--hf-model ../shared/models/gec-bart-anchor]

Explains when drafting pays: a verification pass of K tokens costs little more
than a 1-token pass while per-operation overhead dominates (batch 1), and
nearly K times more once the block is compute-bound (large batches on a CPU).
Interleaved timing, median of rounds. Writes bench/results/step_cost.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import seqweave
from seqweave.decoding.common import pad_batch
from seqweave.models.hf_import import import_hf

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-model", default="../shared/models/gec-bart-anchor")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        model = seqweave.load(import_hf(ROOT / args.hf_model, Path(tmp) / "m"))
    net = model.network
    with (ROOT / "../shared/data/gec-synth/train.jsonl").open() as handle:
        texts = [json.loads(next(handle))["source"] for _ in range(32)]
    table = {}
    for batch in (1, 32):
        src, lengths = pad_batch(model.encode_sources(texts[:batch]), net.config.pad_id)
        memory = net.encode(src, lengths)
        times: dict[int, list[float]] = {k: [] for k in (1, 2, 4, 8, 16)}
        states = {k: net.start(memory, capacity=64) for k in times}
        zero = torch.zeros(batch, dtype=torch.long)
        for _ in range(args.rounds):
            for k, state in states.items():
                tokens = torch.full((batch, k), 5)
                began = time.perf_counter()
                for _ in range(5):
                    net.step(state, tokens)
                    state.lengths = zero
                times[k].append((time.perf_counter() - began) / 5 * 1e3)
        table[batch] = {k: statistics.median(v) for k, v in times.items()}
        row = "  ".join(f"K={k}: {ms:.2f} ms" for k, ms in table[batch].items())
        print(f"batch {batch:2d}: {row}")
    out = ROOT / "bench" / "results" / "step_cost.json"
    out.write_text(json.dumps({"model": args.hf_model, "ms_per_pass": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
