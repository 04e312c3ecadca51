"""Token rewards and Bradley-Terry scores of a few held-out answers, as a markdown table.

    .venv/bin/python recipes/reward_models/examples.py [--seed 1] [--cue-rate 1.0] [--count 3]

Reads the models run.py left in runs/reward_models/cue<rate>-seed<seed>/ and the same
held-out probes run.py scored; prints, for each probe, the correct answer, the answer with
one token replaced and the correct one with two junk numbers appended, each with the seq2seq
reward model's token rewards (+ / - per token, how many tokens missing), its sequence
reward and the Bradley-Terry score. Run from the repository root after run.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes/reward_models"))

from sorting_data import held_out_probes  # noqa: E402

from seqweave.data.preferences import read_preferences  # noqa: E402
from seqweave.rewards.bradley_terry import BradleyTerryReward  # noqa: E402
from seqweave.rewards.seq2seq_rm import Seq2SeqRewardModel  # noqa: E402

RUNS = ROOT / "runs/reward_models"


def marked(answer: str, rewards: list[float]) -> str:
    """Each word with its token reward: ``4+ 17- 31+``."""
    return " ".join(
        f"{w}{'+' if r > 0 else '−'}" for w, r in zip(answer.split(), rewards, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cue-rate", type=float, default=1.0)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--probes", type=int, default=300, help="as run.py was given")
    args = parser.parse_args()
    out_dir = RUNS / f"cue{args.cue_rate}-seed{args.seed}"
    seen = {p.source for p in read_preferences(out_dir / "pairs.jsonl")}
    probes = held_out_probes(args.probes, args.seed + 1000, seen)[: args.count]
    rm = Seq2SeqRewardModel.load(out_dir / "seq2seq_rm/best")
    bt = BradleyTerryReward.load(out_dir / "bradley_terry")
    print("| source | answer | token rewards (missing) | seq2seq RM | Bradley-Terry |")
    print("|---|---|---|---|---|")
    for probe in probes:
        answers = [probe.correct, probe.substituted, probe.junk[1]]
        scored = rm.score([probe.source] * 3, answers)
        bt_scores = bt.score([probe.source] * 3, answers)
        for answer, result, bt_score in zip(answers, scored, bt_scores, strict=True):
            print(
                f"| {probe.source} | {answer} | {marked(answer, result.rewards)} "
                f"({result.missing}) | {result.sequence:.2f} | {bt_score:.2f} |"
            )


if __name__ == "__main__":
    main()
