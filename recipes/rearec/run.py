"""ReaRec (Tang et al. 2025, "Think before recommend") on MovieLens ml-latest-small.

    .venv/bin/python recipes/rearec/run.py [--variants sasrec,erl-k2,prl-k2,...]
        [--seeds 1] [--steps 400] [--jobs 2] [--out FILE] [--fresh]

Protocol. Leave-one-out as the data's README lays it out: each user's last item is the
test target and is kept back, so every figure here is on the **validation** split (the
second-to-last item of each of the 610 users, from everything before it). Training rows
are each user's training sequence cut into (history -> next item) prefixes, the last
``PREFIXES`` of them per user, each history the ``HISTORY`` most recent items; a
validation history is the user's ``HISTORY`` most recent items too, while the items
excluded from full ranking (and never drawn as negatives) are the user's whole history.
Figures: HR@10 and NDCG@10 under full ranking over every training item and under 100
negatives sampled per user (seeded, the same for every method), never mixed
(``seqweave.metrics_recsys``); the reasoning models add the oracle-best-step analysis.

Methods: popularity, first-order Markov and item co-occurrence
(``seqweave.baselines.recsys``, fitted on the users' whole training sequences), and
models trained through ``seqweave.train`` from ``rearec.toml`` (one ``words`` tokenizer
for all, built once): ``sasrec`` (K = 0, full softmax), ``sasrec-negN`` (sampled softmax
with N negatives), ``erl-kK`` (ERL, mean readout, KL weight
``--kl-weight``), ``prl-kK`` (PRL, last-step readout, temperature decay
``--temperature-decay``, contrastive weight ``--contrastive-weight``). Training runs a
fixed number of updates and scores the last checkpoint: no checkpoint is chosen on the
split reported. Writes recipes/rearec/results.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    seed_list,
    summarise,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/rearec")
DATA = Path("../shared/data/movielens-small")
RUNS = Path("runs/rearec")
HISTORY = 20  # items a model reads (the model's positions: 20 items and </s>)
PREFIXES = 40  # training rows per user: the last 40 next-item prefixes
BASELINES = ("popularity", "markov", "cooccurrence")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def prepare() -> dict:
    """Training rows, validation rows and the shared tokenizer, written once under runs/."""
    from seqweave.tokenizers import words_tokenizer

    out = RUNS / "data"
    out.mkdir(parents=True, exist_ok=True)
    sequences = [row["sequence"].split() for row in read_jsonl(DATA / "train.jsonl")]
    rows = [
        {"source": " ".join(s[max(0, t - HISTORY) : t]), "target": s[t]}
        for s in sequences
        for t in range(max(1, len(s) - PREFIXES), len(s))
    ]
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    valid = read_jsonl(DATA / "valid.jsonl")
    tokenizer = words_tokenizer((t for r in rows for t in (r["source"], r["target"])), 0, 1)
    tokenizer.save(out / "tokenizer")
    return {
        "train": str(out / "train.jsonl"),
        "tokenizer": str(out / "tokenizer"),
        "training_rows": len(rows),
        "validation_users": len(valid),
        "items": tokenizer.vocab_size - 4,
    }


def validation(tokenizer) -> tuple[list[list[int]], list[str], list[list[int]]]:
    """Recent histories framed as training frames them (items, then </s>; an item unseen in
    training reads as <unk>), targets, and the ids of each user's whole history."""
    rows = read_jsonl(DATA / "valid.jsonl")
    eos = tokenizer.eos_id
    sources, targets, interacted = [], [], []
    for row in rows:
        items = row["source"].split()
        ids = [tokenizer.token_to_id(i) for i in items]
        known = [i for i in ids if i is not None]
        recent = [i if i is not None else tokenizer.unk_id for i in ids[-HISTORY:]]
        sources.append([*recent, eos])
        targets.append(row["target"])
        interacted.append(known)
    return sources, targets, interacted


def variant_overrides(variant: str, settings: dict) -> list[str]:
    if variant == "sasrec":
        return []
    if variant.startswith("sasrec-neg"):  # sampled softmax: N shared uniform negatives
        return [f"objectives.rearec.negatives={variant.removeprefix('sasrec-neg')}"]
    mode, steps = variant.split("-k")
    values = [f"model.reasoning_steps={steps}"]
    if mode == "erl":
        values += ["model.reasoning_readout=mean", "objectives.rearec.mode=erl"]
        values.append(f"objectives.rearec.kl_weight={settings['kl_weight']}")
    else:
        values += ["model.reasoning_readout=last", "objectives.rearec.mode=prl"]
        values += [
            f"objectives.rearec.temperature_decay={settings['temperature_decay']}",
            f"objectives.rearec.contrastive_weight={settings['contrastive_weight']}",
        ]
    return values


def baseline_scorer(name: str, tokenizer):
    from seqweave.baselines.recsys import RECOMMENDERS

    items = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    sequences = [row["sequence"].split() for row in read_jsonl(DATA / "train.jsonl")]
    recommender = RECOMMENDERS[name]().fit(sequences, items)

    def scorer(sources: list[list[int]]) -> torch.Tensor:
        histories = [[items[i] for i in source[:-1]] for source in sources]
        return torch.from_numpy(np.stack([recommender.scores(h) for h in histories]))[:, None]

    return scorer


def evaluate(cell: dict, settings: dict) -> dict:
    """One method and seed: train (models) or fit (baselines), rank the validation users."""
    import seqweave
    from seqweave.config import load_config
    from seqweave.harness import train_or_load
    from seqweave.recommend import network_scorer, rank_examples
    from seqweave.tokenizers import Tokenizer

    torch.set_num_threads(1)
    started = time.perf_counter()
    variant, seed = cell["variant"], cell["seed"]
    tokenizer = Tokenizer.load(settings["tokenizer"])
    readout, extra = "last", {}
    if variant in BASELINES:
        scorer = baseline_scorer(variant, tokenizer)
    else:
        out_dir = RUNS / f"{variant}-steps{settings['steps']}-seed{seed}"
        values = [
            f"data.train={settings['train']}",
            f"tokenizer.path={settings['tokenizer']}",
            f"train.max_steps={settings['steps']}",
            f"train.validate_every={settings['steps']}",
            f"train.log_every={max(1, settings['steps'] // 10)}",
            f"train.seed={seed}",
            f"train.out_dir={out_dir}",
            *variant_overrides(variant, settings),
        ]
        best = train_or_load(load_config(HERE / "rearec.toml", values))
        network = seqweave.load(best).network
        scorer, readout = network_scorer(network), network.config.reasoning_readout
        log = [json.loads(x) for x in (out_dir / "metrics.jsonl").read_text().splitlines()]
        trained = [r for r in log if r.get("kind") == "train"]
        extra = {"final_loss": trained[-1]["loss"], "train_seconds": trained[-1]["elapsed_seconds"]}
    sources, targets, interacted = validation(tokenizer)
    figures = rank_examples(
        scorer, tokenizer, sources, targets, readout, seed=0, interacted=interacted
    )
    figures |= extra | {"seconds": time.perf_counter() - started}
    print(
        f"{variant:13} seed {seed}: full HR@10 {figures['full_hr@10']:.4f} "
        f"NDCG@10 {figures['full_ndcg@10']:.4f} | 100 neg HR@10 "
        f"{figures['sampled100_hr@10']:.4f} NDCG@10 {figures['sampled100_ndcg@10']:.4f}",
        flush=True,
    )
    return figures


COLUMNS = {
    "full HR@10": "full_hr@10",
    "full NDCG@10": "full_ndcg@10",
    "100-neg HR@10": "sampled100_hr@10",
    "100-neg NDCG@10": "sampled100_ndcg@10",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    models = "sasrec,erl-k1,erl-k2,erl-k3,prl-k1,prl-k2,prl-k3"
    parser.add_argument("--variants", default=",".join(BASELINES) + "," + models)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--kl-weight", type=float, default=0.05)
    parser.add_argument("--temperature-decay", type=float, default=1.5)
    parser.add_argument("--contrastive-weight", type=float, default=0.1)
    add_run_arguments(parser, ROOT / HERE / "results.json", jobs=2)
    args = parser.parse_args()
    os.chdir(ROOT)
    settings = {
        **prepare(),
        "steps": args.steps,
        "kl_weight": args.kl_weight,
        "temperature_decay": args.temperature_decay,
        "contrastive_weight": args.contrastive_weight,
        "history": HISTORY,
        "prefixes": PREFIXES,
    }
    started = time.perf_counter()
    seeds = seed_list(args.seeds)
    variants = args.variants.split(",")
    cells = grid(variant=variants, seed=seeds)
    cells = [c for c in cells if c["variant"] not in BASELINES or c["seed"] == seeds[0]]
    log = cell_log_path(args.out, RUNS, args.fresh)

    def report(rows: list[dict], complete: bool = False) -> None:
        figures = summarise(rows, by=["variant"])
        write_results(
            args.out,
            seeds=seeds,
            device="cpu",
            jobs=args.jobs,
            started=started,
            complete=complete,
            settings=settings,
            figures=figures,
            runs=rows,
        )

    rows = run_grid(evaluate, cells, settings, log, args.jobs, report)
    report(rows, complete=len(rows) == len(cells))
    for row in rows:
        print(row["variant"], row["seed"], {k: round(row[v], 4) for k, v in COLUMNS.items()})


if __name__ == "__main__":
    main()
