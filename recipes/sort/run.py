"""Order Matters, Table 1: sorting N uniform floats with a pointer network and Read-Process-Write.

    .venv/bin/python recipes/sort/run.py [--sizes 5,10,15] [--steps 2000] [--hidden 128]
        [--device cpu|cuda] [--jobs N] [--fresh]

For each N, every model is trained for the same number of steps on fresh
random sets (N floats drawn uniformly from [0, 1), target: their indices in
ascending order of value), then scored on 2,000 held-out sets by exact-sort
accuracy (the whole permutation right), greedy pointing. Models:

- ``ptr-net``: the pointer network, an LSTM reading the floats in their given order;
- ``rpw P=p``: Read-Process-Write, P = 0, 1, 5, 10 process steps, without and
  with a glimpse before each pointing step.

As in the paper, elements already written are not masked out (with masking,
any pointer scorer monotone in the value sorts perfectly, so the task would
measure nothing).

The 27 runs are a grid (``seqweave.harness``): ``--jobs N`` trains N at a time in
separate processes (one CPU thread each, or sharing one GPU with ``--device cuda``);
a cut-off run resumes with the runs it has not finished. The models train in this
file's loop, not ``seqweave.train``: floats are not tokens, and the trainer has no
pointer loss. Writes recipes/sort/results.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from seqweave.harness import add_run_arguments, cell_log_path, grid, run_grid, write_results
from seqweave.models.sets import SetPointerNetwork

ROOT = Path(__file__).resolve().parents[2]
PROCESS_STEPS = (0, 1, 5, 10)


def models() -> dict[str, dict]:
    """As in the paper, nothing masks elements already written (see models.sets)."""
    plain = {"mask_written": False}
    result = {"ptr-net": {"reader": "lstm", "process_steps": 0, "glimpse": False, **plain}}
    for glimpse in (False, True):
        for steps in PROCESS_STEPS:
            name = f"rpw P={steps}" + (" glimpse" if glimpse else "")
            result[name] = {"reader": "set", "process_steps": steps, "glimpse": glimpse, **plain}
    return result


def sets(
    count: int, size: int, generator: torch.Generator, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(count, size, 1, generator=generator).to(device)
    return x, x.squeeze(-1).argsort(dim=1)


def train_and_score(cell: dict, settings: dict) -> dict:
    """One model at one N: train on fresh sets, score on 2,000 held-out ones."""
    torch.set_num_threads(1)
    size, device, steps, seed = (
        cell["size"],
        settings["device"],
        settings["steps"],
        settings["seed"],
    )
    torch.manual_seed(seed)
    model = SetPointerNetwork(hidden=settings["hidden"], **models()[cell["model"]]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=1e-5)
    data = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for _ in range(steps):
        x, order = sets(128, size, data, device)
        loss = model.loss(x, order)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - started
    model.eval()
    x, order = sets(2000, size, torch.Generator().manual_seed(10_000 + size), device)
    with torch.no_grad():
        exact = (model.decode(x) == order).all(dim=1).float().mean().item()
    print(
        f"{cell['model']:20} N={size:<3} exact {100 * exact:5.1f}%  ({seconds:.0f} s)", flush=True
    )
    return {"exact_sort_accuracy": exact, "final_loss": loss.item(), "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="5,10,15")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    add_run_arguments(parser, ROOT / "recipes/sort/results.json", out_flags=("--output", "--out"))
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = {
        "steps": args.steps,
        "hidden": args.hidden,
        "seed": args.seed,
        "device": args.device,
    }

    def write(rows: list[dict], complete: bool = False) -> None:
        results: dict[str, dict] = {name: {} for name in models()}
        for row in rows:
            results[row["model"]][f"N={row['size']}"] = {
                k: v for k, v in row.items() if k not in ("model", "size")
            }
        write_results(
            args.out,
            seeds=[args.seed],
            device=args.device,
            jobs=args.jobs,
            started=started,
            complete=complete,
            task="sort N floats drawn uniformly from [0, 1); exact-sort accuracy on 2,000 "
            "held-out sets, greedy pointing",
            training=f"{args.steps} steps of 128 fresh sets, Adam lr 1e-3 with cosine decay, "
            f"hidden {args.hidden}, seed {args.seed}",
            results=results,
        )

    cells = grid(model=list(models()), size=sizes)
    log = cell_log_path(args.out, "runs/sort", args.fresh)
    write(run_grid(train_and_score, cells, settings, log, args.jobs, write), complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
