"""Next-element prediction on event logs: the baselines on Helpdesk and BPI'12 W.

    .venv/bin/python recipes/next_event/run.py [--logs helpdesk,bpi2012w] [--orders 1,2,3,4,5]
        [--methods LSTM,GRU] [--seeds 1,2,3] [--jobs N] [--fresh] [--out FILE]

Protocol. The logs' test thirds (the latest cases) are kept back, so nothing here is a
test figure: each log's training part (the earlier two-thirds of its cases) is split
again in time, the earlier two-thirds of those cases by start fit the predictors and the
latest third is the validation split every figure is on. Orders k are listed, not only
the best, because choosing k on the split one reports on flatters the chosen k.

On every prefix k = 1 .. n-1 of every validation case (the rows of the prepared files):
next-event accuracy (the most likely event, end of case included, against the true next
event), Brier score over the events and end of case, suffix similarity (1 - normalised
Damerau-Levenshtein) of the greedy continuation until end of case (at most as long as the
longest fitting case) against the true rest of the case, and the prefix overlap: the
share of validation prefixes with which some fitting case begins, and the accuracy on
the others. Continuing: the accuracy when the predictor is told the case goes on (the
most likely event other than end of case), as a model trained on these rows only is.
With end: the same over k = 1 .. n, the prefix k = n (the whole case)
having end of case as its truth. Writes recipes/next_event/results.json. With more than
one seed (which only the LSTM and GRU use), every seed's row is kept under ``runs`` and
``summary`` has each figure's mean and standard deviation over them. Run from the
repository root.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from seqweave.baselines import END, PREDICTORS, greedy_suffix
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
DATA = Path("../shared/data")
LOGS = ("helpdesk", "bpi2012w")
FIT_FRACTION = 2 / 3


def methods(orders: list[int]) -> dict[str, tuple[str, dict]]:
    """Name -> (PREDICTORS key, keyword arguments)."""
    table = {"most frequent next": ("most_frequent", {})}
    table |= {f"markov k={k}": ("markov", {"order": k}) for k in orders}
    table |= {f"akom k<={k}": ("akom", {"max_order": k}) for k in orders}
    table["petri net (inductive miner)"] = ("petri_net", {})
    recurrent = {"hidden": 64, "epochs": 10, "lr": 5e-3}
    table |= {cell.upper(): ("recurrent", {"cell": cell, **recurrent}) for cell in ("lstm", "gru")}
    return table


def split(log: str) -> tuple[list[Trace], list[Trace]]:
    """The fitting cases and the validation cases (the latest third by start)."""
    return temporal_split(traces_from_rows(DATA / log / "train.jsonl"), FIT_FRACTION)


def evaluate(cell: dict, settings: dict) -> dict:
    """One method on one log: fit on the earlier cases, score every validation prefix."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    fit, valid = split(cell["log"])
    kind, arguments = methods(settings["orders"])[cell["method"]]
    if kind == "recurrent":
        arguments = {**arguments, "seed": cell["seed"]}
    predictor = PREDICTORS[kind](**arguments).fit([t.activities for t in fit])
    longest = max(len(t.activities) for t in fit)
    prefixes, truth, distributions, similarities, lengths = [], [], [], [], []
    at_end = []  # the distributions after whole validation cases, where the truth is END
    for trace in valid:
        events = list(trace.activities)
        at_end.append(predictor.predict_proba(events))
        for k in range(1, len(events)):
            distribution = predictor.predict_proba(events[:k])
            prefixes.append(tuple(events[:k]))
            truth.append(events[k])
            distributions.append(distribution)
            suffix = greedy_suffix(predictor, events[:k], longest)
            similarities.append(suffix_similarity(suffix, events[k:]))
            lengths.append((len(suffix), len(events) - k))
    predicted = [most_likely(d) for d in distributions]
    correct = [p == t for p, t in zip(predicted, truth, strict=True)]
    seen = (t.activities[:k] for t in fit for k in range(1, len(t.activities) + 1))
    result = {
        "accuracy": sum(correct) / len(correct),
        "brier": brier_score(distributions, truth),
        "accuracy_continuing": accuracy(
            [most_likely({x: p for x, p in d.items() if x != END}) for d in distributions],
            truth,
        ),
        "suffix_similarity": sum(similarities) / len(similarities),
        "suffix_length": sum(n for n, _ in lengths) / len(lengths),
        "true_suffix_length": sum(n for _, n in lengths) / len(lengths),
        **prefix_overlap(seen, prefixes, correct),
        "accuracy_with_end": (sum(correct) + sum(most_likely(d) == END for d in at_end))
        / (len(correct) + len(at_end)),
        "brier_with_end": brier_score(distributions + at_end, truth + [END] * len(at_end)),
        "predicted_end": sum(p == END for p in predicted),
        "prefixes": len(prefixes),
        "fit_cases": len(fit),
        "validation_cases": len(valid),
        "seconds": time.perf_counter() - started,
    }
    print(
        f"{cell['log']:9} {cell['method']:20} acc {result['accuracy']:.3f}  "
        f"brier {result['brier']:.3f}  suffix {result['suffix_similarity']:.3f}  "
        f"unseen acc {result['accuracy_unseen']:.3f}",
        flush=True,
    )
    return result


COLUMNS = {
    "acc": "accuracy",
    "acc, goes on": "accuracy_continuing",
    "Brier": "brier",
    "suffix sim": "suffix_similarity",
}


def table(results: dict[str, dict]) -> str:
    """Markdown: one row per method, the ``COLUMNS`` figures of each log."""
    logs = list(results)
    head = " | ".join(
        f"{log} {name}" if i == 0 else name for log in logs for i, name in enumerate(COLUMNS)
    )
    lines = [f"| method | {head} |", "|---|" + "---|" * len(COLUMNS) * len(logs)]
    for method in next(iter(results.values())):
        cells = []
        for log in logs:
            row = results[log].get(method)
            cells += [f"{row[key]:.3f}" if row else "—" for key in COLUMNS.values()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def selected(results: dict[str, dict]) -> dict[str, dict]:
    """Per log and family, the order with the best validation accuracy (the lower order on
    a tie); chosen on the split it is scored on, so it flatters the chosen order."""
    choice: dict[str, dict] = {}
    for log, rows in results.items():
        for family in ("markov", "akom"):
            names = [name for name in rows if name.startswith(family)]
            if names:
                best = max(names, key=lambda name: rows[name]["accuracy"])  # first on a tie
                choice.setdefault(log, {})[family] = best
    return choice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", default=",".join(LOGS))
    parser.add_argument("--orders", default="1,2,3,4,5")
    parser.add_argument("--methods", default="", help="names as in the table (default: all)")
    parser.add_argument("--seeds", default="1", help="seeds of the LSTM and GRU")
    add_run_arguments(parser, ROOT / "recipes/next_event/results.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    logs = args.logs.split(",")
    settings = {"orders": [int(k) for k in args.orders.split(",")]}

    seeds = seed_list(args.seeds)
    names = args.methods.split(",") if args.methods else list(methods(settings["orders"]))

    def write(rows: list[dict], complete: bool = False) -> None:
        results: dict[str, dict] = {log: {} for log in logs}
        for row in rows:
            if row["seed"] == seeds[0]:
                results[row["log"]][row["method"]] = {
                    k: v for k, v in row.items() if k not in ("log", "method")
                }
        extra = {}
        if len(seeds) > 1:
            extra = {"runs": rows, "summary": summarise(rows, by=["log", "method"])}
        write_results(
            args.out,
            seeds=seeds,
            device="cpu",
            jobs=args.jobs,
            started=started,
            complete=complete,
            protocol="validation, not test: each log's training part split in time, the "
            "earlier 2/3 of its cases by start fit, the latest 1/3 scored; every prefix "
            "k = 1..n-1 of a validation case",
            results=results,
            selected=selected(results),
            table=table(results),
            **extra,
        )

    cells = grid(log=logs, method=names, seed=seeds)
    log = cell_log_path(args.out, "runs/next_event", args.fresh)
    write(run_grid(evaluate, cells, settings, log, args.jobs, write), complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
