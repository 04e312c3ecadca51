"""Generalized aggressive decoding on Multi30k EN->DE: distil, train the drafter, measure.

    .venv/bin/python recipes/gad/run.py [--target runs/multi30k/best] [--minutes 25]
        [--repeats 3] [--relaxed 3,3.0] [--skip-training | --retrain]

1. The target is the model of ``bench/multi30k.py`` (run that first).
2. Its greedy outputs on the Multi30k training sources become the drafter's
   targets (sequence-level distillation), so the drafter learns what the target says.
3. A NAR block drafter (recipes/gad/drafter.toml) starts from the target's
   encoder and first decoder layers and trains for ``--minutes`` (``seqweave.harness.
   train_or_load``: a finished drafter of the same config is reused).
4. On test2016, at batch 1 and 32, side by side in one run: greedy, GAD and
   GAD++ (relaxed, lossy). Reported: outputs identical to greedy, decoder
   passes, accepted tokens per pass, BLEU, and sentences/s (median of ``--repeats``).

Writes recipes/gad/results.json (with the scored drafter checkpoint's step and validation)
and prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import seqweave
from seqweave.config import load_config
from seqweave.data.readers import read_examples
from seqweave.harness import scored_checkpoint, train_or_load, write_results
from seqweave.metrics import compute_metric
from seqweave.train.distil import write_distilled

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("../shared/data/multi30k-en-de")


def systems(relaxed: tuple[int, float]) -> dict[str, dict]:
    beta, tau = relaxed
    return {
        "greedy": {"decoder": "greedy"},
        "gad": {"decoder": "gad"},
        f"gad++ ({beta},{tau:g})": {"decoder": "gad", "relaxed_top": beta, "relaxed_gap": tau},
    }


def measure(model, sources, references, batch_size: int, repeats: int, relaxed) -> dict:
    """Every system over the whole set, interleaved, ``repeats`` times."""
    runs: dict[str, list[float]] = {name: [] for name in systems(relaxed)}
    outputs: dict[str, list] = {}
    for _ in range(repeats):
        for name, options in systems(relaxed).items():
            started = time.perf_counter()
            outputs[name] = model.generate_tokens(sources, batch_size=batch_size, **options)
            runs[name].append(time.perf_counter() - started)
    greedy = [o.tokens for o in outputs["greedy"]]
    greedy_seconds = statistics.median(runs["greedy"])
    table = {}
    for name, result in outputs.items():
        passes = sum(o.stats.passes for o in result)
        hypotheses = model.tokenizer.decode_batch([o.tokens for o in result])
        seconds = statistics.median(runs[name])
        table[name] = {
            "identical_to_greedy": sum(o.tokens == g for o, g in zip(result, greedy, strict=True))
            / len(greedy),
            "passes_per_sentence": passes / len(result),
            "accepted_per_pass": sum(o.stats.accepted for o in result) / passes,
            "bleu": compute_metric("bleu", hypotheses, references)["bleu"],
            "sentences_per_second": len(result) / seconds,
            "speedup_vs_greedy": greedy_seconds / seconds,
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", default="runs/multi30k/best")
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--relaxed", default="3,3.0", help="GAD++ BETA,TAU")
    parser.add_argument("--skip-training", action="store_true", help="use runs/gad/drafter/best")
    parser.add_argument("--retrain", action="store_true", help="even if a finished drafter exists")
    args = parser.parse_args()
    started = time.perf_counter()
    beta, tau = args.relaxed.split(",")
    relaxed = (int(beta), float(tau))
    os.chdir(ROOT)
    target_dir = Path(args.target)
    if not (target_dir / "config.json").exists():
        raise SystemExit(f"{target_dir}: no model; run bench/multi30k.py first")
    target = seqweave.load(target_dir)
    config = load_config(
        "recipes/gad/drafter.toml",
        [
            f"tokenizer.path={target_dir}",
            f"train.init_from={target_dir}",
            f"train.max_minutes={args.minutes}",
        ],
    )
    data = Path(config.data.train).parent
    for name, split in (("train", "train"), ("valid", "valid")):
        path = data / f"{name}.jsonl"
        if not path.exists():
            sources = [e.source for e in read_examples(DATA / f"{split}.jsonl")]
            seconds = write_distilled(target, sources, path, batch_size=64)
            print(f"distilled {len(sources)} {name} outputs in {seconds:.0f} s", flush=True)
    best = train_or_load(config, retrain=args.retrain, reuse_any=args.skip_training)
    target.attach_draft(seqweave.load(best))

    test = read_examples(DATA / "test2016.jsonl")
    sources = [e.source for e in test]
    references = [[e.target] for e in test]
    results = {
        f"batch {size}": measure(target, sources, references, size, args.repeats, relaxed)
        for size in (1, 32)
    }
    out = ROOT / "recipes" / "gad" / "results.json"
    write_results(
        out,
        seeds=[config.train.seed],
        device="cpu",
        jobs=1,
        threads=torch.get_num_threads(),
        started=started,
        data="multi30k-en-de test2016 (1,000 sentences), sacrebleu 13a",
        target=str(target_dir),
        drafter_block=config.model.draft_block,
        drafter=scored_checkpoint(config.train.out_dir, best),
        repeats=args.repeats,
        results=results,
    )
    for size, table in results.items():
        print(size)
        for name, r in table.items():
            print(
                f"  {name:16s} identical {r['identical_to_greedy']:.1%}  "
                f"passes {r['passes_per_sentence']:.2f}  accepted/pass {r['accepted_per_pass']:.2f}"
                f"  BLEU {r['bleu']:.2f}  {r['sentences_per_second']:.1f} sent/s  "
                f"x{r['speedup_vs_greedy']:.2f}"
            )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
