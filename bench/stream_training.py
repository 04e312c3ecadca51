"""Training from a streamed corpus against training from one read into memory.

    .venv/bin/python bench/stream_training.py [--sizes-mb 100,1000,10000] [--memory-up-to 400]
        [--steps 150] [--rounds 3] [--output bench/results/stream_training.json]

Per corpus size, a generated corpus of word pairs (``bench/stream_memory.py``'s generator,
4 shards under runs/bench-stream/, written once and kept) is trained on by ``seqweave
train`` in a fresh process, for ``--steps`` updates of a small Transformer:

- memory: ``data.train`` is the directory's shards concatenated into one file, read and
  tokenized before the first update (only up to ``--memory-up-to`` MB: past that it
  does not fit the machine's budget or time);
- stream: ``data.stream = true`` over the shards, windows of 20,000 lines.

Both use the same word tokenizer (learnt once from the first shard's first lines and
passed as ``tokenizer.path``), the same token budget and seed. Reported per run: peak
resident memory of the training process (ru_maxrss of the child), the seconds before the
first update (reading and tokenizing), and training tokens/s (the median of the logged
windows, so set-up is left out). Rounds alternate the two modes; medians over rounds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stream_memory import generate

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[model]
d_model = 64
num_heads = 4
encoder_layers = 2
decoder_layers = 2
ffn_dim = 128
dropout = 0.1
max_positions = 64
[tokenizer]
kind = "words"
path = "{tokenizer}"
[data]
train = "{train}"
max_source_len = 64
max_target_len = 64
max_tokens = 2048
stream = {stream}
[train]
out_dir = "{out_dir}"
max_steps = {steps}
warmup_steps = 50
validate_every = 100000
log_every = 10
metric = "none"
progress = false
"""


def make_tokenizer(shard: Path, directory: Path) -> Path:
    """A word tokenizer learnt from the first 20,000 lines of one shard, saved."""
    from seqweave.data.readers import parse_jsonl_lines
    from seqweave.tokenizers import build_tokenizer

    with shard.open() as handle:
        lines = list(itertools.islice(handle, 20_000))
    examples = parse_jsonl_lines(lines, str(shard), 1)
    texts = [t for e in examples for t in (e.source, e.target)]
    tokenizer = build_tokenizer("words", texts, 0, (), None, 1)
    path = directory / "tokenizer"
    tokenizer.save(path)
    return path


def joined(paths: list[Path], directory: Path) -> Path:
    """The shards as one file (what a user without streaming trains on)."""
    single = directory / "corpus.jsonl"
    if not single.exists():
        with single.open("wb") as out:
            for path in paths:
                with path.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 24)
    return single


def run(mode: str, train: Path, tokenizer: Path, steps: int, work: Path) -> dict:
    """One ``seqweave train`` in a child process; its figures."""
    out_dir = work / f"run-{mode}"
    shutil.rmtree(out_dir, ignore_errors=True)
    config = work / f"{mode}.toml"
    values = dict(tokenizer=tokenizer, train=train, out_dir=out_dir, steps=steps)
    config.write_text(CONFIG.format(stream=str(mode == "stream").lower(), **values))
    started = time.perf_counter()
    command = [sys.executable, __file__, "--child", str(config)]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_mb = float(child.stdout.strip().splitlines()[-1])
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r.get("kind") == "train"]
    rates = [r["tokens_per_second"] for r in train_records[1:]]  # the first window has set-up
    first_update = train_records[0]["elapsed_seconds"] if train_records else None
    return {
        "mode": mode,
        "seconds": seconds,
        "tokens_per_second": statistics.median(rates),
        "first_log_seconds": first_update,
        "peak_rss_mb": peak_mb,
    }


def child(config: str) -> None:
    """``seqweave train CONFIG`` in this process, then its peak resident memory in MB."""
    from seqweave.cli import main as seqweave

    if seqweave(["train", config]):
        raise SystemExit("seqweave train failed")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mb", default="100,1000,10000")
    parser.add_argument("--memory-up-to", type=int, default=400)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--output", default=str(ROOT / "bench/results/stream_training.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)  # CONFIG: one run, in this process
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    rows = []
    for megabytes in (int(s) for s in args.sizes_mb.split(",")):
        directory = ROOT / "runs" / "bench-stream" / f"{megabytes}mb"
        started = time.perf_counter()
        paths = generate(directory, megabytes, args.shards)
        generated = time.perf_counter() - started
        size = sum(p.stat().st_size for p in paths) / 1e6
        modes = ["stream"] + (["memory"] if megabytes <= args.memory_up_to else [])
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            tokenizer = make_tokenizer(paths[0], work)
            trains = {"stream": directory}
            if "memory" in modes:
                trains["memory"] = joined(paths, work)
            results: dict[str, list[dict]] = {mode: [] for mode in modes}
            for round_number in range(args.rounds):
                order = modes if round_number % 2 == 0 else modes[::-1]
                for mode in order:
                    result = run(mode, trains[mode], tokenizer, args.steps, work)
                    print(json.dumps({"corpus_mb": round(size), **result}), flush=True)
                    results[mode].append(result)
        for mode, runs in results.items():
            row = {"corpus_mb": round(size, 1), "mode": mode, "rounds": len(runs)}
            row["generate_seconds"] = round(generated, 1)
            for key in ("tokens_per_second", "first_log_seconds", "seconds"):
                row[key] = statistics.median(r[key] for r in runs)
            row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
            rows.append(row)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": " ".join(["python", *sys.argv]), "rows": rows}
    output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
