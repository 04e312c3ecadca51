"""One batch of 32 JFLEG dev sources decoded to the end through the growing cache (rows
park, half parked -> one compaction) and through the server's slot pool, interleaved.

    PYTHONPATH=src .venv/bin/python bench/slot_cost.py MODEL_DIR [--rounds 3]

MODEL_DIR: ``seqweave import-hf ../shared/models/gec-bart-general DIR``. Prints the wall
seconds of each run and the medians, per decoder (greedy, IAD), 2 torch threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import seqweave
from seqweave.config import DecodeConfig
from seqweave.decoding import DecodeSession
from seqweave.decoding.slots import slot_pool

DATA = "../shared/data/jfleg/dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = seqweave.load(args.model)
    network = model.network
    with open(DATA) as data:
        sources = model.encode_sources([json.loads(line)["source"] for line in data][:32])
    pool = slot_pool(network, 32, 256, 255)
    for decoder in ("greedy", "iad"):
        settings = DecodeConfig(decoder=decoder, max_new_tokens=128)
        times: dict[str, list[float]] = {"growing": [], "slots": []}
        for _ in range(args.rounds):
            for kind in times:
                slots = pool if kind == "slots" else None
                with torch.inference_mode():
                    session = DecodeSession(network, settings, park=slots is None, slots=slots)
                    start = time.perf_counter()
                    session.admit(sources)
                    while session:
                        session.run_pass()
                    times[kind].append(time.perf_counter() - start)
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        print(json.dumps({"decoder": decoder, "seconds": times, "medians": medians}))


if __name__ == "__main__":
    main()
