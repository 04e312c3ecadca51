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

Three models of the same size, an encoder-decoder Transformer trained through
``seqweave.train`` (``seqweave.harness.train_or_load``) with the same optimiser,
schedule and batches (``otseq2set.toml``); they differ only in their loss. Source texts
and labels are words of one ``words`` tokenizer per task, so each label is one token:

- ``seq2seq``: the fixed-order baseline (SGM-style): the target lists the labels by
  training frequency, most frequent first, then the end token; teacher-forced MLE;
  greedy decoding until the end token;
- ``seq2set``: ``[objectives.set_matching] mode = "matching"``: student forcing for T
  steps (T = the task's largest set) and the Hungarian matching loss with ``<empty>``
  padding, the target read as a set;
- ``otseq2set``: ``mode = "ot"``: the same plus the IPOT optimal-transport term (weight
  ``--ot-weight``).

The set models decode greedily for T tokens with ``seqweave.decoding``; ``<empty>`` and
repeats are dropped. Scores on held-out texts: micro precision, recall and F1,
exact set match and mean absolute set-size error, and a diagnosis of where the
decoding steps go (a repeated label, ``<empty>`` while gold labels are still missing, a
wrong label; ``diagnose``). ``--no-repeat`` scores each trained model a second time
with labels already written masked out of later steps (inference only). Runs
(task x model x seed) are a grid (``seqweave.harness``); ``--jobs N`` trains N at a time
in separate processes (one CPU thread each, or sharing one GPU with ``--device cuda``),
a cut-off run resumes with the runs it has not finished, and a model that finished
training with the same config is reused. Each task's data files and tokenizer are written
once, under runs/otseq2set. Writes recipes/otseq2set/results.json (or ``--out``) and
prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from label_scores import (
    diagnose,
    greedy_outputs,
    label_set,
    load_test_set,
    no_repeat_outputs,
    scores,
)
from label_tasks import prepare

from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    scored_checkpoint,
    seed_list,
    summarise,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/otseq2set")
CONFIG = HERE / "otseq2set.toml"
VARIANTS = ("seq2seq", "seq2set", "otseq2set")
OBJECTIVE = {"seq2seq": "off", "seq2set": "matching", "otseq2set": "ot"}


# -- training -----------------------------------------------------------------------------------


def overrides(cell: dict, settings: dict) -> list[str]:
    """The config of one run: the variant's objective, the sizes, its task's data and
    tokenizer, its seed and directory."""
    task = settings["tasks"][cell["task"]]
    steps, width = settings["steps"], settings["d_model"]
    out_dir = Path(settings["runs"]) / cell["task"] / f"{cell['variant']}-seed{cell['seed']}"
    values = [
        f"model.d_model={width}",
        f"model.ffn_dim={2 * width}",
        f"model.encoder_layers={settings['layers']}",
        f"model.decoder_layers={settings['layers']}",
        f"data.train={task['train']}",
        f"data.max_sentences={settings['batch_size']}",
        f"tokenizer.path={task['tokenizer']}",
        f"train.lr={settings['lr']}",
        f"train.max_steps={steps}",
        f"train.warmup_steps={max(1, steps // 20)}",
        f"train.validate_every={steps}",
        f"train.log_every={max(1, steps // 10)}",
        f"train.seed={cell['seed']}",
        f"train.device={settings['device']}",
        f"train.out_dir={out_dir}",
    ]
    mode = OBJECTIVE[cell["variant"]]
    if mode != "off":
        values += [  # steps first: the section checks itself after every override
            f"objectives.set_matching.steps={task['steps']}",
            f"objectives.set_matching.mode={mode}",
        ]
    if mode == "ot":
        values.append(f"objectives.set_matching.ot_weight={settings['ot_weight']}")
    return values


def train_and_score(cell: dict, settings: dict) -> dict:
    """Train one model on one task with one seed (unless finished) and score it; runs in a
    worker process."""
    import seqweave
    from seqweave.config import load_config
    from seqweave.harness import train_or_load
    from seqweave.train.report import read_metrics

    task_name, variant, seed = cell["task"], cell["variant"], cell["seed"]
    device = settings["device"]
    if device == "cpu":
        torch.set_num_threads(1)
    config = load_config(CONFIG, overrides(cell, settings))
    started = time.perf_counter()
    best = train_or_load(config)
    seconds = time.perf_counter() - started
    log = read_metrics(Path(config.train.out_dir) / "metrics.jsonl")
    trained = [r for r in log if r["kind"] == "train"]
    model = seqweave.load(best, device=device)
    network = model.network.eval()
    test = load_test_set(model, settings["tasks"][task_name])
    outputs = greedy_outputs(network, variant, test)
    result = scores([label_set(out, test) for out in outputs], test.gold)
    result["diagnosis"] = diagnose(outputs, test)
    if settings["no_repeat"]:
        plain = no_repeat_outputs(network, variant, test, device, forbid=False)
        if plain != outputs:
            raise RuntimeError("the step-by-step decoder disagrees with greedy decoding")
        masked = no_repeat_outputs(network, variant, test, device)
        result["no_repeat"] = scores([label_set(out, test) for out in masked], test.gold)
        result["no_repeat"]["diagnosis"] = diagnose(masked, test)
    print(
        f"{task_name:9} {variant:10} seed {seed}: micro-F1 {100 * result['micro_f1']:5.1f}  "
        f"exact {100 * result['exact_set_match']:5.1f}  size error "
        f"{result['set_size_error']:.3f}  ({seconds:.0f} s)",
        flush=True,
    )
    return {
        **result,
        "final_loss": trained[-1]["loss"],  # the mean over the last logged window
        "train_seconds": trained[-1]["elapsed_seconds"],
        "checkpoint": scored_checkpoint(config.train.out_dir, best),
    }


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
    add_run_arguments(parser, ROOT / HERE / "results.json", jobs=2)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    tasks, seeds = args.tasks.split(","), seed_list(args.seeds)
    runs = Path("runs/otseq2set") / ("quick" if args.quick else "full")
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
        "runs": str(runs),
        "tasks": prepare_tasks(tasks, args.quick, runs),
    }
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
            training={k: v for k, v in settings.items() if k != "tasks"},
            results=summarise(rows, by=("task", "variant")),
            runs=rows,
        )

    log = cell_log_path(args.out, runs, args.fresh)
    result = write(run_grid(train_and_score, cells, settings, log, args.jobs, write))
    print_table(result["results"])
    print(f"wrote {args.out}")


def prepare_tasks(tasks: list[str], quick: bool, runs: Path) -> dict[str, dict]:
    """Each task's data files and words tokenizer, written once and shared by its runs."""
    from seqweave.config import load_config

    tokenizer = load_config(CONFIG).tokenizer
    return {task: prepare(task, quick, runs / task / "data", tokenizer) for task in tasks}


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
