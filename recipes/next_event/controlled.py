"""The controlled check for seqweave's Transformer: on sequences from a known order-2
Markov source, how close does its next-event Brier score come to the Bayes-optimal one
(the source's own probabilities)?

    .venv/bin/python recipes/next_event/controlled.py [--steps 1500] [--seeds 1]
        [--layers 2] [--position rope]

The source, the 4,000 training and 800 held-out sequences are those of
``tests/test_event_baselines.py``'s check (same generator, same seeds 3, 4 and 5), so the
figures sit beside the Markov, LSTM and GRU ones there. The model is a next-event
classifier: one row per prefix k = 0 .. n of every training sequence, target its next
event (empty, i.e. end of sequence, after the whole sequence); read out by
``seqweave.baselines.Seq2SeqNextEvent``. This is a recipe and not a test because training
takes minutes on a loaded 2-core machine, not seconds. Writes
recipes/next_event/results-controlled.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from seqweave.baselines import END, Seq2SeqNextEvent
from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    seed_list,
    summarise,
    write_results,
)
from seqweave.metrics_events import brier_score

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "recipes/next_event/transformer.toml"
RUNS = Path("runs/next_event/controlled")
SMALL = ["model.d_model=32", "model.ffn_dim=64", "model.num_heads=2", "model.dropout=0.0"]


def order2_source(seed: int, symbols: str = "abcd") -> dict[tuple, dict]:
    """Per context of the last two events (START-padded): a Dirichlet(1/2) distribution
    over the symbols and a chance of ending in [0.05, 0.2) (none before the first event)."""
    rng = np.random.default_rng(seed)
    contexts = ["<start>", *symbols]
    table = {}
    for first in contexts:
        for second in contexts:
            weights = rng.dirichlet([0.5] * len(symbols))
            end = 0.0 if second == "<start>" else rng.uniform(0.05, 0.2)
            table[first, second] = {
                **{s: (1 - end) * w for s, w in zip(symbols, weights, strict=True)},
                END: end,
            }
    return table


def sample(table: dict, count: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    traces = []
    for _ in range(count):
        trace: list[str] = []
        while True:
            padded = ["<start>", "<start>", *trace]
            distribution = table[padded[-2], padded[-1]]
            event = rng.choice(list(distribution), p=list(distribution.values()))
            if event == END or len(trace) == 60:
                break
            trace.append(str(event))
        traces.append(trace)
    return traces


def train_and_score(cell: dict, settings: dict) -> dict:
    import seqweave
    from seqweave.config import load_config
    from seqweave.harness import train_or_load

    torch.set_num_threads(settings["threads"])
    table = order2_source(seed=3)
    train, test = sample(table, 4000, seed=4), sample(table, 800, seed=5)
    out_dir = RUNS / f"{settings['position']}-{settings['layers']}-seed{cell['seed']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "fit.jsonl").open("w") as handle:
        for trace in train:
            for k in range(len(trace) + 1):
                row = {"source": " ".join(trace[:k]), "target": " ".join(trace[k : k + 1])}
                handle.write(json.dumps(row) + "\n")
    steps = settings["steps"]
    overrides = [f"data.train={out_dir / 'fit.jsonl'}", f"train.max_steps={steps}"]
    overrides += [f"train.validate_every={steps}", f"train.log_every={max(1, steps // 10)}"]
    overrides += [f"train.seed={cell['seed']}", "train.device=cpu", f"train.out_dir={out_dir}"]
    started = time.perf_counter()
    overrides += [
        f"model.encoder_layers={settings['layers']}",
        f"model.position={settings['position']}",
    ]
    overrides += [f"model.decoder_layers={settings['layers']}"]
    model = seqweave.load(train_or_load(load_config(CONFIG, SMALL + overrides)))
    trained = time.perf_counter() - started
    prefixes = [trace[:k] for trace in test for k in range(len(trace) + 1)]
    truth = [[*trace, END][k] for trace in test for k in range(len(trace) + 1)]
    bayes = brier_score([table[tuple(["<start>", "<start>", *p][-2:])] for p in prefixes], truth)
    score = brier_score(Seq2SeqNextEvent(model).predict_proba_batch(prefixes), truth)
    result = {
        "bayes_brier": bayes,
        "brier": score,
        "relative_excess": (score - bayes) / bayes,
        "prefixes": len(prefixes),
        "parameters": sum(p.numel() for p in model.network.parameters()),
        "train_seconds": trained,
    }
    print(
        f"seed {cell['seed']}: Brier {score:.4f}, Bayes {bayes:.4f}, "
        f"{100 * result['relative_excess']:+.2f}% ({trained:.0f} s)",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each")
    parser.add_argument("--position", default="rope", help="sinusoidal | learned | rope")
    add_run_arguments(parser, ROOT / "recipes/next_event/results-controlled.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started, seeds = time.perf_counter(), seed_list(args.seeds)
    settings = {"steps": args.steps, "threads": args.threads}
    settings |= {"layers": args.layers, "position": args.position}

    def write(rows: list[dict], complete: bool = False) -> None:
        write_results(
            args.out,
            seeds=seeds,
            device="cpu",
            jobs=args.jobs,
            threads=args.threads,
            started=started,
            complete=complete,
            training=f"{args.steps} updates, {CONFIG.name} with {' '.join(SMALL)}, "
            f"{args.layers} + {args.layers} layers, {args.position} positions, "
            "next-event targets on prefixes k = 0..n",
            summary=summarise(rows, by=[]),
            runs=rows,
        )

    log = cell_log_path(args.out, RUNS, args.fresh)
    write(run_grid(train_and_score, grid(seed=seeds), settings, log, args.jobs, write), True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
