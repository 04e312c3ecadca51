"""How well each reward model judges what the supervised policy samples (what RL feeds it).

    .venv/bin/python recipes/reward_models/diagnose.py [--seed 1] [--samples 4]

Needs run.py's and policy.py's models. Samples ``--samples`` outputs per held-out source
from the supervised policy at temperature 1 (as ``[rl]`` does), and reports for each reward:
its mean on correct and on wrong samples, and how often, within one source, it ranks a
correct sample above a wrong one (ties count half). For the seq2seq reward model also how
often a wrong sample gets the full reward 1 (its correction agrees with the wrong answer)
and how often its correction is the correct answer. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes/reward_models"))

from sorting_data import held_out_probes  # noqa: E402

import seqweave  # noqa: E402
from seqweave.data.preferences import read_preferences  # noqa: E402
from seqweave.rewards.bradley_terry import BradleyTerryReward  # noqa: E402
from seqweave.rewards.seq2seq_rm import Seq2SeqRewardModel  # noqa: E402

RUNS = ROOT / "runs/reward_models"


def ranking(rewards: list[float], correct: list[bool], groups: int, size: int) -> float:
    """Within each source, how often a correct sample outranks a wrong one."""
    wins = total = 0.0
    for g in range(groups):
        rows = range(g * size, (g + 1) * size)
        for i in rows:
            for j in rows:
                if correct[i] and not correct[j]:
                    total += 1
                    wins += (
                        1.0 if rewards[i] > rewards[j] else 0.5 if rewards[i] == rewards[j] else 0
                    )
    return wins / total if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--probes", type=int, default=300)
    args = parser.parse_args()
    rm_dir = RUNS / f"cue1.0-seed{args.seed}"
    seen = {p.source for p in read_preferences(rm_dir / "pairs.jsonl")}
    probes = held_out_probes(args.probes, args.seed + 1000, seen)
    policy = seqweave.load(RUNS / f"policy-seed{args.seed}/sft/best")
    sources = [p.source for p in probes for _ in range(args.samples)]
    answers = [p.correct for p in probes for _ in range(args.samples)]
    outputs = policy.generate(sources, decoder="sample", temperature=1.0, seed=args.seed)
    correct = [o == a for o, a in zip(outputs, answers, strict=True)]
    rm = Seq2SeqRewardModel.load(rm_dir / "seq2seq_rm/best")
    scored = rm.score(sources, outputs)
    rewards = {
        "seq2seq_rm": [r.sequence for r in scored],
        "bradley_terry": BradleyTerryReward.load(rm_dir / "bradley_terry").score(sources, outputs),
    }
    report: dict = {"samples": len(outputs), "correct_samples": sum(correct) / len(correct)}
    for name, values in rewards.items():
        right = [v for v, c in zip(values, correct, strict=True) if c]
        wrong = [v for v, c in zip(values, correct, strict=True) if not c]
        report[name] = {
            "mean_on_correct": sum(right) / len(right),
            "mean_on_wrong": sum(wrong) / len(wrong),
            "correct_outranks_wrong": ranking(values, correct, len(probes), args.samples),
        }
    wrong_full = [r.sequence == 1.0 for r, c in zip(scored, correct, strict=True) if not c]
    fixed = [rm.tokenizer.decode(r.correction) == a for r, a in zip(scored, answers, strict=True)]
    report["seq2seq_rm"] |= {
        "wrong_with_full_reward": sum(wrong_full) / len(wrong_full),
        "correction_is_correct": sum(fixed) / len(fixed),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
