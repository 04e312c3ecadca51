"""Greedy requests beside a beam request in the serving engine, in-process, no HTTP.

    PYTHONPATH=src .venv/bin/python bench/beam_stall.py MODEL_DIR [--pairs 5] [--threads 2]

For each of the first ``--pairs`` JFLEG dev sources, one beam request (beam_size 4, up to
128 tokens) and one greedy request for the next source are submitted together to a fresh
``Engine`` (``seqweave.serve.engine``); the script waits for both and reports, per pair,
the wall seconds from submission to each request's end, which ended first and the decoder
passes each took. The engine's API (Engine, Job, Options) is the same before and after
beam search moved into the session, so ``PYTHONPATH`` may point at an older ``src``
(``git archive REV src``) to run the same measurement on it. MODEL_DIR is a seqweave model
directory (``seqweave import-hf ../shared/models/gec-bart-general DIR``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import torch

import seqweave
from seqweave.serve.engine import Engine, Job, Options

DATA = "../shared/data/jfleg/dev.jsonl"


def run_pair(engine: Engine, model, beam_text: str, greedy_text: str) -> dict:
    ended: dict[str, float] = {}
    order: list[str] = []
    done = threading.Semaphore(0)

    def sink(name: str):
        def collect(tokens: list[int], finish: str | None) -> None:
            if finish is not None:
                ended[name] = time.monotonic()
                order.append(name)
                done.release()

        return collect

    beam_src, greedy_src = model.encode_sources([beam_text, greedy_text])
    beam = Job(beam_src, Options(decoder="beam", beam_size=4, max_new_tokens=128), sink("beam"))
    greedy = Job(greedy_src, Options(decoder="greedy", max_new_tokens=128), sink("greedy"))
    start = time.monotonic()
    engine.submit([beam, greedy])
    for _ in range(2):
        assert done.acquire(timeout=600)
    return {
        "greedy_seconds": ended["greedy"] - start,
        "beam_seconds": ended["beam"] - start,
        "first": order[0],
        "greedy_passes": greedy.stats.passes,
        "beam_passes": beam.stats.passes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = seqweave.load(args.model)
    with open(DATA) as data:
        texts = [json.loads(line)["source"] for line in data][: 2 * args.pairs]
    engine = Engine(model, max_batch=32)
    engine.start()
    rows = []
    try:
        run_pair(engine, model, texts[0], texts[1])  # warm up
        for i in range(args.pairs):
            rows.append(run_pair(engine, model, texts[2 * i], texts[2 * i + 1]))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        engine.close(drain=False)
    summary = {
        "median_greedy_seconds": statistics.median(r["greedy_seconds"] for r in rows),
        "median_beam_seconds": statistics.median(r["beam_seconds"] for r in rows),
        "greedy_first": sum(r["first"] == "greedy" for r in rows),
        "pairs": len(rows),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
