"""Prot2Token at small scale: one model, three protein tasks, decoding constrained to each
task's grammar.

    .venv/bin/python recipes/proteins/run.py [--minutes 8] [--seed 1] [--limit 0]
        [--set section.key=value ...] [--results results.json] [--skip-training | --retrain]

1. ``tasks.py`` writes the multi-task rows (per-residue secondary structure from flip-ss,
   helix starts built from it, GB1 fitness digit by digit) to runs/proteins/data.
2. The tokenizer (protein letters, digits, ``.,-`` and the task tokens read from text) is
   saved to runs/proteins/tokenizer; the model (recipes/proteins/prot2token.toml) trains
   for ``--minutes`` on one CPU thread through ``seqweave.harness.train_or_load``.
3. On the validation rows (from the training files; the test splits are kept back), greedy
   decoding with ``decode.constraint = "tasks"`` and without: the parse rate of each task's
   outputs, Q3, Spearman's rho and helix-start F1; IAD under the constraint must give the
   constrained greedy tokens.

Writes recipes/proteins/results.json and prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

import seqweave
from seqweave.config import load_config
from seqweave.data.digits import parse_fixed, parse_indices
from seqweave.harness import scored_checkpoint, train_or_load, write_results
from seqweave.tokenizers import protein_task_tokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from tasks import DECIMALS, TASK_TOKENS, TASKS, read_jsonl, write_tasks  # noqa: E402


def parses(task: str, output: str, residues: int) -> bool:
    """Whether an output is well formed in its task's grammar."""
    if task == "ss":
        return len(output) == residues and set(output) <= set("HEC")
    try:
        if task == "fitness":
            parse_fixed(output, DECIMALS)
        else:
            parse_indices(output, residues)
    except ValueError:
        return False
    return True


def q3(rows: list[dict], outputs: list[str]) -> float:
    """Per-residue accuracy over all residues; a missing or extra label counts as wrong."""
    right = total = 0
    for row, output in zip(rows, outputs, strict=True):
        right += sum(a == b for a, b in zip(row["target"], output, strict=False))
        total += len(row["target"])
    return right / total


def site_f1(rows: list[dict], outputs: list[str]) -> float:
    """Micro F1 of predicted helix starts; an output that does not parse predicts none."""
    true_positive = predicted = actual = 0
    for row, output in zip(rows, outputs, strict=True):
        residues = len(row["source"]) - len("<task=helix_starts>")
        truth = set(parse_indices(row["target"], residues))
        guess = (
            set(parse_indices(output, residues))
            if parses("helix_starts", output, residues)
            else set()
        )
        true_positive += len(truth & guess)
        predicted += len(guess)
        actual += len(truth)
    return 2 * true_positive / max(predicted + actual, 1)


def spearman(rows: list[dict], outputs: list[str]) -> tuple[float | None, int]:
    """Spearman's rho over the outputs that parse (None where it is undefined: fewer than
    3, or every prediction the same), and how many parsed."""
    pairs = [
        (row["fitness"], float(parse_fixed(out, DECIMALS)))
        for row, out in zip(rows, outputs, strict=True)
        if parses("fitness", out, 0)
    ]
    truth, guess = zip(*pairs, strict=True) if pairs else ((), ())
    if len(pairs) < 3 or len(set(guess)) < 2:
        return None, len(pairs)
    return float(spearmanr(truth, guess).statistic), len(pairs)


def evaluate(model, rows: list[dict]) -> dict:
    """Every task decoded with and without the grammar; IAD checked against greedy."""
    results = {}
    for task in TASKS:
        task_rows = [r for r in rows if r["task"] == task]
        sources = [r["source"] for r in task_rows]
        residues = [len(s) - len(f"<task={task}>") for s in sources]
        entry = {"rows": len(task_rows)}
        for name, constraint in (("constrained", "tasks"), ("free", "")):
            started = time.perf_counter()
            generated = model.generate_tokens(sources, constraint=constraint, max_new_tokens=160)
            outputs = model.tokenizer.decode_batch([o.tokens for o in generated])
            ok = sum(parses(task, o, n) for o, n in zip(outputs, residues, strict=True))
            figures = {"parse_rate": ok / len(outputs), "seconds": time.perf_counter() - started}
            if task == "ss":
                figures["q3"] = q3(task_rows, outputs)
            elif task == "helix_starts":
                figures["site_f1"] = site_f1(task_rows, outputs)
            else:
                figures["spearman"], figures["scored"] = spearman(task_rows, outputs)
                figures["distinct_outputs"] = len(set(outputs))
            entry[name] = figures
            if constraint:
                options = {"constraint": constraint, "max_new_tokens": 160}
                iad = model.generate_tokens(sources, decoder="iad", **options)
                same = sum(a.tokens == b.tokens for a, b in zip(iad, generated, strict=True))
                entry["iad_identical_to_constrained_greedy"] = same / len(generated)
        results[task] = entry
    majority = [("C" * len(r["target"])) for r in rows if r["task"] == "ss"]
    results["ss"]["all_coil_baseline_q3"] = q3([r for r in rows if r["task"] == "ss"], majority)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="validation rows per task (0: all)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="config override, repeatable")
    parser.add_argument("--results", default="results.json", help="file name in recipes/proteins")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)
    os.chdir(ROOT)
    paths = write_tasks(Path("runs/proteins/data"))
    tokenizer_dir = Path("runs/proteins/tokenizer")
    protein_task_tokenizer(TASK_TOKENS).save(tokenizer_dir)
    config = load_config(
        "recipes/proteins/prot2token.toml",
        [
            f"tokenizer.path={tokenizer_dir}",
            f"train.max_minutes={args.minutes}",
            f"train.seed={args.seed}",
            *args.set,
        ],
    )
    best = train_or_load(config, retrain=args.retrain, reuse_any=args.skip_training)
    model = seqweave.load(best)
    rows = read_jsonl(paths["valid"])
    if args.limit:
        rows = [r for task in TASKS for r in [r for r in rows if r["task"] == task][: args.limit]]
    results = evaluate(model, rows)
    write_results(
        ROOT / "recipes" / "proteins" / args.results,
        seeds=[args.seed],
        device="cpu",
        jobs=1,
        started=started,
        tasks=results,
        checkpoint=scored_checkpoint(config.train.out_dir, best),
        settings={
            "minutes": args.minutes,
            "decimals": DECIMALS,
            "limit": args.limit,
            "set": args.set,
        },
    )
    print(f"{'task':14} {'parse (constrained / free)':28} metric (constrained / free)")
    metric = {"ss": "q3", "helix_starts": "site_f1", "fitness": "spearman"}
    for task in TASKS:
        c, f = results[task]["constrained"], results[task]["free"]
        rates = f"{c['parse_rate']:.1%} / {f['parse_rate']:.1%}"
        scores = " / ".join(
            "undefined" if x[metric[task]] is None else f"{x[metric[task]]:.3f}" for x in (c, f)
        )
        print(f"{task:14} {rates:28} {metric[task]} {scores}")


if __name__ == "__main__":
    main()
