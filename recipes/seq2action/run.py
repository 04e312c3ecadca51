"""Sequence-to-action (Li et al. 2022) against the plain seq2seq model of the same size.

    .venv/bin/python recipes/seq2action/run.py [--steps 300] [--minutes 8] [--cweb-every 10]
        [--limit N] [--skip-training | --retrain]

1. Synthetic learner English (``seqweave.data.synthetic_gec``, as ``make demo``)
   in runs/seq2action/data: 60,000 training pairs, 300 validation, 1,000 test.
2. The model of recipes/seq2action/gec.toml trained twice with the same data,
   seed and budget: as is (plain) and with ``model.action_head = true``
   (``seqweave.harness.train_or_load``: a finished run of the same config is reused).
3. For both, decoded with IAD at batch 32 (lossless: greedy's tokens, checked on
   JFLEG below):
   - GLEU and exact match on the held-out synthetic test set;
   - over-correction on already-correct sentences: the share of inputs the model
     changes, fed the synthetic test *targets*, and the CWEB rows whose
     references all equal the source;
   - GLEU on ../shared/data/jfleg/dev.jsonl (4 references) and on every
     ``--cweb-every``-th row of ../shared/data/cweb/dev.jsonl (2 references).
4. On JFLEG at batch 32: greedy and IAD side by side, outputs identical to
   greedy, decoder passes per sentence, sentences/s.

Writes recipes/seq2action/results.json (with each scored checkpoint's step and validation)
and prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

import seqweave
from seqweave.config import load_config
from seqweave.data.readers import read_examples
from seqweave.data.synthetic_gec import write_splits
from seqweave.harness import scored_checkpoint, train_or_load, write_results
from seqweave.metrics import compute_metric
from seqweave.train.validate import references

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path("../shared/data")
CONFIG = "recipes/seq2action/gec.toml"
MAX_NEW_TOKENS = 120  # real sentences are far longer than the synthetic ones


def decode(model, texts: list[str], decoder: str = "iad") -> tuple[list[str], list, float]:
    started = time.perf_counter()
    outputs = model.generate_tokens(
        texts, decoder=decoder, batch_size=32, max_new_tokens=MAX_NEW_TOKENS
    )
    seconds = time.perf_counter() - started
    return model.tokenizer.decode_batch([o.tokens for o in outputs]), outputs, seconds


def changed(inputs: list[str], outputs: list[str]) -> float:
    """Share of inputs the model changed: on correct inputs, the over-correction rate."""
    return sum(i != o for i, o in zip(inputs, outputs, strict=True)) / len(inputs)


def evaluate(model, sets: dict[str, list]) -> dict:
    result = {}
    for name, examples in sets.items():
        sources = [e.source for e in examples]
        hypotheses, _, seconds = decode(model, sources)
        refs = [references(e) for e in examples]
        scores = compute_metric("gleu", hypotheses, refs, sources)
        row = {
            "sentences": len(examples),
            "gleu": scores["gleu"],
            "changed": changed(sources, hypotheses),
        }
        if name == "synthetic test":
            row["exact"] = compute_metric("exact", hypotheses, refs)["exact"]
        row["seconds"] = seconds
        result[name] = row
    return result


def over_correction(model, clean: dict[str, list[str]]) -> dict:
    return {name: changed(texts, decode(model, texts)[0]) for name, texts in clean.items()}


def decoders(model, texts: list[str]) -> dict:
    """Greedy and IAD at batch 32 on the same inputs: IAD must return greedy's tokens."""
    rows, tokens = {}, {}
    for decoder in ("greedy", "iad"):
        _, outputs, seconds = decode(model, texts, decoder)
        tokens[decoder] = [o.tokens for o in outputs]
        rows[decoder] = {
            "passes_per_sentence": sum(o.stats.passes for o in outputs) / len(outputs),
            "sentences_per_second": len(outputs) / seconds,
        }
    same = sum(a == b for a, b in zip(tokens["greedy"], tokens["iad"], strict=True))
    rows["iad"]["identical_to_greedy"] = same / len(texts)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=8.0, help="cap per training run")
    parser.add_argument("--cweb-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--limit", type=int, default=0, help="evaluate the first N rows of each set"
    )
    parser.add_argument("--skip-training", action="store_true", help="use runs/seq2action/*/best")
    parser.add_argument("--retrain", action="store_true", help="even if finished models exist")
    args = parser.parse_args()
    started = time.perf_counter()
    os.chdir(ROOT)
    torch.set_num_threads(args.threads)
    data = Path("runs/seq2action/data")
    paths = write_splits(data, 60_000, 300, 1000, seed=0)

    models, checkpoints = {}, {}
    for name, action_head in (("plain", False), ("seq2action", True)):
        config = load_config(
            CONFIG,
            [
                f"model.action_head={action_head}",
                f"train.out_dir=runs/seq2action/{name}",
                f"train.max_steps={args.steps}",
                f"train.max_minutes={args.minutes}",
                f"train.validate_every={args.steps}",
            ],
        )
        print(f"== {name}", flush=True)
        best = train_or_load(config, retrain=args.retrain, reuse_any=args.skip_training)
        models[name] = seqweave.load(best)
        checkpoints[name] = scored_checkpoint(config.train.out_dir, best)

    test = read_examples(paths["test"])
    jfleg = read_examples(SHARED / "jfleg" / "dev.jsonl")
    cweb = read_examples(SHARED / "cweb" / "dev.jsonl")[:: args.cweb_every]
    if args.limit:
        test, jfleg, cweb = test[: args.limit], jfleg[: args.limit], cweb[: args.limit]
    sets = {
        "synthetic test": test,
        "jfleg dev": jfleg,
        f"cweb dev (every {args.cweb_every}th)": cweb,
    }
    clean = {
        "synthetic test targets": [e.target for e in test],
        "cweb rows left unchanged by both annotators": [
            e.source for e in cweb if all(r == e.source for r in references(e))
        ],
    }
    results = {}
    for name, model in models.items():
        print(f"== evaluating {name}", flush=True)
        evaluating = time.perf_counter()
        results[name] = {
            "parameters": sum(p.numel() for p in model.network.parameters()),
            "training": checkpoints[name],
            "scores": evaluate(model, sets),
            "over_correction": over_correction(model, clean),
            "decoders_on_jfleg": decoders(model, [e.source for e in jfleg]),
        }
        print(f"   {time.perf_counter() - evaluating:.0f} s", flush=True)
    out = ROOT / "recipes" / "seq2action" / "results.json"
    write_results(
        out,
        seeds=[config.train.seed],
        device="cpu",
        jobs=1,
        threads=args.threads,
        started=started,
        data={
            "train": "synthetic_gec, 60,000 pairs, seed 0 (as make demo)",
            "clean sets": {name: len(texts) for name, texts in clean.items()},
            "decoding": f"IAD (lossless), batch 32, max_new_tokens {MAX_NEW_TOKENS}",
            "rows per set": args.limit or "all",
            "gleu": "seqweave.metrics.gleu (source-aware, multi-reference)",
        },
        results=results,
    )
    for name, r in results.items():
        t = r["training"]
        exact = (t["validation"] or {}).get("valid_exact", float("nan"))
        print(f"{name}: {r['parameters']:,} parameters, step {t['step']}, valid exact {exact:.3f}")
        for set_name, s in r["scores"].items():
            extra = f"  exact {s['exact']:.3f}" if "exact" in s else ""
            print(f"  {set_name:28s} GLEU {s['gleu']:.4f}  changed {s['changed']:.1%}{extra}")
        for set_name, rate in r["over_correction"].items():
            print(f"  over-correction, {set_name}: {rate:.1%}")
        d = r["decoders_on_jfleg"]
        print(
            f"  jfleg greedy {d['greedy']['passes_per_sentence']:.1f} passes/sent "
            f"{d['greedy']['sentences_per_second']:.1f} sent/s; iad "
            f"{d['iad']['passes_per_sentence']:.1f} passes/sent "
            f"{d['iad']['sentences_per_second']:.1f} sent/s, "
            f"identical {d['iad']['identical_to_greedy']:.1%}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
