"""seqweave's Transformer on the event logs, on the same validation split as run.py (the
earlier 2/3 of each log's training cases train the model, the latest 1/3 are scored).

    .venv/bin/python recipes/next_event/transformer.py [--logs helpdesk,bpi2012w]
        [--target suffix|next] [--steps 600] [--seeds 1,2,3] [--fresh] [--out FILE]

One token per activity (``tokenizer.kind = "words"``); the model trains through
``seqweave.train`` on every prefix k = 1 .. n of the fitting cases (source: the prefix;
target: the rest of the case, or with ``--target next`` only its first event, a
next-event classifier). The whole case (k = n) has an empty target, just end of
sequence: without those rows the model never sees a case end and cannot predict
``END``. Scored on every validation prefix k = 1 .. n-1, as run.py scores the
baselines: next-event accuracy, accuracy told the case goes on and Brier score, all
from the first decoder step's distribution (``seqweave.baselines.Seq2SeqNextEvent``),
and the same with end of case counted (k = n). For suffix models also the greedy
continuation: the first decoded event's accuracy and suffix similarity (1 - normalised
Damerau-Levenshtein). Every seed's figures and their mean and standard deviation go to
recipes/next_event/results-transformer.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from seqweave.baselines import END, Seq2SeqNextEvent
from seqweave.baselines.next_event import most_likely
from seqweave.data.formats.event_log import Trace, temporal_split, traces_from_rows
from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    seed_list,
    summarise,
    write_results,
)
from seqweave.metrics_events import accuracy, brier_score, prefix_overlap, suffix_similarity

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "recipes/next_event/transformer.toml"
DATA = Path("../shared/data")
RUNS = Path("runs/next_event")


def write_rows(traces: list[Trace], path: Path, target: str) -> None:
    """Every prefix k = 1 .. n as ``{"source": prefix, "target": suffix}`` (``target`` =
    "next": the suffix's first event only); the whole case's target is empty (END)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for trace in traces:
            events = trace.activities
            for k in range(1, len(events) + 1):
                suffix = events[k:] if target == "suffix" else events[k : k + 1]
                row = {"source": " ".join(events[:k]), "target": " ".join(suffix)}
                handle.write(json.dumps(row) + "\n")


def train(cell: dict, settings: dict, fit: list[Trace]):
    """Train (or reuse a finished run of) the cell's model; returns it loaded."""
    import seqweave
    from seqweave.config import load_config
    from seqweave.harness import train_or_load

    target = settings["target"]
    out_dir = RUNS / f"{cell['log']}-transformer-{target}-seed{cell['seed']}"
    write_rows(fit, out_dir / "fit.jsonl", target)
    config = load_config(
        CONFIG,
        [
            f"data.train={out_dir / 'fit.jsonl'}",
            f"train.max_steps={settings['steps']}",
            f"train.validate_every={settings['steps']}",
            f"train.log_every={max(1, settings['steps'] // 10)}",
            f"train.seed={cell['seed']}",
            "train.device=cpu",
            f"train.out_dir={out_dir}",
        ],
    )
    return seqweave.load(train_or_load(config))


def next_event_figures(predictor: Seq2SeqNextEvent, valid: list[Trace]) -> dict:
    """run.py's figures from the first decoder step: over k = 1 .. n-1, and with the
    whole case (truth END) counted."""
    prefixes = [t.activities[:k] for t in valid for k in range(1, len(t.activities))]
    truth = [t.activities[k] for t in valid for k in range(1, len(t.activities))]
    ends = [t.activities for t in valid]
    distributions = predictor.predict_proba_batch(prefixes)
    at_end = predictor.predict_proba_batch(ends)
    predicted = [most_likely(d) for d in distributions]
    going_on = [most_likely({x: p for x, p in d.items() if x != END}) for d in distributions]
    correct = [p == t for p, t in zip(predicted, truth, strict=True)]
    return {
        "accuracy": accuracy(predicted, truth),
        "accuracy_continuing": accuracy(going_on, truth),
        "brier": brier_score(distributions, truth),
        "accuracy_with_end": accuracy(
            predicted + [most_likely(d) for d in at_end], truth + [END] * len(ends)
        ),
        "brier_with_end": brier_score(distributions + at_end, truth + [END] * len(ends)),
        "predicted_end": sum(p == END for p in predicted),
        "prefixes": len(prefixes),
        "correct": correct,
        "prefix_list": prefixes,
    }


def suffix_figures(model, valid: list[Trace], max_new_tokens: int) -> dict:
    """Greedy continuations: the first decoded event's accuracy and suffix similarity."""
    prefixes = [t.activities[:k] for t in valid for k in range(1, len(t.activities))]
    suffixes = [list(t.activities[k:]) for t in valid for k in range(1, len(t.activities))]
    outputs = model.generate(
        [" ".join(p) for p in prefixes], max_new_tokens=max_new_tokens, batch_size=256
    )
    predicted = [text.split() for text in outputs]
    first = [p[0] if p else END for p in predicted]
    similarity = [suffix_similarity(p, s) for p, s in zip(predicted, suffixes, strict=True)]
    return {
        "accuracy_decoded": accuracy(first, [s[0] for s in suffixes]),
        "suffix_similarity": sum(similarity) / len(similarity),
        "suffix_length": sum(map(len, predicted)) / len(predicted),
    }


def train_and_score(cell: dict, settings: dict) -> dict:
    torch.set_num_threads(settings["threads"])
    fit, valid = temporal_split(traces_from_rows(DATA / cell["log"] / "train.jsonl"), 2 / 3)
    started = time.perf_counter()
    model = train(cell, settings, fit)
    trained = time.perf_counter() - started
    started = time.perf_counter()
    result = next_event_figures(Seq2SeqNextEvent(model), valid)
    seen = (t.activities[:k] for t in fit for k in range(1, len(t.activities) + 1))
    result |= prefix_overlap(seen, result.pop("prefix_list"), result.pop("correct"))
    if settings["target"] == "suffix":
        result |= suffix_figures(model, valid, settings["max_new_tokens"])
    result |= {"train_seconds": trained, "score_seconds": time.perf_counter() - started}
    print(
        f"{cell['log']:9} transformer-{settings['target']} seed {cell['seed']} "
        f"acc {result['accuracy']:.3f}  brier {result['brier']:.3f}  "
        f"({trained:.0f} s + {result['score_seconds']:.0f} s)",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", default="helpdesk,bpi2012w")
    parser.add_argument("--target", default="suffix", choices=["suffix", "next"])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=100)
    add_run_arguments(parser, ROOT / "recipes/next_event/results-transformer.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    seeds = seed_list(args.seeds)
    settings = {
        "steps": args.steps,
        "target": args.target,
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
    }

    def write(rows: list[dict], complete: bool = False) -> None:
        write_results(
            args.out,
            seeds=seeds,
            device="cpu",
            jobs=args.jobs,
            threads=args.threads,
            started=started,
            complete=complete,
            protocol="validation, not test: as run.py's (earlier 2/3 of each log's training "
            "cases train, the latest 1/3 scored; prefixes k = 1..n-1, with_end: k = 1..n)",
            training=f"{args.steps} updates, {CONFIG.name}, target {args.target}, "
            "rows k = 1..n (the whole case's target is END)",
            summary=summarise(rows, by=["log"]),
            runs=rows,
        )

    cells = grid(log=args.logs.split(","), seed=seeds)
    log = cell_log_path(args.out, RUNS, args.fresh)
    write(run_grid(train_and_score, cells, settings, log, args.jobs, write), complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
