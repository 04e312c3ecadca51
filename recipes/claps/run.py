"""CLAPS vs plain MLE on Multi30k EN->DE and E2E data-to-text: BLEU at an equal number of updates.

    PYTHONPATH=src .venv/bin/python recipes/claps/run.py [--quick] [--steps N] [--seeds 1,2,3]
        [--tasks multi30k,e2e] [--claps-weight W] [--warm-start N] [--device cpu|cuda] [--jobs N]
        [--out FILE] [--fresh]

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
batches, fewer updates) fits a few CPU minutes. Runs are a grid (``seqweave.harness``):
``--jobs N`` trains N at a time in spawned processes (one CPU thread each); a cut-off run
resumes with the runs it has not finished, and a model that finished training with the same
config is reused. Writes recipes/claps/results.json (or ``--out``) and prints mean +- std
over seeds. Run from the repository root.

``--warm-start N`` is the paper's regime (CLAPS when fine-tuning a trained model): per task
and seed one plain MLE model first trains for N updates (scored too, as ``warm``); both
variants then start from its weights (``train.init_from``; CLAPS's head is new) and train
``--steps`` more updates each, with a fresh learning-rate schedule and a different batch
order (seed + 1000) than the warm-start's.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

import torch

from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    difference,
    figures_table,
    grid,
    run_grid,
    seed_list,
    summarise,
    write_results,
)

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


def build_tokenizers(tasks: list[str], runs: Path, quick: bool) -> dict[str, str]:
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
        paths[task] = str(path)
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


def overrides(cell: dict, settings: dict) -> list[str]:
    """The config of one run: a warm-start model (``warm``) or a variant, from scratch or
    continuing from its seed's warm-start model."""
    task, variant, seed, runs = cell["task"], cell["variant"], cell["seed"], Path(settings["runs"])
    warm = settings["warm_start"]
    steps = warm if variant == "warm" else settings["steps"]
    values = [*(QUICK if settings["quick"] else []), *VARIANTS.get(variant, [])]
    if variant == "claps":
        values.append(f"objectives.claps.weight={settings['claps_weight']}")
    if variant == "warm":
        values += [f"train.seed={seed}", f"train.out_dir={runs / task / f'warm{warm}-seed{seed}'}"]
    elif warm:
        base = runs / task / f"warm{warm}-seed{seed}" / "best"
        values += [f"train.init_from={base}", f"train.seed={seed + 1000}"]
        values.append(f"train.out_dir={runs / task / f'{variant}-warm{warm}-seed{seed}'}")
    else:
        values += [f"train.seed={seed}", f"train.out_dir={runs / task / f'{variant}-seed{seed}'}"]
    return [
        *values,
        f"tokenizer.path={settings['tokenizers'][task]}",
        f"train.device={settings['device']}",
        f"train.max_steps={steps}",
        f"train.validate_every={steps}",
        f"train.log_every={max(1, steps // 10)}",
    ]


def train_and_score(cell: dict, settings: dict) -> dict:
    """Train one model (unless finished) and score it; runs in a worker process."""
    import seqweave
    from seqweave.config import load_config
    from seqweave.harness import decode_and_score, scored_checkpoint, train_or_load
    from seqweave.train.report import read_metrics

    torch.set_num_threads(1)
    config = load_config(HERE / f"{cell['task']}.toml", overrides(cell, settings))
    best = train_or_load(config)
    log = read_metrics(Path(config.train.out_dir) / "metrics.jsonl")
    last = [r for r in log if r["kind"] == "train"][-1]  # the last logged window
    model = seqweave.load(best, device=settings["device"])
    scored = decode_and_score(
        model, test_examples(cell["task"]), ["bleu"], batch_size=200, decoder="greedy"
    )
    row = {
        "bleu": scored["scores"]["bleu"],
        "updates": config.train.max_steps,
        "seconds_per_100_updates": 100 * last["elapsed_seconds"] / last["step"],
        "final_train_loss": last["loss"],
        "decode_seconds": scored["seconds"],
        "parameters": sum(p.numel() for p in model.network.parameters()),
        "checkpoint": scored_checkpoint(config.train.out_dir, best),
    }
    print(
        f"{cell['task']:9} {cell['variant']:6} seed {cell['seed']}  BLEU {row['bleu']:6.2f}"
        f"  {row['updates']} updates, {row['seconds_per_100_updates']:.1f} s per 100",
        flush=True,
    )
    return row


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
    add_run_arguments(parser, HERE / "results.json", jobs=2)
    args = parser.parse_args()
    seeds, tasks = seed_list(args.seeds), args.tasks.split(",")
    steps = args.steps or (300 if args.quick else 1000)
    os.chdir(ROOT)
    runs = Path("runs/claps") / ("quick" if args.quick else "full")
    started = time.perf_counter()
    settings = {
        "quick": args.quick,
        "steps": steps,
        "claps_weight": args.claps_weight,
        "warm_start": args.warm_start,
        "device": args.device,
        "runs": str(runs),
        "tokenizers": build_tokenizers(tasks, runs, args.quick),
    }
    # the warm-start models train first: the variants start from their weights
    stages = [grid(task=tasks, variant=["warm"], seed=seeds)] if args.warm_start else []
    stages.append(grid(task=tasks, variant=list(VARIANTS), seed=seeds))
    log = cell_log_path(args.out, runs, args.fresh)
    done: list[dict] = []

    def write(rows: list[dict], complete: bool = False) -> dict:
        summary = summarise(done + rows, by=("task", "variant"))
        return write_results(
            args.out,
            seeds=seeds,
            device=args.device,
            jobs=args.jobs,
            started=started,
            complete=complete,
            configuration="quick" if args.quick else "full",
            updates=steps,
            claps_weight=args.claps_weight,
            warm_start_updates=args.warm_start,
            results=summary,
            claps_minus_mle_bleu={
                task: difference(
                    summary[f"{task} / mle"]["bleu"], summary[f"{task} / claps"]["bleu"]
                )
                for task in tasks
                if f"{task} / mle" in summary and f"{task} / claps" in summary
            },
            runs=done + rows,
        )

    for cells in stages:
        done += run_grid(train_and_score, cells, settings, log, args.jobs, write)
    result = write([], complete=True)
    columns = {"BLEU": "bleu", "s per 100 updates": "seconds_per_100_updates"}
    print(figures_table(result["results"], columns))
    noise = {True: "within seed noise", False: "outside seed noise", None: "one seed"}
    for task, judged in result["claps_minus_mle_bleu"].items():
        verdict = noise[judged["within_seed_noise"]]
        print(f"{task}: CLAPS - MLE {judged['difference']:+.2f} BLEU, {verdict}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
