"""seqweave's Transformer as seq2seq prefix -> whole suffix on the event logs, on the same
validation split as run.py (the earlier 2/3 of each log's training cases train the model,
the latest 1/3 are scored).

    .venv/bin/python recipes/next_event/transformer.py [--logs helpdesk,bpi2012w]
        [--steps 600] [--seed 1] [--fresh]

One token per activity (``tokenizer.kind = "words"``); the model trains through
``seqweave.train`` on every prefix row of the fitting cases (source: the prefix, target:
the rest of the case) and greedy-decodes every validation prefix. Scored: next-event
accuracy (the first decoded event; end of case if nothing is decoded) and suffix
similarity (1 - normalised Damerau-Levenshtein); no Brier score (the decoder's
probability of its first event is not read out yet). Writes
recipes/next_event/results-transformer.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from seqweave.data.formats.event_log import Trace, temporal_split, traces_from_rows
from seqweave.harness import add_run_arguments, cell_log_path, grid, run_grid, write_results
from seqweave.metrics_events import prefix_overlap, suffix_similarity

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "recipes/next_event/transformer.toml"
DATA = Path("../shared/data")
RUNS = Path("runs/next_event")


def write_rows(traces: list[Trace], path: Path) -> None:
    """Every prefix k = 1 .. n-1 as ``{"source": prefix, "target": suffix}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for trace in traces:
            events = trace.activities
            for k in range(1, len(events)):
                row = {"source": " ".join(events[:k]), "target": " ".join(events[k:])}
                handle.write(json.dumps(row) + "\n")


def train_and_score(cell: dict, settings: dict) -> dict:
    import seqweave
    from seqweave.config import load_config
    from seqweave.harness import train_or_load

    torch.set_num_threads(settings["threads"])
    log = cell["log"]
    fit, valid = temporal_split(traces_from_rows(DATA / log / "train.jsonl"), 2 / 3)
    out_dir = RUNS / f"{log}-transformer-seed{cell['seed']}"
    write_rows(fit, out_dir / "fit.jsonl")
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
    started = time.perf_counter()
    model = seqweave.load(train_or_load(config))
    trained = time.perf_counter() - started
    prefixes, truths, suffixes = [], [], []
    for trace in valid:
        for k in range(1, len(trace.activities)):
            prefixes.append(trace.activities[:k])
            suffixes.append(list(trace.activities[k:]))
    started = time.perf_counter()
    outputs = model.generate(
        [" ".join(p) for p in prefixes], max_new_tokens=settings["max_new_tokens"], batch_size=256
    )
    decoded = time.perf_counter() - started
    predicted = [text.split() for text in outputs]
    truths = [s[0] for s in suffixes]
    correct = [(p[0] if p else "<end>") == t for p, t in zip(predicted, truths, strict=True)]
    seen = (t.activities[:k] for t in fit for k in range(1, len(t.activities) + 1))
    similarity = [suffix_similarity(p, s) for p, s in zip(predicted, suffixes, strict=True)]
    result = {
        "accuracy": sum(correct) / len(correct),
        "suffix_similarity": sum(similarity) / len(similarity),
        "suffix_length": sum(map(len, predicted)) / len(predicted),
        **prefix_overlap(seen, prefixes, correct),
        "prefixes": len(prefixes),
        "train_seconds": trained,
        "decode_seconds": decoded,
    }
    print(
        f"{log:9} transformer acc {result['accuracy']:.3f}  "
        f"suffix {result['suffix_similarity']:.3f}  ({trained:.0f} s + {decoded:.0f} s)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", default="helpdesk,bpi2012w")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=100)
    add_run_arguments(parser, ROOT / "recipes/next_event/results-transformer.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    settings = {
        "steps": args.steps,
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
    }

    def write(rows: list[dict], complete: bool = False) -> None:
        write_results(
            args.out,
            seeds=[args.seed],
            device="cpu",
            jobs=args.jobs,
            threads=args.threads,
            started=started,
            complete=complete,
            protocol="validation, not test: as run.py's (earlier 2/3 of each log's training "
            "cases train, the latest 1/3 scored; prefixes k = 1..n-1)",
            training=f"{args.steps} updates, {CONFIG.name}",
            results={row["log"]: row for row in rows},
        )

    cells = grid(log=args.logs.split(","), seed=[args.seed])
    log = cell_log_path(args.out, RUNS, args.fresh)
    write(run_grid(train_and_score, cells, settings, log, args.jobs, write), complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
