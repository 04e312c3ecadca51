"""Thoth's data and reward, first slice: seeded protocol pairs and what SCORE gives simple answers.

    .venv/bin/python recipes/thoth/generate.py [--train 2000] [--valid 200] [--out runs/thoth]

Writes ``train.jsonl`` and ``valid.jsonl`` (``seqweave.data.synthetic_protocols``: writing
and volume-scaling tasks, different seeds, exact duplicates of training sources dropped
from validation) for ``seqweave train``, then scores rule-made answers to each validation
row with SCORE (``seqweave.rewards.score``) to show what the reward separates: the
reference, a scaling task answered without scaling, two neighbouring steps swapped, a step
dropped, a step repeated, and prose that names the wrong vessel (the consistency gate).
Writes recipes/thoth/results.json. Run from the repository root. Trains nothing.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from seqweave.data.protocol_format import Step, parse_answer, render_answer
from seqweave.data.synthetic_protocols import answer, prose, protocol_pairs, write_jsonl
from seqweave.harness import write_results
from seqweave.harness.results import mean_std
from seqweave.rewards.score import score

RESULTS = Path(__file__).with_name("results.json")


def unscaled(record: dict) -> str | None:
    """A scaling task answered with the original amounts (the factor ignored)."""
    if record["task"] != "scale":
        return None
    steps = parse_answer(record["target"]).steps
    factor = record["factor"]
    original = []
    for step in steps:
        parameters = dict(step.parameters)
        for name in ("volume", "mass"):
            if name in parameters:
                amount, unit = parameters[name].split()
                parameters[name] = f"{format(round(float(amount) / factor, 4), 'g')} {unit}"
        original.append(Step(step.action, step.objects, parameters))
    return answer(original)


def variants(record: dict, rng: random.Random) -> dict[str, str | None]:
    """Rule-made answers to one validation row, by name (None: not applicable)."""
    steps = parse_answer(record["target"]).steps
    i = rng.randrange(len(steps) - 1)
    swapped = [*steps[:i], steps[i + 1], steps[i], *steps[i + 2 :]]
    wrong = [prose(s) for s in steps]
    wrong[0] = wrong[0].replace(steps[0].objects[-1], "beaker")
    return {
        "reference": record["target"],
        "unscaled (scale tasks)": unscaled(record),
        "neighbours swapped": answer(swapped),
        "one step dropped": answer([*steps[:i], *steps[i + 1 :]]),
        "one step repeated": answer([*steps[: i + 1], steps[i], *steps[i + 1 :]]),
        "prose names another vessel": render_answer("plan", steps, wrong),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--valid", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("runs/thoth"))
    args = parser.parse_args()
    started = time.perf_counter()
    train = protocol_pairs(args.train, seed=0)
    seen = {record["source"] for record in train}
    drawn = protocol_pairs(args.valid, seed=1)
    valid = [record for record in drawn if record["source"] not in seen]
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "train.jsonl", train)
    write_jsonl(args.out / "valid.jsonl", valid)
    rng = random.Random(0)
    scores: dict[str, dict[str, list[float]]] = {}
    for record in valid:
        for name, text in variants(record, rng).items():
            if text is not None:
                result = score(text, record["target"])
                parts = scores.setdefault(name, {})
                for part in ("total", "step", "order", "semantic"):
                    parts.setdefault(part, []).append(getattr(result, part))
    figures = {
        name: {part: mean_std(values)["mean"] for part, values in parts.items()}
        | {"rows": len(parts["total"])}
        for name, parts in scores.items()
    }
    for name, row in figures.items():
        print(f"{name:28s} " + " ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "rows"))
    write_results(
        RESULTS,
        seeds=[0, 1],
        device="cpu",
        jobs=1,
        started=started,
        data={
            "train": len(train),
            "valid": len(valid),
            "valid_dropped_as_duplicates": len(drawn) - len(valid),
            "scale_share_valid": sum(r["task"] == "scale" for r in valid) / len(valid),
        },
        reward_of_rule_made_answers=figures,
    )


if __name__ == "__main__":
    main()
