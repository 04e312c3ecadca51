"""One batch of 32 JFLEG dev sources decoded to the end three ways, interleaved: through the
growing cache (rows park, half parked -> one compaction), through the server's slot pool
as it was before hole compaction (a finished row stays a hole until the rows after it
leave), and through the slot pool as it is (the last live row moves into each hole).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/slot_cost.py MODEL_DIR \\
        --rounds 3 --out bench/results/slot_cost.json

MODEL_DIR: ``seqweave import-hf ../shared/models/gec-bart-general DIR``. Prints, per decoder
(greedy, IAD), the wall seconds of each run, their medians, and the rows the decoder's
passes ran over (``row_passes``: the sum over passes of the batch each pass attended over,
which does not depend on the machine's load); the outputs of the three ways must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

import seqweave
from seqweave.config import DecodeConfig
from seqweave.decoding import DecodeSession
from seqweave.decoding.slots import slot_pool

DATA = "../shared/data/jfleg/dev.jsonl"
KINDS = ("growing", "holes", "compacting")


class HoleSession(DecodeSession):
    """The slot session before hole compaction: holes stay until the rows after them leave
    (or a new row takes them), and every pass attends over them."""

    def _fill_holes(self) -> None:
        return


def decode(network, settings, sources, kind: str, pool) -> tuple[float, int, list[list[int]]]:
    """Wall seconds, row passes and outputs of one run."""
    widths: list[int] = []
    step = network.step

    def recorded(state, tokens, *args, **kwargs):
        widths.append(int(tokens.shape[0]))
        return step(state, tokens, *args, **kwargs)

    network.step = recorded
    made = {"growing": DecodeSession, "holes": HoleSession, "compacting": DecodeSession}[kind]
    slots = None if kind == "growing" else pool
    outputs: dict[int, list[int]] = {}
    try:
        with torch.inference_mode():
            session = made(network, settings, park=slots is None, slots=slots)
            start = time.perf_counter()
            ids = session.admit(sources)
            while session:
                for event in session.run_pass():
                    outputs.setdefault(event.row, []).extend(event.tokens)
            seconds = time.perf_counter() - start
    finally:
        del network.step
    return seconds, sum(widths), [outputs.get(row, []) for row in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = seqweave.load(args.model)
    network = model.network
    with open(DATA) as data:
        sources = model.encode_sources([json.loads(line)["source"] for line in data][:32])
    pool = slot_pool(network, 32, 256, 255)
    runs = []
    load = [os.getloadavg()[0]]
    for decoder in ("greedy", "iad"):
        settings = DecodeConfig(decoder=decoder, max_new_tokens=128)
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        row_passes: dict[str, int] = {}
        outputs: dict[str, list[list[int]]] = {}
        for _ in range(args.rounds):
            for kind in KINDS:
                seconds, rows, outputs[kind] = decode(network, settings, sources, kind, pool)
                times[kind].append(seconds)
                row_passes[kind] = rows
                load.append(os.getloadavg()[0])
        same = all(outputs[kind] == outputs["growing"] for kind in KINDS)
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        run = dict(
            decoder=decoder,
            seconds=times,
            medians=medians,
            row_passes=row_passes,
            same_outputs=same,
        )
        print(json.dumps(run))
        runs.append(run)
    result = dict(
        model=os.path.basename(os.path.normpath(args.model)) + " (import-hf)",
        batch=len(sources),
        threads=args.threads,
        load_average_1min=dict(min=min(load), max=max(load), median=statistics.median(load)),
        runs=runs,
    )
    print(json.dumps(result["load_average_1min"]))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
