"""SeqPE length extrapolation: train at L positions, measure perplexity at L, 2L and 4L.

    .venv/bin/python recipes/seqpe/run.py [--steps 800] [--systems sinusoidal,learned,...]
        [--retrain] [--threads 1] [--device auto] [--fresh]

1. English Multi30k captions (train for training, valid + test2016 for evaluation)
   are packed into prefix-LM examples: one sentence as the prefix, the sentences
   after it as the target, as many as fit in N positions (prefix + start token +
   target). Training uses N = L = 64; evaluation uses N = 64, 128 and 256.
2. One model per system (recipes/seqpe/lm.toml, same size and steps): sinusoidal,
   learned (a 256-row table, rows past ~64 never trained), RoPE, SeqPE without and
   with its two auxiliary objectives.
3. Per system and length: perplexity of the target tokens (teacher forced), and the
   Spearman correlation between position distance and the cosine similarity of
   position vectors over positions 0..L-1 and 0..4L-1 (absolute encodings only).

The systems run one after another in this process (``seqweave.harness``); a cut-off run
resumes with the systems it has not finished, and a system whose model finished training
with the same config is not trained again. Writes recipes/seqpe/results.json (when every
system ran; with each scored checkpoint's step and validation) and prints a table. Run
from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from packed_lm import LENGTH, LENGTHS, perplexity, prepare

import seqweave
from seqweave.config import load_config
from seqweave.device import resolve_device
from seqweave.harness import (
    cell_log_path,
    grid,
    run_grid,
    scored_checkpoint,
    train_or_load,
    write_results,
)
from seqweave.objectives.seqpe import distance_rank_correlation
from seqweave.tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "recipes/seqpe/lm.toml"
SYSTEMS = {
    "sinusoidal": ["model.position=sinusoidal"],
    "learned": ["model.position=learned"],
    "rope": ["model.position=rope"],
    "seqpe": ["model.position=seqpe"],
    "seqpe+objectives": [
        "model.position=seqpe",
        "objectives.seqpe.contrastive_weight=0.1",
        "objectives.seqpe.distill_weight=0.1",
    ],
}


def position_vectors(model, count: int) -> torch.Tensor | None:
    """(count, D) position vectors of an absolute encoding; None for RoPE."""
    positions = model.embed.positions
    if positions is None:
        return None
    with torch.no_grad():
        return positions.forward(torch.arange(count, device=model.device)[None])[0].cpu()


def run_system(cell: dict, settings: dict) -> dict:
    """Train (unless finished) and measure one system."""
    out, name, device = Path("runs/seqpe"), cell["system"], settings["device"]
    overrides = [
        *SYSTEMS[name],
        f"train.out_dir={out / name}",
        f"train.max_steps={settings['steps']}",
        f"train.device={device}",
    ]
    config = load_config(CONFIG, overrides)
    best = train_or_load(config, retrain=settings["retrain"])
    model = seqweave.load(best, device=device).network.eval()
    checkpoint = scored_checkpoint(config.train.out_dir, best)
    tokenizer = Tokenizer.load(out / "tokenizer")
    row = {
        "training_minutes": round(checkpoint.get("minutes_at_last_log", 0.0), 2),
        "steps": checkpoint["step"],
        "valid_ppl_at_L": (checkpoint["validation"] or {}).get("valid_ppl"),
        "checkpoint": checkpoint,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    for n in LENGTHS:
        examples = [json.loads(line) for line in (out / "data" / f"eval{n}.jsonl").open()]
        row[f"ppl@{n}"] = perplexity(model, tokenizer, examples)
    vectors = position_vectors(model, 4 * LENGTH)
    if vectors is not None:
        row["spearman_distance_similarity"] = {
            f"0..{LENGTH - 1}": distance_rank_correlation(vectors[:LENGTH]),
            f"0..{4 * LENGTH - 1}": distance_rank_correlation(vectors),
        }
    print(name, json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--retrain", action="store_true", help="train even where runs/seqpe/NAME has finished"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--fresh", action="store_true", help="measure every system again")
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    prepare(Path("runs/seqpe"))
    device = str(resolve_device(args.device))
    settings = {"steps": args.steps, "device": device, "retrain": args.retrain}
    path = ROOT / "recipes" / "seqpe" / "results.json"
    complete = args.systems == ",".join(SYSTEMS)

    def write(rows: list[dict]) -> None:
        if complete:  # a subset of the systems leaves the committed figures alone
            write_results(
                path,
                seeds=[load_config(CONFIG).train.seed],
                device=device,
                jobs=1,
                threads=args.threads,
                started=started,
                complete=len(rows) == len(SYSTEMS),
                task="prefix LM on English Multi30k captions: one sentence as prefix, the "
                "following sentences as target; trained at <= 64 positions, evaluated on "
                "valid+test2016 at <= 64, 128, 256 positions",
                config=CONFIG,
                steps=args.steps,
                results={row.pop("system"): row for row in map(dict, rows)},
            )

    cells = grid(system=args.systems.split(","))
    log = cell_log_path(path, "runs/seqpe", args.fresh or args.retrain)
    rows = run_grid(run_system, cells, settings, log, jobs=1, on_result=write)
    if complete:
        print(f"wrote {path}")
    print(
        f"{'system':18s}"
        + "".join(f"  ppl@{n:<5d}" for n in LENGTHS)
        + "  spearman(0..L-1, 0..4L-1)"
    )
    for row in rows:
        rho = row.get("spearman_distance_similarity")
        rho_text = "  n/a" if rho is None else "  " + ", ".join(f"{v:+.2f}" for v in rho.values())
        print(
            f"{row['system']:18s}"
            + "".join(f"  {row[f'ppl@{n}']['ppl']:9.2f}" for n in LENGTHS)
            + rho_text
        )


if __name__ == "__main__":
    main()
