"""PALM vs the prefix LM vs the encoder-decoder: attention degeneration and Multi30k BLEU.

    .venv/bin/python recipes/palm/run.py [--steps 600] [--mt-steps 1500] [--stage all]
        [--skip-training]

1. Cipher task (recipes/palm/cipher.toml): the target enciphers a 40-80 letter
   source letter by letter, so every target step needs the source. The three
   models, at about equal parameter counts, train for ``--steps`` updates each (an
   equal step budget: wall-clock time on a shared CPU is not a fair budget); then
   ``seqweave.analysis`` runs on 64 test pairs (source attention, gradient
   sensitivity to the source, accuracy per step) and greedy decoding scores the
   whole test set (exact match, and token accuracy per third of the target).
2. Multi30k EN->DE (recipes/palm/multi30k.toml): the same three, ``--mt-steps``
   each, BLEU of greedy decoding on test2016.

``--stage cipher`` or ``--stage multi30k`` runs one stage and keeps the other's
results in results.json; each stage records its own command, machine line and minutes
(``<stage>_run``) and each model the checkpoint scored (``seqweave.harness``). A model
that finished training with the same config is reused. Writes recipes/palm/results.json
and recipes/palm/attention.png, prints a table.
Run from the repository root; models go to runs/palm/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch

import seqweave
from seqweave.analysis import analyze_attention, plot_curves
from seqweave.config import load_config
from seqweave.data.readers import read_examples
from seqweave.harness import decode_and_score, scored_checkpoint, train_or_load, write_results
from seqweave.harness.results import command_line, machine_line

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/palm")
MULTI30K = Path("../shared/data/multi30k-en-de")
LETTERS = "abcdefghij"
CIPHER = dict(zip(LETTERS, "dgjacfibeh", strict=True))  # a fixed permutation

# model variants at about equal parameter counts (counts are reported in results.json)
VARIANTS = {
    "cipher": {
        "prefix LM": ["model.architecture=prefix_lm", "model.decoder_layers=5"],
        "PALM": [
            "model.architecture=prefix_lm",
            "model.partial_attention=true",
            "model.decoder_layers=3",
            "model.ffn_dim=172",
        ],
        "encoder-decoder": ["model.architecture=transformer"],
    },
    "multi30k": {
        "prefix LM": ["model.architecture=prefix_lm", "model.decoder_layers=7"],
        "PALM": [
            "model.architecture=prefix_lm",
            "model.partial_attention=true",
            "model.decoder_layers=5",
            "model.ffn_dim=564",
        ],
        "encoder-decoder": ["model.architecture=transformer"],
    },
}
DIRS = {"encoder-decoder": "encdec", "prefix LM": "prefix_lm", "PALM": "palm"}


def write_cipher(directory: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", 40000), ("valid", 200), ("test", 300)):
        with (directory / f"{name}.jsonl").open("w") as handle:
            for _ in range(count):
                source = "".join(rng.choices(LETTERS, k=rng.randint(40, 80)))
                target = "".join(CIPHER[c] for c in source)
                handle.write(json.dumps({"source": source, "target": target}) + "\n")


def train_variant(task: str, name: str, steps: int, skip: bool) -> tuple[Path, dict]:
    overrides = [
        *VARIANTS[task][name],
        f"train.max_steps={steps}",
        f"train.out_dir=runs/palm/{task}/{DIRS[name]}",
    ]
    config = load_config(HERE / f"{task}.toml", overrides)
    best = train_or_load(config, reuse_any=skip)
    checkpoint = scored_checkpoint(config.train.out_dir, best)
    model = seqweave.load(best)
    return best, {
        "parameters": sum(p.numel() for p in model.network.parameters()),
        "steps": checkpoint["step"],
        "minutes": checkpoint.get("minutes_at_last_log"),
        "checkpoint": checkpoint,
    }


def greedy_thirds(model, examples) -> dict:
    """Greedy outputs: exact match, and token accuracy (same index) per third of the target."""
    outputs = model.generate(
        [e.source for e in examples], batch_size=64, max_new_tokens=128, decoder="greedy"
    )
    hits, totals, exact = [0, 0, 0], [0, 0, 0], 0
    for output, example in zip(outputs, examples, strict=True):
        exact += output == example.target
        for i, letter in enumerate(example.target):
            third = min(2, 3 * i // len(example.target))
            totals[third] += 1
            hits[third] += i < len(output) and output[i] == letter
    return {
        "exact_match": exact / len(examples),
        "greedy_accuracy": {
            third: h / t
            for third, h, t in zip(("early", "middle", "late"), hits, totals, strict=True)
        },
    }


def cipher_stage(steps: int, skip: bool) -> dict:
    data = Path("runs/palm/cipher/data")
    if not (data / "test.jsonl").exists():
        write_cipher(data)
    test = read_examples(data / "test.jsonl")
    results, curves = {}, {}
    for name in VARIANTS["cipher"]:
        best, info = train_variant("cipher", name, steps, skip)
        model = seqweave.load(best)
        started = time.perf_counter()
        analysis = analyze_attention(model, test[:64], batch_size=16)
        info["analysis_seconds"] = time.perf_counter() - started
        info.update(greedy_thirds(model, test))
        info["thirds_teacher_forced"] = analysis["thirds"]
        info["analysis_steps"] = analysis["steps"]
        curves[name] = analysis
        results[name] = info
        print(f"cipher {name}: {json.dumps(analysis['thirds'])}", flush=True)
    plot_curves(curves, HERE / "attention.png", min_count=16)
    return results


def multi30k_stage(steps: int, skip: bool) -> dict:
    test = read_examples(MULTI30K / "test2016.jsonl")
    results = {}
    for name in VARIANTS["multi30k"]:
        best, info = train_variant("multi30k", name, steps, skip)
        model = seqweave.load(best)
        scored = decode_and_score(model, test, ["bleu"], batch_size=64, decoder="greedy")
        info["bleu_test2016_greedy"] = scored["scores"]["bleu"]
        results[name] = info
        print(f"multi30k {name}: BLEU {info['bleu_test2016_greedy']:.2f}", flush=True)
    return results


STAGES = {"cipher": cipher_stage, "multi30k": multi30k_stage}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=600, help="cipher training per model")
    parser.add_argument("--mt-steps", type=int, default=1500, help="Multi30k per model")
    parser.add_argument("--stage", choices=["all", "cipher", "multi30k"], default="all")
    parser.add_argument("--skip-training", action="store_true", help="reuse runs/palm/")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.chdir(ROOT)
    torch.set_num_threads(args.threads)
    out = HERE / "results.json"
    kept = json.loads(out.read_text()) if out.exists() else {}
    summary = {k: v for k, v in kept.items() if k not in ("command", "machine", "minutes")}
    stages = ["cipher", "multi30k"] if args.stage == "all" else [args.stage]
    begun = time.perf_counter()
    for stage in stages:
        started = time.perf_counter()
        run = STAGES[stage]
        summary[stage] = run(
            args.mt_steps if stage == "multi30k" else args.steps, args.skip_training
        )
        summary[f"{stage}_run"] = {
            "command": command_line(),
            "machine": machine_line("cpu", 1, args.threads),
            "minutes": (time.perf_counter() - started) / 60,
        }
    write_results(
        out,
        seeds=[1],
        device="cpu",
        jobs=1,
        threads=args.threads,
        started=begun,
        **{k: v for k, v in summary.items() if k not in ("seeds", "complete")},
    )
    for name, info in summary.get("cipher", {}).items():
        tf = info["thirds_teacher_forced"]
        print(
            f"{name:16s} params {info['parameters']:,}  step {info['steps']}  "
            f"src-attn early/late {tf['early']['source_attention']} / "
            f"{tf['late']['source_attention']}  "
            f"greedy acc late {info['greedy_accuracy']['late']:.3f}  "
            f"exact {info['exact_match']:.3f}"
        )
    for name, info in summary.get("multi30k", {}).items():
        print(f"{name:16s} params {info['parameters']:,}  BLEU {info['bleu_test2016_greedy']:.2f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
