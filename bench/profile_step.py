"""Where a decoder pass's time goes at batch 1: torch.profiler over seqweave greedy and IAD.

Imports a Hugging Face checkpoint, decodes ``--limit`` sources one at a time with greedy and
with IAD (after one warm-up run each) under ``torch.profiler``, and prints, per decoder, the
operators with the most self CPU time as a Markdown table, with calls and microseconds per
decoder pass. Everything a pass runs is counted: the encoder (once per sentence), the
decoder layers, the output layer and the decoding loop's own bookkeeping.

    python bench/profile_step.py --hf-model ../shared/models/gec-bart-anchor \
        --data ../shared/data/gec-synth/train.jsonl --limit 50 [--quantize int8] [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import seqweave
from seqweave.data.readers import read_examples
from seqweave.decoding import decode_many
from seqweave.models.hf_import import import_hf
from seqweave.models.quantize import quantize_model


def profile_decoder(model, sources, decoder: str, top: int, compile_step: bool = False) -> str:
    """A Markdown table of the top ``top`` operators by self CPU time for one decoder."""
    cfg = model.decode_settings(
        decoder=decoder, batch_size=1, max_new_tokens=128, compile=compile_step
    )
    decode_many(model.network, sources, cfg)  # warm-up (and compilation, with --compile)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        outputs = decode_many(model.network, sources, cfg)
    passes = sum(o.stats.passes for o in outputs)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    calls = sum(e.count for e in events)
    lines = [
        f"**{decoder}**: {len(sources)} sentences, {passes} decoder passes, "
        f"{total / passes:.0f} us and {calls / passes:.0f} operator calls per pass (profiled)",
        "",
        "| operator | self CPU % | us / pass | calls / pass |",
        "|---|---|---|---|",
    ]
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    for event in ranked:
        lines.append(
            f"| `{event.key}` | {100 * event.self_cpu_time_total / total:.1f} | "
            f"{event.self_cpu_time_total / passes:.0f} | {event.count / passes:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hf-model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--quantize", choices=("int8",))
    parser.add_argument("--decoders", default="greedy,iad")
    parser.add_argument("--compile", action="store_true", help="decode.compile = true")
    args = parser.parse_args()
    texts = [e.source for e in read_examples(args.data, require_target=False)][: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        model = seqweave.load(import_hf(args.hf_model, Path(tmp) / "model"))
    quantize_model(model, args.quantize)
    sources = model.encode_sources(texts)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    for decoder in args.decoders.split(","):
        print(profile_decoder(model, sources, decoder, args.top, args.compile) + "\n")


if __name__ == "__main__":
    main()
