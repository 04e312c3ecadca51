"""CLAPS vs plain MLE on Multi30k EN->DE and E2E data-to-text: BLEU at an equal number of updates.

    PYTHONPATH=src .venv/bin/python recipes/claps/run.py [--quick] [--steps N] [--seeds 1,2,3]
        [--tasks multi30k,e2e] [--claps-weight W] [--warm-start N] [--device cpu|cuda] [--jobs N]
        [--out FILE]

For each task, seed and variant one model trains for the same number of updates
(``mle``: label-smoothed MLE; ``claps``: the same plus ``objectives.claps.weight`` times
CLAPS's loss, objectives/claps.py). Both variants of a seed start from the same
weights (the projection head is built last) and see the same batches. No validation
during training: the model scored is the one after the last update. Greedy
decoding, sacrebleu BLEU: Multi30k on test2016; E2E on its official development set
(the test set is not in ../shared/data), one row per meaning representation with all
of its references. Each task's BPE tokenizer is built once, before the runs.

The default size (d 256, 3 + 3 layers, 4,096-token batches, 1,000 updates) is meant for
one GPU with ``--jobs 12``; ``--quick`` (d 128, 2 + 2 layers, 2,000 BPE tokens, 1,024-token
batches, fewer updates) fits a few CPU minutes. Runs are independent: ``--jobs N`` trains N
at a time in spawned processes (one CPU thread each). Writes recipes/claps/results.json (or
``--out``) and prints mean +- std over seeds. Run from the repository root.

``--warm-start N`` is the paper's regime (CLAPS when fine-tuning a trained model): per task
and seed one plain MLE model first trains for N updates (scored too, as ``warm``); both
variants then start from its weights (``train.init_from``; CLAPS's head is new) and train
``--steps`` more updates each, with a fresh learning-rate schedule and a different batch
order (seed + 1000) than the warm-start's. A warm-start model already in its directory is
reused, not retrained.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch

from seqweave.device import describe_machine

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/claps")
DATA = Path("../shared/data")
TASKS = {
    "multi30k": (DATA / "multi30k-en-de/train.jsonl", DATA / "multi30k-en-de/test2016.jsonl"),
    "e2e": (DATA / "e2e/train.jsonl", DATA / "e2e/valid.jsonl"),
}
VARIANTS = {"mle": [], "claps": ["model.contrastive_dim=128"]}
QUICK = [
    "model.d_model=128",
    "model.encoder_layers=2",
    "model.decoder_layers=2",
    "model.ffn_dim=512",
    "data.max_tokens=1024",
    "train.warmup_steps=100",
]
QUICK_VOCAB = 2000  # BPE size of the quick configuration's tokenizers


def build_tokenizers(tasks: list[str], runs: Path, quick: bool) -> dict[str, Path]:
    """One tokenizer per task, shared by all its runs (built here, not once per run)."""
    from seqweave.config import load_config
    from seqweave.data.readers import read_examples
    from seqweave.tokenizers import build_tokenizer

    paths = {}
    for task in tasks:
        path = runs / task / "tokenizer"
        if not (path / "tokenizer.json").exists():
            cfg = load_config(HERE / f"{task}.toml").tokenizer
            examples = read_examples(TASKS[task][0])
            texts = [text for e in examples for text in (e.source, e.target or "")]
            size = QUICK_VOCAB if quick else cfg.vocab_size
            build_tokenizer(cfg.kind, texts, size, cfg.task_tokens, None).save(path)
        paths[task] = path
    return paths


def test_examples(task: str) -> list:
    """The scored examples; E2E's rows are grouped by meaning representation, each with all
    of its references."""
    from seqweave.data.readers import Example, read_examples

    examples = read_examples(TASKS[task][1])
    if task != "e2e":
        return examples
    grouped: dict[str, list] = defaultdict(list)
    for e in examples:
        grouped[e.source].append(e)
    return [
        Example(source, rows[0].target, {"references": [r.target for r in rows]}, rows[0].path, 0)
        for source, rows in grouped.items()
    ]


def train_and_score(work: dict) -> dict:
    """Train one model and score it; runs in a worker process."""
    import seqweave
    from seqweave.commands.evaluate import evaluate
    from seqweave.config import load_config
    from seqweave.train import train
    from seqweave.train.report import read_metrics

    torch.set_num_threads(1)
    config = load_config(HERE / f"{work['task']}.toml", work["overrides"])
    best = Path(config.train.out_dir) / "best"
    if not (work["variant"] == "warm" and (best / "model.safetensors").exists()):
        best = train(config)
    log = read_metrics(Path(config.train.out_dir) / "metrics.jsonl")
    last = [r for r in log if r["kind"] == "train"][-1]  # the last logged window
    model = seqweave.load(best, device=work["device"])
    scored = evaluate(
        model, test_examples(work["task"]), ["bleu"], batch_size=200, decoder="greedy"
    )
    return {
        "bleu": scored["scores"]["bleu"],
        "updates": config.train.max_steps,
        "seconds_per_100_updates": 100 * last["elapsed_seconds"] / last["step"],
        "final_train_loss": last["loss"],
        "decode_seconds": scored["seconds"],
        "parameters": sum(p.numel() for p in model.network.parameters()),
    }


def warm_start_dir(runs: Path, task: str, steps: int, seed: int) -> Path:
    return runs / task / f"warm{steps}-seed{seed}"


def plan_warm_start(args, tokenizers: dict[str, Path], runs: Path) -> list[dict]:
    """The plain MLE models the ``--warm-start`` variants continue from (one per task and seed)."""
    return [
        {
            "task": task,
            "variant": "warm",
            "seed": seed,
            "device": args.device,
            "overrides": [
                *(QUICK if args.quick else []),
                f"tokenizer.path={tokenizers[task]}",
                f"train.seed={seed}",
                f"train.device={args.device}",
                f"train.max_steps={args.warm_start}",
                f"train.validate_every={args.warm_start}",
                f"train.log_every={max(1, args.warm_start // 10)}",
                f"train.out_dir={warm_start_dir(runs, task, args.warm_start, seed)}",
            ],
        }
        for task in args.tasks
        for seed in args.seeds
    ]


def plan(args, tokenizers: dict[str, Path], runs: Path) -> list[dict]:
    work = []
    for task in args.tasks:
        for seed in args.seeds:
            if args.warm_start:
                base = warm_start_dir(runs, task, args.warm_start, seed) / "best"
                start = [f"train.init_from={base}", f"train.seed={seed + 1000}"]
                name = f"-warm{args.warm_start}"
            else:
                start, name = [f"train.seed={seed}"], ""
            for variant, overrides in VARIANTS.items():
                work.append(
                    {
                        "task": task,
                        "variant": variant,
                        "seed": seed,
                        "device": args.device,
                        "overrides": [
                            *(QUICK if args.quick else []),
                            *overrides,
                            *(
                                [f"objectives.claps.weight={args.claps_weight}"]
                                if variant == "claps"
                                else []
                            ),
                            f"tokenizer.path={tokenizers[task]}",
                            *start,
                            f"train.device={args.device}",
                            f"train.max_steps={args.steps}",
                            f"train.validate_every={args.steps}",
                            f"train.log_every={max(1, args.steps // 10)}",
                            f"train.out_dir={runs / task / f'{variant}{name}-seed{seed}'}",
                        ],
                    }
                )
    return work


def summarise(rows: list[dict]) -> dict:
    def spread(values: list[float]) -> dict:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return {"mean": statistics.fmean(values), "std": std, "runs": values}

    table: dict[str, dict] = defaultdict(dict)
    for task in dict.fromkeys(r["task"] for r in rows):
        for variant in dict.fromkeys(r["variant"] for r in rows):
            mine = [r for r in rows if r["task"] == task and r["variant"] == variant]
            updates = mine[0]["updates"]
            table[task][variant] = {
                "bleu": spread([r["bleu"] for r in mine]),
                "updates": updates,
                "seconds_per_100_updates": spread([r["seconds_per_100_updates"] for r in mine]),
                "parameters": mine[0]["parameters"],
            }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the small CPU configuration")
    parser.add_argument("--steps", type=int, help="updates per run (default 1000; quick 300)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--tasks", default="multi30k,e2e")
    parser.add_argument("--claps-weight", type=float, default=1.0, help="objectives.claps.weight")
    parser.add_argument(
        "--warm-start",
        type=int,
        default=0,
        help="first train plain MLE for N updates; both variants continue from it (0: off)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at a time")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.tasks = args.tasks.split(",")
    args.steps = args.steps or (300 if args.quick else 1000)
    os.chdir(ROOT)
    runs = Path("runs/claps") / ("quick" if args.quick else "full")
    started = time.perf_counter()
    tokenizers = build_tokenizers(args.tasks, runs, args.quick)
    # the warm-start models train first: the variants start from their weights
    stages = [plan_warm_start(args, tokenizers, runs)] if args.warm_start else []
    stages.append(plan(args, tokenizers, runs))
    rows = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for stage in stages:
            for item, row in zip(stage, pool.imap(train_and_score, stage), strict=True):
                rows.append(
                    {"task": item["task"], "variant": item["variant"], "seed": item["seed"], **row}
                )
                print(
                    f"{item['task']:9} {item['variant']:6} seed {item['seed']}"
                    f"  BLEU {row['bleu']:6.2f}  {row['updates']} updates,"
                    f" {row['seconds_per_100_updates']:.1f} s per 100",
                    flush=True,
                )
    table = summarise(rows)
    summary = {
        "configuration": "quick" if args.quick else "full",
        "updates": args.steps,
        "claps_weight": args.claps_weight,
        "warm_start_updates": args.warm_start,
        "seeds": args.seeds,
        "machine": describe_machine(args.device, args.jobs),
        "minutes": (time.perf_counter() - started) / 60,
        "results": table,
        "runs": rows,
    }
    out = Path(args.out)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    for task, variants in table.items():
        for variant, info in variants.items():
            bleu, speed = info["bleu"], info["seconds_per_100_updates"]
            print(
                f"{task:9} {variant:6} BLEU {bleu['mean']:6.2f} +- {bleu['std']:.2f}"
                f"  ({info['updates']} updates, {speed['mean']:.1f} s per 100)"
            )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
