"""Code-switching restore (Zan et al. 2022) before EN->DE fine-tuning on Multi30k.

    python recipes/code_switch/run.py [--quick] [--device cpu|cuda] [--jobs N]
        [--seeds 4] [--stage-steps M] [--steps N] [--out results.json] [--fresh]

1. Preparation (once): a joint byte-level BPE tokenizer on the English and German
   training sentences (one vocabulary, so one encoder reads both languages and their
   states can be compared); IBM Model 1 lexicons EN->DE and DE->EN from the training
   bitext (``seqweave.data.lexicon``); restore pairs (code-switched sentence ->
   original) for every English *and* German training sentence with at least one
   switched word (``seqweave.data.code_switch``, ratio ``--ratio``), and the same for
   the validation set.
2. Per seed, three variants of the same model (recipes/code_switch/multi30k.toml):
   - ``baseline``: EN->DE for N updates from random weights;
   - ``restore``: the restore task for M updates, then EN->DE for N updates from its
     weights (``train.init_from``; fresh optimizer and warm-up);
   - ``plain``: EN->DE for M updates, then EN->DE again for N updates from its weights,
     the same two-stage schedule with the same extra budget spent on plain translation.
3. Per model: greedy BLEU on test2016, and the encoder's view of test2016's English
   sentences and their German translations: mean-pooled encoder states, cosine distance
   of parallel pairs, of mismatched pairs (each English sentence with the next
   sentence's German), and top-1 retrieval of the translation among all 1,000 (also
   for the untrained model and after each first stage).

The (variant, seed) runs are a grid (``seqweave.harness``) in ``--jobs`` worker processes
(spawn; one torch thread each on a CPU); results are rewritten after every finished run, a
cut-off run resumes with the runs it has not finished, and a model that finished training
with the same config is reused. Writes ``--out`` (default recipes/code_switch/results.json)
and prints a table. Run from the repository root; models go to ``--work``
(runs/code_switch).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from encoder_view import encoder_distance
from switch_data import prepare

from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    decode_and_score,
    grid,
    run_grid,
    scored_checkpoint,
    summarise,
    train_or_load,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/code_switch")
CONFIG = HERE / "multi30k.toml"
VARIANTS = ("restore", "plain", "baseline")  # longest first, for the worker pool
QUICK = [  # the CPU run: a smaller model and budget
    "model.d_model=128",
    "model.ffn_dim=512",
    "model.encoder_layers=2",
    "model.decoder_layers=2",
    "data.max_tokens=1024",
    "train.warmup_steps=100",
    "train.lr=1.5e-3",
]


# -- one job: a variant and a seed, in its own process ------------------------------------


def run_job(cell: dict, job: dict) -> dict:
    """Train one variant for one seed and measure it; runs in a worker process."""
    os.chdir(ROOT)
    torch.set_num_threads(job["threads"])  # on a GPU too: the jobs share the CPU cores
    from seqweave.config import load_config

    work, seed, variant = Path(job["work"]), cell["seed"], cell["variant"]
    data = Path(job["data"])
    base = [
        *job["overrides"],
        f"tokenizer.path={work / 'tokenizer'}",
        f"train.seed={seed}",
        f"train.device={job['device']}",
    ]
    mt = [f"data.train={data / 'train.jsonl'}", f"data.valid={data / 'valid.jsonl'}"]
    restore = [f"data.train={work / 'restore.train.jsonl'}"]
    restore.append(f"data.valid={work / 'restore.valid.jsonl'}")
    out = work / f"seed{seed}" / variant
    result: dict = {}
    started = time.perf_counter()
    init = ""
    if variant == "baseline":
        config = load_config(CONFIG, base)
        result["untrained"] = untrained_distance(config, work, job)
    else:
        first = restore if variant == "restore" else mt
        stage_steps = f"train.max_steps={job['stage_steps']}"
        stage = load_config(CONFIG, [*base, *first, stage_steps, f"train.out_dir={out / 'stage'}"])
        init = str(fit(stage))
        result["stage"] = measure(Path(init), job, bleu=variant == "plain")
        result["stage"]["valid_nll"] = valid_nll(out / "stage", init)
    final = load_config(
        CONFIG,
        [*base, *mt, f"train.max_steps={job['steps']}", f"train.out_dir={out / 'final'}"]
        + ([f"train.init_from={init}"] if init else []),
    )
    best = fit(final)
    result["final"] = measure(best, job, bleu=True)
    result["final"]["valid_nll"] = valid_nll(out / "final", best)
    result["checkpoint"] = scored_checkpoint(out / "final", best)
    result["minutes"] = (time.perf_counter() - started) / 60
    print(
        f"{variant} seed {seed}: BLEU {result['final']['bleu']:.2f}, {result['minutes']:.1f} min",
        flush=True,
    )
    return result


def fit(config) -> Path:
    """Train with one validation, at the end (the scored checkpoint), unless finished."""
    from dataclasses import replace

    steps = config.train.max_steps
    return train_or_load(replace(config, train=replace(config.train, validate_every=steps)))


def valid_nll(out_dir: Path, best) -> float:
    """The scored checkpoint's validation NLL per token."""
    return scored_checkpoint(out_dir, best)["validation"]["valid_nll"]


def test_set(job: dict):
    from seqweave.data.readers import read_examples

    examples = read_examples(Path(job["data"]) / "test2016.jsonl")
    return examples[: job["limit"]] if job["limit"] else examples


def measure(directory: Path, job: dict, bleu: bool) -> dict:
    import seqweave

    model = seqweave.load(directory, device=job["device"])
    test = test_set(job)
    result = encoder_distance(model.network, model.tokenizer, test, job["device"])
    if bleu:
        scored = decode_and_score(model, test, ["bleu"], batch_size=job["batch"], decoder="greedy")
        result["bleu"] = scored["scores"]["bleu"]
    return result


def untrained_distance(config, work: Path, job: dict) -> dict:
    """The encoder distance of the randomly initialised model (the seed's start)."""
    from seqweave.models import build_model
    from seqweave.tokenizers import Tokenizer
    from seqweave.train import resolve_model_config

    tokenizer = Tokenizer.load(work / "tokenizer")
    torch.manual_seed(config.train.seed)
    network = build_model(resolve_model_config(config.model, tokenizer)).to(job["device"])
    return encoder_distance(network.eval(), tokenizer, test_set(job), job["device"])


# -- the whole run --------------------------------------------------------------------------


def print_table(summary: dict) -> None:
    columns = [
        ("BLEU", "final.bleu"),
        ("dist par", "final.parallel_distance"),
        ("dist mis", "final.mismatched_distance"),
        ("retr@1", "final.retrieval_top1"),
        ("stage dist par", "stage.parallel_distance"),
        ("stage dist mis", "stage.mismatched_distance"),
        ("stage retr@1", "stage.retrieval_top1"),
    ]
    print(f"{'variant':10s}" + "".join(f"{name:>18s}" for name, _ in columns))
    for variant, figures in summary.items():
        cells = []
        for _, key in columns:
            value = figures.get(key)
            cells.append("-" if value is None else f"{value['mean']:.3f} ± {value['std']:.3f}")
        print(f"{variant:10s}" + "".join(f"{cell:>18s}" for cell in cells))
    untrained = summary.get("baseline", {}).get("untrained.parallel_distance")
    if untrained:
        mis = summary["baseline"]["untrained.mismatched_distance"]["mean"]
        print(f"untrained: parallel {untrained['mean']:.3f}, mismatched {mis:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the smaller CPU configuration")
    parser.add_argument("--seeds", type=int, help="seeds per variant (default 4; quick 1)")
    parser.add_argument("--stage-steps", type=int, help="first-stage updates (1000; quick 250)")
    parser.add_argument("--steps", type=int, help="fine-tuning updates (1000; quick 250)")
    parser.add_argument("--ratio", type=float, default=0.3, help="share of words switched")
    parser.add_argument("--limit", type=int, default=0, help="first N test2016 pairs (0: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--data", default="../shared/data/multi30k-en-de")
    parser.add_argument("--work", default="runs/code_switch")
    add_run_arguments(parser, HERE / "results.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    quick = args.quick
    seeds = args.seeds or (1 if quick else 4)
    started = time.perf_counter()
    work = Path(args.work)
    preparation = prepare(Path(args.data), work, args.ratio, 8000)
    print(json.dumps(preparation, ensure_ascii=False, indent=1), flush=True)
    common = {
        "device": args.device,
        "threads": args.threads,
        "work": str(work),
        "data": args.data,
        "overrides": QUICK if quick else [],
        "stage_steps": args.stage_steps or (250 if quick else 1000),
        "steps": args.steps or (250 if quick else 1000),
        "limit": args.limit,
        "batch": 64 if args.device == "cpu" else 250,
    }
    cells = grid(variant=list(VARIANTS), seed=list(range(seeds)))
    settings = {k: v for k, v in common.items() if k not in ("work", "data")}
    settings |= {"seeds": seeds, "ratio": args.ratio, "quick": quick, "jobs": args.jobs}

    def write(rows: list[dict]) -> dict:  # after every finished run: a cut-off run keeps it
        return write_results(
            args.out,
            seeds=list(range(seeds)),
            device=args.device,
            jobs=args.jobs,
            threads=args.threads,
            started=started,
            complete=len(rows) == len(cells),
            settings=settings,
            preparation=preparation,
            summary=summarise(rows, by=("variant",)),
            runs=rows,
        )

    log = cell_log_path(args.out, work, args.fresh)
    output = write(run_grid(run_job, cells, common, log, args.jobs, write))
    print_table(output["summary"])
    print(f"{output['minutes']:.1f} min; wrote {args.out}")


if __name__ == "__main__":
    main()
