"""OTSeq2Set (Cao & Zhang 2022): label sets by matching and optimal transport vs a fixed order.

    .venv/bin/python recipes/otseq2set/run.py [--quick] [--tasks keywords,e2e]
        [--variants seq2seq,seq2set,otseq2set] [--seeds 1,2] [--steps N]
        [--no-repeat] [--device cpu|cuda] [--jobs N] [--out FILE] [--fresh]

Two multi-label tasks, each predicted as a label set from a text:

- ``keywords`` (synthetic): a text of 12-20 random filler words into which each
  gold label puts one of its two keywords at a random place; 0-2 distractors
  (``not`` followed by the keyword of a label that is absent) are added too.
  24 labels drawn with Zipf-like weights, 1 to 6 per text. The text gives no
  order to the labels: any fixed order is a convention the model has to learn.
- ``e2e`` (real): the E2E restaurant descriptions (../shared/data/e2e); labels are
  the meaning representation's ``slot[value]`` strings (79 distinct, 3 to 8 per
  text). Train on train.jsonl, score on all of valid.jsonl. Crowd-workers left out
  some slots, so no model can reach 100 %.

Three models of the same size (an encoder-decoder Transformer from
``seqweave.models``; labels are vocabulary tokens):

- ``seq2seq``: the fixed-order baseline (SGM-style): labels sorted by training
  frequency, most frequent first, then the end token; teacher-forced MLE;
  greedy decoding until the end token;
- ``seq2set``: student forcing for T steps (T = the task's largest set) and the
  Hungarian matching loss with EMPTY padding (``objectives.set_matching``);
- ``otseq2set``: the same plus the IPOT optimal-transport term (weight ``--ot-weight``).

The set models decode greedily for T tokens with ``seqweave.decoding``; EMPTY and
repeats are dropped. Scores on held-out texts: micro precision, recall and F1,
exact set match and mean absolute set-size error, and a diagnosis of where the
decoding steps go (a repeated label, EMPTY while gold labels are still missing, a
wrong label; ``diagnose``). ``--no-repeat`` scores each trained model a second time
with labels already written masked out of later steps (inference only). Runs
(task x model x seed) are a grid (``seqweave.harness``); ``--jobs N`` trains N at a time
in separate processes (one CPU thread each, or sharing one GPU with ``--device cuda``),
and a cut-off run resumes with the runs it has not finished. The models train in this
file's loop, not ``seqweave.train``: the trainer reads text through a tokenizer and has no
set-matching objective (student-forced rollout, Hungarian matching, the OT term), and all
three models share this loop so that they differ only in their loss. Writes
recipes/otseq2set/results.json (or ``--out``) and prints a table. Run from the repository
root.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import Counter
from pathlib import Path

import torch
from label_scores import diagnose, greedy_outputs, label_set, no_repeat_outputs, scores
from label_tasks import BOS, EMPTY, EOS, MAX_SOURCE, PAD, Task, build_task

from seqweave.config import ModelConfig
from seqweave.decoding.common import pad_batch
from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    seed_list,
    summarise,
    write_results,
)
from seqweave.models import build_model
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.objectives.set_matching import (
    ot_loss,
    output_embeddings,
    pad_sets,
    set_matching_loss,
    student_forced_log_probs,
)

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("seq2seq", "seq2set", "otseq2set")


# -- training -----------------------------------------------------------------------------------


def frequency_order(task: Task) -> dict[int, int]:
    """Rank of each label in the baseline's fixed order: most frequent in training first."""
    counts = Counter(label for _, gold in task.train for label in gold)
    ranked = sorted(counts, key=lambda label: (-counts[label], label))
    return {label: rank for rank, label in enumerate(ranked)}


def batch_loss(model, variant: str, batch, task: Task, order, ot_weight: float, device):
    sources = [source for source, _ in batch]
    gold = [labels for _, labels in batch]
    src, lengths = pad_batch(sources, PAD, device)
    if variant == "seq2seq":
        ordered = [sorted(labels, key=order.__getitem__) for labels in gold]
        tgt, _ = pad_batch([[BOS, *labels, EOS] for labels in ordered], PAD, device)
        loss, _ = label_smoothed_nll(model(src, lengths, tgt[:, :-1]), tgt[:, 1:], PAD)
        return loss / (tgt[:, 1:] != PAD).sum()
    log_probs, _ = student_forced_log_probs(model, src, lengths, task.steps)
    nll, _ = set_matching_loss(log_probs, gold, EMPTY)
    loss = nll / log_probs.shape[:2].numel()
    if variant == "otseq2set":
        padded = pad_sets(gold, task.steps, EMPTY).to(device)
        loss = loss + ot_weight * ot_loss(log_probs, output_embeddings(model), padded) / len(gold)
    return loss


def fit(variant: str, task: Task, seed: int, settings: dict) -> tuple[torch.nn.Module, float]:
    """Train one model: sampled batches of texts, Adam with a one-cycle schedule; returns the
    model and its last batch's loss."""
    device = settings["device"]
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=task.vocab_size,
        d_model=settings["d_model"],
        num_heads=4,
        encoder_layers=settings["layers"],
        decoder_layers=settings["layers"],
        ffn_dim=2 * settings["d_model"],
        dropout=0.1,
        max_positions=MAX_SOURCE + 1,
    )
    model = build_model(cfg).to(device).train()
    steps = settings["steps"]
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings["lr"], total_steps=steps, pct_start=0.05
    )
    order = frequency_order(task)
    rng = random.Random(seed)
    for _ in range(steps):
        batch = rng.sample(task.train, settings["batch_size"])
        loss = batch_loss(model, variant, batch, task, order, settings["ot_weight"], device)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return model, loss.item()


def train_and_score(cell: dict, settings: dict) -> dict:
    """Train one model on one task with one seed and score it; runs in a worker process."""
    task_name, variant, seed = cell["task"], cell["variant"], cell["seed"]
    device = settings["device"]
    if device == "cpu":
        torch.set_num_threads(1)
    task = build_task(task_name, settings["quick"])
    started = time.perf_counter()
    model, final_loss = fit(variant, task, seed, settings)
    seconds = time.perf_counter() - started
    model.eval()
    gold = [g for _, g in task.test]
    outputs = greedy_outputs(model, variant, task)
    result = scores([label_set(out, task) for out in outputs], gold)
    result["diagnosis"] = diagnose(outputs, gold, task)
    if settings["no_repeat"]:
        plain = no_repeat_outputs(model, variant, task, device, forbid=False)
        if plain != outputs:
            raise RuntimeError("the step-by-step decoder disagrees with greedy decoding")
        masked = no_repeat_outputs(model, variant, task, device)
        result["no_repeat"] = scores([label_set(out, task) for out in masked], gold)
        result["no_repeat"]["diagnosis"] = diagnose(masked, gold, task)
    print(
        f"{task_name:9} {variant:10} seed {seed}: micro-F1 {100 * result['micro_f1']:5.1f}  "
        f"exact {100 * result['exact_set_match']:5.1f}  size error "
        f"{result['set_size_error']:.3f}  ({seconds:.0f} s)",
        flush=True,
    )
    return {**result, "final_loss": final_loss, "train_seconds": seconds}


# -- report -------------------------------------------------------------------------------------

TASKS = {
    "keywords": "synthetic: 24 labels, 1-6 per text, keywords at random places among "
    "12-20 fillers, 0-2 negated distractors; 2,000 test texts",
    "e2e": "E2E descriptions -> slot[value] labels (79, 3-8 per text); train.jsonl, "
    "scored on all 4,672 rows of valid.jsonl",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the smaller CPU configuration")
    parser.add_argument("--tasks", default="keywords,e2e")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--steps", type=int, help="updates per run (default 2000; quick 400)")
    parser.add_argument("--d-model", type=int, help="model width (default 128; quick 64)")
    parser.add_argument("--layers", type=int, help="encoder and decoder layers (3; quick 2)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ot-weight", type=float, default=0.5)
    parser.add_argument(
        "--no-repeat",
        action="store_true",
        help="also score each trained model with already-written labels masked at inference",
    )
    add_run_arguments(parser, ROOT / "recipes/otseq2set/results.json", jobs=2)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    settings = {
        "quick": args.quick,
        "steps": args.steps or (400 if args.quick else 2000),
        "d_model": args.d_model or (64 if args.quick else 128),
        "layers": args.layers or (2 if args.quick else 3),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "ot_weight": args.ot_weight,
        "device": args.device,
        "no_repeat": args.no_repeat,
    }
    tasks, seeds = args.tasks.split(","), seed_list(args.seeds)
    cells = grid(task=tasks, variant=args.variants.split(","), seed=seeds)

    def write(rows: list[dict]) -> dict:
        return write_results(
            args.out,
            seeds=seeds,
            device=args.device,
            jobs=args.jobs,
            started=started,
            complete=len(rows) == len(cells),
            tasks={task: TASKS[task] for task in tasks},
            training=settings,
            results=summarise(rows, by=("task", "variant")),
            runs=rows,
        )

    log = cell_log_path(args.out, "runs/otseq2set", args.fresh)
    result = write(run_grid(train_and_score, cells, settings, log, args.jobs, write))
    print_table(result["results"])
    print(f"wrote {args.out}")


def print_table(results: dict) -> None:
    """Means over seeds per task and model, greedy and (with --no-repeat) no-repeat."""
    print(
        f"\n{'task / model':22} {'decoding':10} {'micro-F1':>9} {'exact':>7} "
        f"{'size err':>9} {'repeat':>7} {'x-EMPTY':>8} {'wrong':>7} {'missed':>7}"
    )
    for group, figures in results.items():
        for name, prefix in (("greedy", ""), ("no-repeat", "no_repeat.")):
            if f"{prefix}micro_f1" not in figures:
                continue
            cells = [
                f"{100 * figures[prefix + 'micro_f1']['mean']:9.1f}",
                f"{100 * figures[prefix + 'exact_set_match']['mean']:7.1f}",
                f"{figures[prefix + 'set_size_error']['mean']:9.3f}",
                f"{figures[prefix + 'diagnosis.repeats_per_text']['mean']:7.3f}",
                f"{figures[prefix + 'diagnosis.excess_empty_per_text']['mean']:8.3f}",
                f"{figures[prefix + 'diagnosis.wrong_labels_per_text']['mean']:7.3f}",
                f"{figures[prefix + 'diagnosis.missed_labels_per_text']['mean']:7.3f}",
            ]
            print(f"{group:22} {name:10} " + " ".join(cells))
    print("(repeat, x-EMPTY, wrong, missed: per test text)")


if __name__ == "__main__":
    main()
