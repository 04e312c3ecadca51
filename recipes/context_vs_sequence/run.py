"""Context instead of raw sequence (CoKE, "Lost in Tokenization") on dna-splice.

    .venv/bin/python recipes/context_vs_sequence/run.py [--seeds 1,2,3] [--steps 300]

Our own validation rows (20 %, stratified by label, ``random.Random(0)``) are split from
../shared/data/dna-splice/train.jsonl; the held-out test split is not used. The context tool
(``seqweave.data.dna_context``) is fit on the fitting rows only, and a fitting row's prompt
skips its own id, so no prompt carries its own label or any validation label. The same small
model (config.toml) trains on each prompt mode (sequence / context / both) with each seed;
accuracy is exact match of the greedy label. Also the tool's own k-NN majority vote, a
baseline with no model. Writes recipes/context_vs_sequence/results.json. Run from the
repository root.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

import torch

from seqweave.data.dna_context import MODES, DNAContextTool
from seqweave.harness import difference, mean_std, write_results

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "recipes/context_vs_sequence/config.toml"
DATA = Path("../shared/data/dna-splice/train.jsonl")
RUNS = Path("runs/context_vs_sequence")


def split_rows(path: Path, share: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """Stratified by label; rows with the same sequence stay on one side (the upstream
    file has duplicates) so a validation sequence is never a neighbour of itself."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_label: dict[str, list[str]] = {}
    for row in rows:
        by_label.setdefault(row["target"], [])
        if row["source"] not in by_label[row["target"]]:
            by_label[row["target"]].append(row["source"])
    held: set[str] = set()
    rng = random.Random(seed)
    for label in sorted(by_label):
        sequences = sorted(by_label[label])
        rng.shuffle(sequences)
        held.update(sequences[: round(share * len(sequences))])
    fit = [(r["source"], r["target"], r["id"]) for r in rows if r["source"] not in held]
    valid = [(r["source"], r["target"], r["id"]) for r in rows if r["source"] in held]
    return fit, valid


def write_mode(tool: DNAContextTool, rows: list, mode: str, path: Path, fitting: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for seq, label, row_id in rows:
            source = tool.prompt(seq, mode, row_id if fitting else None)
            handle.write(json.dumps({"source": source, "target": label}) + "\n")


def train_and_score(mode: str, seed: int, steps: int, valid: list) -> float:
    import seqweave
    from seqweave.config import load_config
    from seqweave.harness import train_or_load

    data = RUNS / "data"
    config = load_config(
        CONFIG,
        [
            f"data.train={data / f'fit-{mode}.jsonl'}",
            f"train.max_steps={steps}",
            f"train.validate_every={steps}",
            f"train.log_every={max(1, steps // 4)}",
            f"train.seed={seed}",
            "train.device=cpu",
            f"train.out_dir={RUNS / f'{mode}-seed{seed}'}",
        ],
    )
    model = seqweave.load(train_or_load(config))
    sources = [json.loads(line)["source"] for line in (data / f"valid-{mode}.jsonl").open()]
    outputs = model.generate(sources, max_new_tokens=3, batch_size=256)
    truth = [label for _, label, _ in valid]
    return sum(o.strip() == t for o, t in zip(outputs, truth, strict=True)) / len(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--neighbours", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    fit, valid = split_rows(DATA)
    tool = DNAContextTool(neighbours=args.neighbours).fit(fit)
    for mode in MODES:
        write_mode(tool, fit, mode, RUNS / "data" / f"fit-{mode}.jsonl", fitting=True)
        write_mode(tool, valid, mode, RUNS / "data" / f"valid-{mode}.jsonl", fitting=False)
    knn = [Counter(lab for lab, _ in tool.nearest(s)).most_common(1)[0][0] for s, _, _ in valid]
    knn_acc = sum(p == t for p, (_, t, _) in zip(knn, valid, strict=True)) / len(valid)
    print(f"k-NN vote (no model): {knn_acc:.3f}", flush=True)
    runs: dict[str, list[float]] = {mode: [] for mode in MODES}
    for seed in seeds:
        for mode in MODES:
            runs[mode].append(train_and_score(mode, seed, args.steps, valid))
            print(f"{mode:8} seed {seed}: accuracy {runs[mode][-1]:.3f}", flush=True)
    figures = {mode: mean_std(values) for mode, values in runs.items()}
    write_results(
        ROOT / "recipes/context_vs_sequence/results.json",
        seeds=seeds,
        device="cpu",
        jobs=1,
        started=started,
        figures=figures,
        knn_vote_accuracy=knn_acc,
        both_minus_context=difference(figures["context"], figures["both"]),
        rows={"fit": len(fit), "valid": len(valid)},
        settings=vars(args),
    )


if __name__ == "__main__":
    main()
