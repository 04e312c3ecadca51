"""Thoth: supervised fine-tuning on seeded protocols, then GRPO with the SCORE reward.

    .venv/bin/python recipes/thoth/run.py [--seeds 1] [--algorithm grpo] [--test 200]
        [--skip-training] [--out recipes/thoth/results-grpo.json]

Writes the data under runs/thoth/data (``seqweave.data.synthetic_protocols``, protocols of
2 to 4 steps, half writing and half volume-scaling tasks): 4,000 training pairs (seed 0),
200 validation pairs (seed 1; GRPO's ``best`` is picked on the first 100) and ``--test``
held-out pairs (seed 2), none of whose sources is a training source. Trains the supervised
model once (``sft.toml``), then one RL run per seed from it (``grpo.toml``, with
``rl.algorithm`` set by ``--algorithm``), each through ``seqweave train``. Every model is
scored on the held-out pairs with greedy decoding: mean SCORE (``seqweave.rewards.score``),
the share of answers that pass the format gate (validity) and the consistency gate, and
the three components. Run from the repository root.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import seqweave
from seqweave.config import load_config
from seqweave.data.synthetic_protocols import protocol_pairs, write_jsonl
from seqweave.harness import mean_std, seed_list, train_or_load, write_results
from seqweave.rewards.score import score

HERE = Path(__file__).parent
DATA = Path("runs/thoth/data")
STEPS = {"min_steps": 2, "max_steps": 4}
FIGURES = ("score", "valid_format", "consistent", "step", "order", "semantic")


def write_data(test: int) -> list[dict]:
    """The three splits (validation and test without any training source); returns test."""
    train = protocol_pairs(4000, seed=0, **STEPS)
    seen = {record["source"] for record in train}
    valid = [r for r in protocol_pairs(200, seed=1, **STEPS) if r["source"] not in seen]
    seen |= {record["source"] for record in valid}
    held_out = [r for r in protocol_pairs(test, seed=2, **STEPS) if r["source"] not in seen]
    DATA.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("valid", valid), ("test", held_out)):
        write_jsonl(DATA / f"{name}.jsonl", rows)
    return held_out


def evaluate(model_dir: Path, rows: list[dict]) -> dict:
    """Greedy answers to ``rows`` scored with SCORE: means over rows, and SCORE per task."""
    model = seqweave.load(model_dir)
    outputs = model.generate([r["source"] for r in rows], max_new_tokens=240, batch_size=50)
    results = [score(o, r["target"]) for o, r in zip(outputs, rows, strict=True)]
    figures = {
        "score": [x.total for x in results],
        "valid_format": [float(x.formatted) for x in results],
        "consistent": [float(x.consistent) for x in results],
        "step": [x.step for x in results],
        "order": [x.order for x in results],
        "semantic": [x.semantic for x in results],
    }
    means = {name: sum(values) / len(values) for name, values in figures.items()}
    for task in ("write", "scale"):
        scores = [x.total for x, r in zip(results, rows, strict=True) if r["task"] == task]
        means[f"score_{task}"] = sum(scores) / max(len(scores), 1)
    reasons: dict[str, int] = {}
    for x in results:
        if x.reason:
            reasons[x.reason[:50]] = reasons.get(x.reason[:50], 0) + 1
    return means | {"rows": len(rows), "gate_failures": reasons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=seed_list, default=[1], help="RL seeds, e.g. 1,2,3")
    parser.add_argument("--algorithm", default="grpo", help="grpo | reinforce")
    parser.add_argument("--test", type=int, default=200, help="held-out pairs")
    parser.add_argument("--skip-training", action="store_true", help="reuse trained models")
    parser.add_argument("--out", type=Path, default=HERE / "results-grpo.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    test = write_data(args.test)
    sft_config = load_config(HERE / "sft.toml")
    sft = train_or_load(sft_config, reuse_any=args.skip_training)
    before = evaluate(sft, test)
    print("sft  " + " ".join(f"{k} {before[k]:.3f}" for k in FIGURES), flush=True)
    runs = {}
    for seed in args.seeds:
        overrides = [
            f"train.seed={seed}",
            f"train.out_dir=runs/thoth/{args.algorithm}-s{seed}",
            f"rl.algorithm={args.algorithm}",
        ]
        config = load_config(HERE / "grpo.toml", overrides)
        assert Path(config.train.init_from) == Path(sft_config.train.out_dir) / "best"
        best = train_or_load(config, reuse_any=args.skip_training)
        runs[seed] = evaluate(best, test)
        print(f"{args.algorithm} s{seed} " + " ".join(f"{k} {runs[seed][k]:.3f}" for k in FIGURES))
    after = {name: mean_std(run[name] for run in runs.values()) for name in FIGURES}
    write_results(
        args.out,
        seeds=args.seeds,
        device="cpu",
        jobs=1,
        started=started,
        algorithm=args.algorithm,
        data={"train": 4000, "test": len(test), **STEPS},
        sft=before,
        rl_runs=runs,
        rl_summary=after,
    )


if __name__ == "__main__":
    main()
