"""Resident memory and throughput of streamed vs in-memory training data, as the corpus grows.

    .venv/bin/python bench/stream_memory.py [--sizes-mb 25,100,400] [--shards 4]
        [--window 20000] [--output bench/results/stream_memory.json]

Per corpus size: a generated corpus of sentence pairs (seeded, JSON Lines, ``--shards``
shards under runs/bench-stream/, written once) is read for one epoch into token-budget
batches in a fresh process, two ways:

- memory: every shard read with ``seqweave.data.readers.read_jsonl`` (what training does
  today), lengths computed, ``token_batches`` over the whole corpus;
- stream: ``seqweave.data.stream.JsonlStream`` over the same shards, one window of
  ``--window`` lines at a time.

Lengths are whitespace word counts (a stand-in for the tokenizer, so that the figure is
the data path's, not the tokenizer's). Reported: peak resident memory of the process
(ru_maxrss) and examples and words per second through the data path. This measures the
reader and the batcher only: the trainer does not stream yet.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from seqweave.data.batching import token_batches
from seqweave.data.readers import read_jsonl
from seqweave.data.stream import JsonlStream, rank_shards

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"w{i}" for i in range(5000)]


def generate(directory: Path, megabytes: int, shards: int) -> list[Path]:
    """``shards`` JSON Lines files of about ``megabytes`` in all (reused when present)."""
    paths = [directory / f"part-{i:03d}.jsonl" for i in range(shards)]
    if all(p.exists() for p in paths):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(megabytes)
    budget = megabytes * 1_000_000 // shards
    for path in paths:
        written = 0
        with path.open("w") as handle:
            while written < budget:
                source = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
                target = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
                line = json.dumps({"source": source, "target": target}) + "\n"
                handle.write(line)
                written += len(line)
    return paths


def pair_length(source: str, target: str) -> int:
    return max(len(source.split()), len(target.split()))


def epoch_in_memory(paths: list[Path], max_tokens: int) -> tuple[int, int]:
    examples = [e for path in paths for e in read_jsonl(path)]
    lengths = [pair_length(e.source, e.target) for e in examples]
    batches = token_batches(lengths, max_tokens, seed=1)
    return sum(len(b) for b in batches), sum(lengths)


def epoch_streamed(paths: list[Path], max_tokens: int, window: int) -> tuple[int, int]:
    def prepare(record):
        length = pair_length(record["source"], record["target"])
        return length, length

    stream = JsonlStream(rank_shards(paths, 0, 1), prepare, window, max_tokens, seed=1)
    examples = words = 0
    for items, position in stream.batches():
        if position.epoch > 0:
            break
        examples += len(items)
        words += sum(items)
    return examples, words


def measure(mode: str, directory: str, max_tokens: int, window: int) -> None:
    """One epoch in this process; prints the figures as JSON."""
    paths = sorted(Path(directory).glob("part-*.jsonl"))
    started = time.perf_counter()
    if mode == "memory":
        examples, words = epoch_in_memory(paths, max_tokens)
    else:
        examples, words = epoch_streamed(paths, max_tokens, window)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"examples": examples, "words": words, "seconds": seconds, "peak_rss_mb": peak_mb}
    figures["words_per_second"] = words / seconds
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mb", default="25,100,400")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--window", type=int, default=20000)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--output", default=str(ROOT / "bench/results/stream_memory.json"))
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # MODE DIR (child)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], args.measure[1], args.max_tokens, args.window)
        return
    rows = []
    for megabytes in (int(s) for s in args.sizes_mb.split(",")):
        directory = ROOT / "runs" / "bench-stream" / f"{megabytes}mb"
        paths = generate(directory, megabytes, args.shards)
        size = sum(p.stat().st_size for p in paths) / 1e6
        for mode in ("stream", "memory"):
            child = [sys.executable, __file__, "--measure", mode, str(directory)]
            child += ["--window", str(args.window), "--max-tokens", str(args.max_tokens)]
            result = subprocess.run(child, check=True, capture_output=True, text=True)
            row = {"corpus_mb": round(size, 1), "mode": mode, **json.loads(result.stdout)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": " ".join(["python", *sys.argv]), "rows": rows}
    output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
