"""What one decoder pass costs with K new tokens per row, at batch 1 and 32.

    .venv/bin/python bench/step_cost.py [--hf-model ../shared/models/gec-bart-anchor] \
        [--variants fp32,fp32-screened,int8,int8-compiled,int8-compiled-guarded,...]

Explains when drafting pays: a verification pass of K tokens costs little more
than a 1-token pass while per-operation overhead dominates (batch 1), and
nearly K times more once the block is compute-bound (large batches on a CPU).
Each variant is its own copy of the model: ``fp32`` (eager), ``int8`` (``--quantize int8``)
and either with ``-compiled`` (``decode.compile``, models/compiled.py: dynamo's guards
skipped on calls of a kind a graph has served) or ``-compiled-guarded`` (every call through
the guards, ``CompiledDecoder.unguarded = False``) or ``-compiled-cppwrap`` (inductor's C++
wrapper, ``compile_decoder(cpp_wrapper=True)``); ``-screened`` (last) times
``step_argmax``, the argmax through the output layer's screen (``decode.screen``,
models/argmax_screen.py), instead of ``step``'s logits. Each round also times ``encode`` of
the batch's sources (compiled with the decoder). Each pass follows ``PREFIX`` cached tokens
(a batch's very first pass, one cache slot in use, runs eagerly). Timing is
interleaved (every variant, every K, in each round), median of rounds; the seconds the
first passes of each variant took (the compilation, for a compiled one) are reported as
its warm-up. Writes bench/results/step_cost.json (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import seqweave
from seqweave.decoding.common import pad_batch
from seqweave.models.compiled import compile_decoder
from seqweave.models.hf_import import import_hf
from seqweave.models.quantize import quantize

ROOT = Path(__file__).resolve().parents[1]
DRAFTS = (1, 2, 4, 8, 16)
PREFIX = 8  # cached tokens before each timed pass (a batch's very first pass runs eagerly)
BATCHES = (1, 32)


def build(model_dir: Path, variant: str):
    """The network of one variant: fp32 | int8, optionally -compiled, then -screened."""
    network = seqweave.load(model_dir).network.eval()
    variant = variant.removesuffix("-screened")
    if variant.startswith("int8"):
        quantize(network)
    if "-compiled" in variant:
        compile_decoder(network, cpp_wrapper=variant.endswith("-cppwrap"))
        network.compiled_decoder.unguarded = not variant.endswith("-guarded")
    return network


def time_passes(network, state, batch: int, k: int, repeats: int = 5, argmax=False) -> float:
    """Milliseconds per pass of k tokens per row, after ``PREFIX`` cached tokens each time;
    with ``argmax``, passes that return the argmax only (``step_argmax``)."""
    tokens = torch.full((batch, k), 5)
    prefix = torch.full((batch,), PREFIX, dtype=torch.long)
    step = network.step_argmax if argmax else network.step
    began = time.perf_counter()
    for _ in range(repeats):
        state.lengths = prefix
        step(state, tokens)
    return (time.perf_counter() - began) / repeats * 1e3


def time_encode(network, src, lengths, repeats: int = 5) -> float:
    """Milliseconds per ``encode`` of the padded sources src (B, S)."""
    began = time.perf_counter()
    for _ in range(repeats):
        network.encode(src, lengths)
    return (time.perf_counter() - began) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-model", default="../shared/models/gec-bart-anchor")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--variants", default="fp32")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "step_cost.json"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = import_hf(ROOT / args.hf_model, Path(tmp) / "m")
        networks = {v: build(model_dir, v) for v in variants}
        model = seqweave.load(model_dir)
    with (ROOT / "../shared/data/gec-synth/train.jsonl").open() as handle:
        texts = [json.loads(next(handle))["source"] for _ in range(max(BATCHES))]
    states, warm_up, sources = {}, dict.fromkeys(variants, 0.0), {}
    with torch.inference_mode():
        for batch in BATCHES:
            src, lengths = sources[batch] = pad_batch(
                model.encode_sources(texts[:batch]), model.config.pad_id
            )
            for variant, network in networks.items():
                warm_up[variant] += time_encode(network, src, lengths, 2) * 2e-3
                memory = network.encode(src, lengths)
                for k in DRAFTS:
                    state = states[variant, batch, k] = network.start(memory, capacity=64)
                    argmax = variant.endswith("-screened")
                    warm_up[variant] += time_passes(network, state, batch, k, 2, argmax) * 2e-3
        times = {key: [] for key in states}
        encode_times = {(v, b): [] for v in variants for b in BATCHES}
        for _ in range(args.rounds):
            for variant, batch in encode_times:
                ms = time_encode(networks[variant], *sources[batch])
                encode_times[variant, batch].append(ms)
            for (variant, batch, k), state in states.items():
                argmax = variant.endswith("-screened")
                ms = time_passes(networks[variant], state, batch, k, argmax=argmax)
                times[variant, batch, k].append(ms)
    table = {v: {b: {} for b in BATCHES} for v in variants}
    for (variant, batch, k), values in times.items():
        table[variant][batch][k] = statistics.median(values)
    encode = {v: {b: statistics.median(encode_times[v, b]) for b in BATCHES} for v in variants}
    for variant in variants:
        print(f"{variant} (warm-up {warm_up[variant]:.1f} s)")
        for batch in BATCHES:
            row = "  ".join(f"K={k}: {ms:.2f} ms" for k, ms in table[variant][batch].items())
            print(f"  batch {batch:2d}: encode {encode[variant][batch]:.2f} ms  {row}")
    result = {
        "model": args.hf_model,
        "threads": torch.get_num_threads(),
        "warm_up_s": warm_up,
        "ms_per_pass": table if len(variants) > 1 else table[variants[0]],
        "ms_per_encode": encode if len(variants) > 1 else encode[variants[0]],
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
