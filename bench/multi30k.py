"""Train the encoder-decoder on Multi30k EN->DE and report BLEU on test2016.

    .venv/bin/python bench/multi30k.py [--minutes 40] [--skip-training]

Writes bench/results/multi30k.json (BLEU and chrF for greedy and beam 4, training
time and steps, machine) and prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import seqweave
from seqweave.commands.evaluate import evaluate
from seqweave.config import load_config
from seqweave.data.readers import read_examples
from seqweave.train import train
from seqweave.train.report import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TEST = "../shared/data/multi30k-en-de/test2016.jsonl"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--skip-training", action="store_true", help="score runs/multi30k/best")
    args = parser.parse_args()
    os.chdir(ROOT)
    config = load_config("bench/multi30k.toml", [f"train.max_minutes={args.minutes}"])
    started = time.perf_counter()
    best = Path(config.train.out_dir) / "best"
    if not args.skip_training:
        best = train(config)
    train_seconds = time.perf_counter() - started
    records = read_metrics(Path(config.train.out_dir) / "metrics.jsonl")
    steps = max((r["step"] for r in records), default=0)
    model = seqweave.load(best)
    test = read_examples(TEST)
    results = {}
    for name, options in (("greedy", {}), ("beam4", {"decoder": "beam", "beam_size": 4})):
        result = evaluate(model, test, ["bleu", "chrf"], batch_size=64, **options)
        results[name] = {
            "bleu": result["scores"]["bleu"],
            "chrf": result["scores"]["chrf"],
            "sentences_per_second": result["sentences_per_second"],
        }
    summary = {
        "data": "multi30k-en-de test2016 (1,000 sentences), sacrebleu 13a",
        "model": f"{sum(p.numel() for p in model.network.parameters()):,} parameters",
        "training_minutes": train_seconds / 60 if not args.skip_training else None,
        "steps": steps,
        "best_step": best.resolve().name,
        "machine": machine(),
        "results": results,
    }
    out = ROOT / "bench" / "results" / "multi30k.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    for name, r in results.items():
        speed = r["sentences_per_second"]
        print(f"{name:7s} BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}  {speed:.1f} sent/s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
