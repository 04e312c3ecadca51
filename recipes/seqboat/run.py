"""SeqBoat against full attention and EMA only on long-range associative recall.

    .venv/bin/python recipes/seqboat/run.py [--length 512] [--steps 800]
        [--systems full,seqboat,ema] [--eval-lengths 512,1024,2048]
        [--time-lengths 512,1024,2048,4096] [--jobs 1] [--retrain] [--fresh]

1. recall.py writes the task (seeded): train and valid at 8..``--length`` words (uniform),
   a test set of 300 examples at exactly each of ``--eval-lengths`` words.
2. One small encoder-decoder per system (recall.toml; same decoder, same steps): ``full``,
   a Transformer encoder (full attention); ``seqboat``, SeqBoat encoder layers with the
   learned router; ``ema``, the same layers with the router off (EMA only, no attention).
3. Per system: exact-match accuracy of greedy decoding on each test set (the length it
   was trained at and longer ones); for SeqBoat, the share of marked tokens (keys, values,
   the query) and of filler tokens its router activates, per layer; and seconds per
   training step (forward and backward, one sequence, one thread) at each
   ``--time-lengths``: the cost that should grow near-linearly for SeqBoat and EMA, and
   quadratically for full attention.

The systems run one after another (``seqweave.harness``); a cut-off run resumes with the
systems it has not finished. Writes recipes/seqboat/results.json (when every system ran)
and prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from recall import is_marked, write_split

import seqweave
from seqweave.api import source_ids
from seqweave.config import load_config
from seqweave.harness import (
    cell_log_path,
    grid,
    run_grid,
    scored_checkpoint,
    train_or_load,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "recipes/seqboat/recall.toml"
RUNS = Path("runs/seqboat")
SYSTEMS = {
    "full": ["model.architecture=transformer"],
    "seqboat": [],
    "ema": ["model.seqboat.router=none"],
}
TEST_SIZE = 300
SHORTEST = 8  # training and validation lengths are uniform in SHORTEST..--length


def prepare(length: int, eval_lengths: list[int]) -> None:
    data = RUNS / "data"
    write_split(data / f"train{length}.jsonl", 8000, length, seed=1, shortest=SHORTEST)
    write_split(data / f"valid{length}.jsonl", 200, length, seed=2, shortest=SHORTEST)
    for n in sorted({*eval_lengths, length}):
        write_split(data / f"test{n}.jsonl", TEST_SIZE, n, seed=3)


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()]


def accuracy(model, examples: list[dict], batch: int = 16) -> float:
    """Exact match of greedy decoding against the target."""
    correct = 0
    for i in range(0, len(examples), batch):
        part = examples[i : i + batch]
        outputs = model.generate([e["source"] for e in part])
        correct += sum(o.strip() == e["target"] for o, e in zip(outputs, part, strict=True))
    return correct / len(examples)


def padded_sources(model, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = source_ids(model.tokenizer, model.config, texts)
    lengths = torch.tensor([len(row) for row in ids])
    src = torch.full((len(ids), int(lengths.max())), model.config.pad_id, dtype=torch.long)
    for row, tokens in enumerate(ids):
        src[row, : len(tokens)] = torch.tensor(tokens)
    return src, lengths


def activation_rates(model, examples: list[dict], batch: int = 16) -> list[dict]:
    """Per SeqBoat encoder layer: the share of marked and of filler tokens activated."""
    network = model.network
    counts = [dict(marked=[0, 0], filler=[0, 0]) for _ in network.encoder_layers]
    for i in range(0, len(examples), batch):
        texts = [e["source"] for e in examples[i : i + batch]]
        src, lengths = padded_sources(model, texts)
        with torch.no_grad():
            network.encode(src, lengths)
        for layer, active in zip(counts, network.activation_masks(), strict=True):
            for row, text in enumerate(texts):
                for position, word in enumerate(text.split()):
                    kind = "marked" if is_marked(word) else "filler"
                    layer[kind][0] += int(active[row, position])
                    layer[kind][1] += 1
    return [{kind: hits / total for kind, (hits, total) in layer.items()} for layer in counts]


def time_steps(model, lengths: list[int]) -> dict[str, float]:
    """Seconds per training step (one sequence, forward + backward) at each length."""
    network = model.network.train()
    cfg = model.config
    figures = {}
    for n in lengths:
        text = read(RUNS / "data" / f"test{n}.jsonl")[0]
        src, src_lengths = padded_sources(model, [text["source"]])
        target = torch.tensor([[*model.tokenizer.encode(text["target"]), cfg.eos_id]])
        tgt_in = torch.cat([torch.tensor([[cfg.decoder_start_id]]), target[:, :-1]], dim=1)
        times = []
        for _ in range(4):  # the first is a warm-up
            started = time.perf_counter()
            logits = network(src, src_lengths, tgt_in)
            F.cross_entropy(logits.flatten(0, 1), target.flatten()).backward()
            times.append(time.perf_counter() - started)
        network.zero_grad(set_to_none=True)
        figures[str(n)] = statistics.median(times[1:])
    network.eval()
    return figures


def run_system(cell: dict, settings: dict) -> dict:
    """Train (unless finished) and measure one system."""
    name, length = cell["system"], settings["length"]
    torch.set_num_threads(1)  # also in a worker process
    data = RUNS / "data"
    overrides = [
        *SYSTEMS[name],
        f"data.train={data / f'train{length}.jsonl'}",
        f"data.valid={data / f'valid{length}.jsonl'}",
        f"train.out_dir={RUNS / f'{name}-{length}'}",
        f"train.max_steps={settings['steps']}",
        f"train.validate_every={settings['steps']}",
    ]
    config = load_config(CONFIG, overrides)
    best = train_or_load(config, retrain=settings["retrain"])
    model = seqweave.load(best)
    checkpoint = scored_checkpoint(config.train.out_dir, best)
    row = {
        "training_minutes": round(checkpoint.get("minutes_at_last_log", 0.0), 2),
        "steps": checkpoint["step"],
        "checkpoint": checkpoint,
        "parameters": sum(p.numel() for p in model.network.parameters()),
        "accuracy": {},
    }
    for n in settings["eval_lengths"]:
        row["accuracy"][str(n)] = accuracy(model, read(data / f"test{n}.jsonl"))
    if name == "seqboat":
        row["activation"] = activation_rates(model, read(data / f"test{length}.jsonl"))
    row["seconds_per_step"] = time_steps(model, settings["time_lengths"])
    print(name, json.dumps(row), flush=True)
    return row


def lengths(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--eval-lengths", default="512,1024,2048")
    parser.add_argument("--time-lengths", default="512,1024,2048,4096")
    parser.add_argument("--jobs", type=int, default=1, help="systems at a time (processes)")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="measure every system again")
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    torch.set_num_threads(1)
    eval_lengths, time_lengths = lengths(args.eval_lengths), lengths(args.time_lengths)
    prepare(args.length, eval_lengths + time_lengths)
    settings = {
        "length": args.length,
        "steps": args.steps,
        "eval_lengths": eval_lengths,
        "time_lengths": time_lengths,
        "retrain": args.retrain,
    }
    path = ROOT / "recipes" / "seqboat" / "results.json"
    complete = args.systems == ",".join(SYSTEMS)

    def write(rows: list[dict]) -> None:
        if complete:
            write_results(
                path,
                seeds=[load_config(CONFIG).train.seed],
                device="cpu",
                jobs=args.jobs,
                started=started,
                complete=len(rows) == len(SYSTEMS),
                task=f"associative recall (recipes/seqboat/recall.py): 4 key-value pairs in "
                f"the first half of {args.length} words, the query at the end",
                config=CONFIG,
                settings=settings,
                results={row.pop("system"): row for row in map(dict, rows)},
            )

    log = cell_log_path(path, RUNS, args.fresh or args.retrain)
    rows = run_grid(
        run_system,
        grid(system=args.systems.split(",")),
        settings,
        log,
        jobs=args.jobs,
        on_result=write,
    )
    for row in rows:
        print(row["system"], row["accuracy"], row["seconds_per_step"], row.get("activation"))


if __name__ == "__main__":
    main()
