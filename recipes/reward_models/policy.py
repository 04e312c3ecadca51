"""Fine-tune a sorting policy with each reward model and compare task accuracy over seeds.

    .venv/bin/python recipes/reward_models/policy.py [--seeds 1,2] [--sft-steps 200]
        [--rl-steps 80] [--rl-minutes 5] [--algorithm reinforce|grpo] [--out FILE]

Needs run.py's models first (runs/reward_models/cue1.0-seed<seed>/: the seq2seq reward
model and the Bradley-Terry model trained on pairs with the planted length cue). Per seed:
a policy trained by supervision on the reward models' training sources (source -> sorted)
for a few updates, so it is right only part of the time; then, from it, REINFORCE with a
batch-mean baseline (``[rl] algorithm = "reinforce"``, KL to the supervised policy) with
``rl.reward = "seq2seq_rm"`` and with ``rl.reward = "bradley_terry"``, each through
``seqweave.train``. Every policy (the ``last`` checkpoint, so that no reward also picks its
own checkpoint) is scored by greedy decoding on run.py's 300 held-out sources: exact match
with the sorted answer, mean length, and how often the output is longer than the answer.
Writes recipes/reward_models/results-policy.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes/reward_models"))

from run import RUNS, write_rows  # noqa: E402
from sorting_data import held_out_probes  # noqa: E402

from seqweave.config import load_config  # noqa: E402
from seqweave.data.preferences import read_preferences  # noqa: E402
from seqweave.harness import (  # noqa: E402
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    seed_list,
    summarise,
    write_results,
)

CONFIG = ROOT / "recipes/reward_models/policy.toml"
REWARD_MODELS = {"seq2seq_rm": "seq2seq_rm/best", "bradley_terry": "bradley_terry"}


def train(overrides: list[str]) -> Path:
    from seqweave.harness import train_or_load

    return train_or_load(load_config(CONFIG, overrides))


def score(model_dir: Path, probes) -> dict:
    import seqweave

    model = seqweave.load(model_dir)
    outputs = model.generate([p.source for p in probes], max_new_tokens=16, batch_size=128)
    correct = [p.correct for p in probes]
    lengths = [len(o.split()) for o in outputs]
    return {
        "exact": sum(o == c for o, c in zip(outputs, correct, strict=True)) / len(probes),
        "mean_length": sum(lengths) / len(lengths),
        "longer_than_answer": sum(n > len(c.split()) for n, c in zip(lengths, correct, strict=True))
        / len(probes),
    }


def run_name(reward: str, settings: dict) -> str:
    algorithm = settings["algorithm"]
    return reward if algorithm == "reinforce" else f"{reward}-{algorithm}"


def train_and_score(cell: dict, settings: dict) -> dict:
    torch.set_num_threads(settings["threads"])
    seed = cell["seed"]
    rm_dir = RUNS / f"cue1.0-seed{seed}"
    everything = read_preferences(rm_dir / "pairs.jsonl")
    probes = held_out_probes(settings["probes"], seed + 1000, {p.source for p in everything})
    out_dir = RUNS / f"policy-seed{seed}"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"source": p.source, "target": p.chosen} for p in everything]
    train_file = write_rows(rows[:-200], out_dir / "train.jsonl")
    valid_file = write_rows(rows[-200:], out_dir / "valid.jsonl")
    data = [f"data.train={train_file}", f"data.valid={valid_file}", "train.device=cpu"]
    started = time.perf_counter()
    sft = train(
        [*data, f"train.max_steps={settings['sft_steps']}", f"train.seed={seed}",
         f"train.validate_every={settings['sft_steps']}", f"train.out_dir={out_dir / 'sft'}"]
    )  # fmt: skip
    result = {"supervised": score(sft, probes)}
    for reward, path in REWARD_MODELS.items():
        steps = settings["rl_steps"]
        policy = train(
            [*data, f"train.init_from={sft}", f"train.seed={seed}",
             f"train.out_dir={out_dir / run_name(reward, settings)}",
             f"train.max_steps={steps}", "train.lr=3e-4",
             "train.schedule=constant", "train.warmup_steps=0", f"train.validate_every={steps}",
             f"train.max_minutes={settings['rl_minutes']}", "train.valid_decode_limit=50",
             f"train.log_every={max(1, steps // 8)}", f"rl.algorithm={settings['algorithm']}",
             f"rl.reward={reward}", f"rl.reward_model={rm_dir / path}", "rl.group_size=4",
             "rl.sources_per_step=8", "rl.max_new_tokens=16", "rl.kl_coef=0.04"]
        )  # fmt: skip
        result[reward] = score(policy.parent / "last", probes)
    result["seconds"] = time.perf_counter() - started
    print(f"seed {seed}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--sft-steps", type=int, default=200)
    parser.add_argument("--rl-steps", type=int, default=80)
    parser.add_argument("--rl-minutes", type=float, default=5.0)
    parser.add_argument("--algorithm", default="reinforce", choices=["reinforce", "grpo"])
    parser.add_argument("--threads", type=int, default=1)
    add_run_arguments(parser, ROOT / "recipes/reward_models/results-policy.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    seeds = seed_list(args.seeds)
    settings = {
        "probes": args.probes,
        "sft_steps": args.sft_steps,
        "rl_steps": args.rl_steps,
        "rl_minutes": args.rl_minutes,
        "threads": args.threads,
        "algorithm": args.algorithm,
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
            protocol=f"greedy outputs on run.py's {args.probes} held-out sources per seed; "
            "the last checkpoint of each RL run",
            training=f"supervised {args.sft_steps} updates ({CONFIG.name}); {args.algorithm} "
            "(reinforce: batch-mean baseline; grpo: group-relative advantages), 8 sources x 4 "
            f"samples, lr 3e-4, KL 0.04, at most {args.rl_steps} "
            f"updates or {args.rl_minutes} minutes per reward",
            summary=summarise([{**r, "all": "all"} for r in rows], by=["all"]),
            runs=rows,
        )

    cells = grid(seed=seeds)
    log = cell_log_path(args.out, RUNS, args.fresh)
    write(run_grid(train_and_score, cells, settings, log, args.jobs, write), complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
