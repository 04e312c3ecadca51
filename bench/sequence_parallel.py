"""Sequence-parallel attention: peak memory per process and time per step against length.

For 1, 2 and 4 gloo processes and each variant of ``seqweave.models.seqpar``, one
attention call (forward and backward, non-causal, float32) over a sequence of L
tokens split into N shards. Peak memory is what PyTorch's ``MemTracker`` counts as
allocated by tensors during the step (activations and temporaries, not the process's
baseline); time is the wall time of one untracked step, the slowest rank's. A point whose
score memory would pass ``--budget-mb`` per process is skipped (written as such).
PyTorch's own context parallelism (``torch.distributed.tensor.experimental
.context_parallel``) is tried once at the end on the same shapes; whether it runs on this
machine is recorded.

    python bench/sequence_parallel.py --lengths 1024 2048 4096 8192 16384 --processes 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from seqweave.models.seqpar import ATTENTION

HERE = Path(__file__).resolve().parent


def score_bytes(variant: str, L: int, N: int, heads: int) -> int:
    """Bytes of the largest score matrix a rank holds at once (float32, one copy)."""
    if variant == "ring_self":
        return 4 * heads * (L // N) * L  # full rows of this rank's queries
    if variant == "ring":
        return 4 * heads * (L // N) ** 2  # one block
    return 0  # ulysses: the fused kernel never holds the scores


def _step(variant: str, q, k, v, group) -> None:
    out = ATTENTION[variant](q, k, v, None, False, group)
    out.backward(torch.ones_like(out))


def _point(variant: str, L: int, N: int, args) -> dict:
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(rank)
    shape = (1, args.heads, L // N, args.head_dim)
    q, k, v = (torch.randn(shape, generator=g).requires_grad_() for _ in range(3))
    dist.barrier()
    started = time.perf_counter()
    _step(variant, q, k, v, None)
    seconds = torch.tensor(time.perf_counter() - started)
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    with tracker:
        _step(variant, q, k, v, None)
    peak = torch.tensor(float(tracker.get_tracker_snapshot("peak")[q.device]["Total"]))
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    return dict(seconds=float(seconds), peak_mb=float(peak) / 2**20)


def _context_parallel(L: int, N: int, args) -> dict:
    """PyTorch's context parallelism on the same shapes: runs or the reason it does not."""
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor.experimental import context_parallel

        mesh = init_device_mesh("cpu", (N,))
        shape = (1, args.heads, L, args.head_dim)
        full = [torch.randn(shape, generator=torch.Generator().manual_seed(i)) for i in range(3)]
        expected = F.scaled_dot_product_attention(*full)
        buffers = [t.clone() for t in (*full, expected)]  # sharded in place on entry
        started = time.perf_counter()
        with context_parallel(mesh, buffers=buffers, buffer_seq_dims=[2, 2, 2, 2]):
            q, k, v = (t.detach().requires_grad_() for t in buffers[:3])
            out = F.scaled_dot_product_attention(q, k, v)
            out.backward(torch.ones_like(out))
            error = float((out - buffers[3]).abs().max())
        seconds = time.perf_counter() - started
        return dict(status="ran", seconds=seconds, max_error_vs_full_attention=error)
    except Exception as error:  # recorded, not hidden: this is what the bench reports
        return dict(status="failed", error=f"{type(error).__name__}: {str(error)[:300]}")


def _worker(rank: int, N: int, port: int, args, out: str) -> None:
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=N)
    rows = []
    for variant in args.variants:
        if variant == "ulysses" and args.heads % N:
            continue
        _point(variant, 512 * N, N, args)  # warm-up
        for L in args.lengths:
            row = dict(variant=variant, processes=N, length=L)
            row["score_mb"] = score_bytes(variant, L, N, args.heads) / 2**20
            if row["score_mb"] > args.budget_mb:
                rows.append({**row, "skipped": f"scores past {args.budget_mb} MB"})
                continue
            rows.append({**row, **_point(variant, L, N, args)})
            if rank == 0:
                print(json.dumps(rows[-1]), flush=True)
    if N > 1 and args.context_parallel:
        rows.append(dict(variant="torch_context_parallel", processes=N, length=args.lengths[0]))
        rows[-1].update(_context_parallel(args.lengths[0], N, args))
        if rank == 0:
            print(json.dumps(rows[-1]), flush=True)
    if rank == 0:
        Path(out).write_text(json.dumps(rows))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"ring_self": "-o", "ring": "-s", "ulysses": "-^"}
    colors = {1: "tab:blue", 2: "tab:orange", 4: "tab:green"}
    for variant, style in styles.items():
        for N, color in colors.items():
            points = [r for r in rows if r["variant"] == variant and r["processes"] == N]
            points = [r for r in points if "peak_mb" in r]
            if not points:
                continue
            lengths = [r["length"] for r in points]
            label = f"{variant}, {N} proc"
            axes[0].plot(lengths, [r["peak_mb"] for r in points], style, color=color, label=label)
            axes[1].plot(lengths, [r["seconds"] for r in points], style, color=color, label=label)
    for ax, title in zip(axes, ("peak memory per process (MB)", "time per step (s)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("one attention call, forward + backward, float32, gloo on CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--variants", nargs="+", default=list(ATTENTION))
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--budget-mb", type=float, default=1024.0)
    parser.add_argument("--context-parallel", action="store_true")
    parser.add_argument("--output", default=str(HERE / "results" / "sequence_parallel.json"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    rows = []
    for N in args.processes:
        part = Path(args.output).with_suffix(f".{N}.part")
        mp.spawn(_worker, args=(N, _free_port(), args, str(part)), nprocs=N, join=True)
        rows += json.loads(part.read_text())
        part.unlink()
    Path(args.output).write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, Path(args.output).with_suffix(".png"))


if __name__ == "__main__":
    main()
