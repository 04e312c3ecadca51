"""Peak memory of greedy vs IAD decoding, one fresh process per (decoder, batch size).

    .venv/bin/python bench/decode_memory.py [--hf-model ../shared/models/gec-bart-anchor]

Each child loads the converted model, decodes the same inputs and reports its
peak resident set size (ru_maxrss) and the rise of the peak over what loading
and a one-sentence warm-up already took. Writes bench/results/decode_memory.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(model_dir: str, data: str, decoder: str, batch_size: int, limit: int) -> None:
    import seqweave
    from seqweave.data.readers import read_examples

    model = seqweave.load(model_dir)
    texts = [e.source for e in read_examples(data)][:limit]
    model.generate(texts[:1], decoder=decoder)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model.generate(texts, decoder=decoder, batch_size=batch_size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "decoder": decoder,
                "batch_size": batch_size,
                "peak_mib": peak,
                "rise_mib": peak - base,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-model", default="../shared/models/gec-bart-anchor")
    parser.add_argument("--data", default="../shared/data/gec-synth/train.jsonl")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_dir, decoder, batch_size, limit = args.child
        child(model_dir, args.data, decoder, int(batch_size), int(limit))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(Path(tmp) / "model")
        subprocess.run(
            [sys.executable, "-m", "seqweave", "import-hf", args.hf_model, model_dir],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        rows = []
        for batch_size in (1, 8, 32):
            for decoder in ("greedy", "iad"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--data",
                        args.data,
                        "--child",
                        model_dir,
                        decoder,
                        str(batch_size),
                        str(args.limit),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                ).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    for batch_size in (1, 8, 32):
        greedy, iad = (r for r in rows if r["batch_size"] == batch_size)
        print(
            f"batch {batch_size}: peak RSS greedy {greedy['peak_mib']:.0f} MiB, "
            f"IAD {iad['peak_mib']:.0f} MiB ({iad['peak_mib'] / greedy['peak_mib']:.3f}x)"
        )
    out = ROOT / "bench" / "results" / "decode_memory.json"
    out.write_text(
        json.dumps({"model": args.hf_model, "data": args.data, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
