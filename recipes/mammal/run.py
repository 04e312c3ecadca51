"""MAMMAL's scalar outputs at small scale: GB1 fitness by a regression head, by digits, by ridge.

    .venv/bin/python recipes/mammal/run.py [--seeds 1,2,3] [--minutes 5] [--methods ...]
        [--jobs 1] [--fresh] [--out recipes/mammal/results.json] [--set section.key=value]
        [--tag NAME]   # runs/mammal/METHOD{NAME}-sSEED: a variant's models beside the others

1. ``gb1.py`` splits the GB1 training file (train / upstream validation / our held-out
   quarter of the double mutants) and writes each method's rows to runs/mammal/data.
2. The tokenizer (``seqweave.tokenizers.mixed_prompt``: residues, digits, ``<task=fitness>``,
   ``<@AA>``, ``<scalar>``, ``<mask>``) is saved to runs/mammal/tokenizer.
3. Per seed, through ``seqweave.harness.train_or_load`` (``mammal.toml``, ``--minutes`` on
   one CPU thread each):
   - ``regression``: ``model.scalar_head = true``; the prompt ends in ``<mask>``, the head
     reads the encoder there and is trained with MSE against ``<scalar=FITNESS>``;
   - ``digits``: the same network writes the fitness with 3 decimals, greedy decoding
     under ``decode.constraint = "number"`` (so every output parses).
   ``ridge`` (``seqweave.baselines.ridge``, one-hot features, alpha chosen on validation)
   does not depend on the seed and runs once.
4. Spearman's rho (and MSE) on the validation and held-out rows; mean and spread over seeds.

Writes recipes/mammal/results.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

import seqweave
from seqweave.baselines.ridge import one_hot, ridge_on_validation, spearman
from seqweave.config import load_config
from seqweave.data.digits import parse_fixed
from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    scored_checkpoint,
    seed_list,
    summarise,
    train_or_load,
    write_results,
)
from seqweave.models.scalars import predict_scalars
from seqweave.tokenizers.mixed_prompt import mixed_prompt_tokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from gb1 import DECIMALS, TASK, prompt, read_rows, split, write_sets  # noqa: E402

RUNS = Path("runs/mammal")
METHODS = ("regression", "digits", "ridge")


def defined(value):
    """``value`` with every NaN (an undefined rho: constant predictions) as None, which
    the summary leaves out instead of averaging."""
    if isinstance(value, dict):
        return {k: defined(v) for k, v in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


def figures(predicted: list[float], rows: list[dict], name: str) -> dict:
    truth = [r["fitness"] for r in rows]
    mse = sum((p - t) ** 2 for p, t in zip(predicted, truth, strict=True)) / len(rows)
    return {
        f"{name}_spearman": spearman(predicted, truth),
        f"{name}_mse": mse,
        f"{name}_distinct": len(set(predicted)),
    }


def neural_predictions(method: str, model, rows: list[dict]) -> list[float]:
    """The fitness each row gets: the head's answer, or the constrained greedy number."""
    sources = [prompt(r, method)["source"] for r in rows]
    if method == "regression":
        return [answer[0] for answer in predict_scalars(model.network, model.tokenizer, sources)]
    generated = model.generate_tokens(sources, constraint=f"number:{DECIMALS}", max_new_tokens=12)
    texts = model.tokenizer.decode_batch([g.tokens for g in generated])
    return [float(parse_fixed(text, DECIMALS)) for text in texts]  # the grammar: always parses


def run_cell(cell: dict, settings: dict) -> dict:
    """One method and seed: train (or reuse) and score on validation and held-out rows."""
    torch.set_num_threads(1)
    os.chdir(ROOT)
    parts, method, seed = split(read_rows()), cell["method"], cell["seed"]
    if method == "ridge":
        train = ([r["source"] for r in parts["train"]], [r["fitness"] for r in parts["train"]])
        valid = ([r["source"] for r in parts["valid"]], [r["fitness"] for r in parts["valid"]])
        model, alpha, scores = ridge_on_validation(train, valid)
        guess = {n: model.predict(one_hot([r["source"] for r in parts[n]])).tolist() for n in parts}
        result = {"alpha": alpha, "alpha_scores": {str(a): s for a, s in scores.items()}}
        for name in ("valid", "heldout"):
            result |= figures(guess[name], parts[name], name)
        return result
    data = RUNS / "data" / method
    config = load_config(
        "recipes/mammal/mammal.toml",
        [
            f"tokenizer.path={RUNS / 'tokenizer'}",
            f"data.train={data / 'train.jsonl'}",
            f"data.valid={data / 'valid.jsonl'}",
            f"train.out_dir={RUNS / method}{settings.get('tag', '')}-s{seed}",
            f"train.seed={seed}",
            f"train.max_minutes={settings['minutes']}",
            f"train.device={settings['device']}",
            f"model.scalar_head={'true' if method == 'regression' else 'false'}",
            *settings["overrides"],
        ],
    )
    best = train_or_load(config)
    model = seqweave.load(best, device=settings["device"])
    result = {"checkpoint": scored_checkpoint(config.train.out_dir, best)}
    for name in ("valid", "heldout"):
        result |= figures(neural_predictions(method, model, parts[name]), parts[name], name)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=seed_list, default=[1, 2, 3])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--tag", default="", help="appended to the run directories' names")
    add_run_arguments(parser, ROOT / "recipes/mammal/results.json", jobs=1)
    args = parser.parse_args()
    started = time.perf_counter()
    os.chdir(ROOT)
    parts = write_sets(RUNS / "data")
    mixed_prompt_tokenizer([TASK]).save(RUNS / "tokenizer")
    methods = [m for m in args.methods.split(",") if m]
    cells = [c for c in grid(method=methods, seed=args.seeds) if c["method"] != "ridge"]
    cells += [{"method": "ridge", "seed": 0}] if "ridge" in methods else []
    settings = {
        "minutes": args.minutes,
        "device": args.device,
        "overrides": args.set,
        **({"tag": args.tag} if args.tag else {}),  # so untagged runs resume as before
    }
    log = cell_log_path(args.out, RUNS, args.fresh)

    def write(rows: list[dict], complete: bool = False) -> None:
        rows = [defined(row) for row in rows]
        write_results(
            args.out,
            seeds=args.seeds,
            device=args.device,
            jobs=args.jobs,
            started=started,
            complete=complete,
            summary=summarise(rows, by=["method"]),
            runs=rows,
            rows={name: len(rows_) for name, rows_ in parts.items()},
            settings={"minutes": args.minutes, "set": args.set},
        )

    rows = run_grid(run_cell, cells, settings, log=log, jobs=args.jobs, on_result=write)
    write(rows, complete=True)
    for method, figures_ in summarise([defined(r) for r in rows], by=["method"]).items():
        shown = {
            k: f"{v['mean']:.3f} ± {v['std']:.3f}"
            for k, v in figures_.items()
            if k.endswith("spearman")
        }
        print(method, shown)


if __name__ == "__main__":
    main()
