"""FReTNA on Multi30k EN->DE: simultaneous re-translation, from scratch vs a NAR editor.

    .venv/bin/python recipes/fretna/run.py [--target runs/multi30k/best] [--minutes 15]
        [--sentences 300] [--skip-training | --retrain]

1. The target is the model of ``bench/multi30k.py`` (run that first).
2. Its greedy translations of source *prefixes* (two random cut points and the
   whole sentence, for 4,000 training sentences) are the editor's data
   (sequence-level distillation): the editor learns what the target would
   output after each word.
3. The editor (recipes/fretna/editor.toml) starts from the target's weights and
   trains for ``--minutes`` (``seqweave.harness.train_or_load``: a finished editor of the
   same config is reused).
4. On the first ``--sentences`` of test2016, each source arrives a word at a
   time; after each word, interleaved per sentence: the target re-translates
   from scratch (greedy), and the editor revises its previous output in 1, 2
   or 3 passes. Reported: BLEU of the final translations, average lagging,
   normalized erasure, decoder passes per update (overall and by source
   length), and CPU time per update at source lengths 10, 20 and 40 (streams
   of consecutive test sentences joined to 40 words; median).

Writes recipes/fretna/results.json (with the scored editor checkpoint's step and
validation) and prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import torch

import seqweave
from seqweave.config import load_config
from seqweave.data.readers import read_examples
from seqweave.harness import scored_checkpoint, train_or_load, write_results
from seqweave.metrics import compute_metric
from seqweave.streaming import retranslate, source_words, stream_metrics
from seqweave.train.distil import write_distilled

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("../shared/data/multi30k-en-de")
TIMED_LENGTHS = (10, 20, 40)
BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 99))
# A cut source can send the model into a loop; no Multi30k translation needs more tokens.
MAX_NEW_TOKENS = 64


def prefixes(sources: list[str], rng: random.Random, cuts: int = 2) -> list[str]:
    """Each source cut after ``cuts`` random words, and whole."""
    result = []
    for source in sources:
        words = source_words(source)
        points = set(rng.sample(range(1, len(words)), min(cuts, len(words) - 1)))
        result += [" ".join(words[:p]) for p in sorted(points | {len(words)})]
    return result


def distil(target, config, rng: random.Random) -> None:
    train_sources = [e.source for e in read_examples(DATA / "train.jsonl")]
    rng.shuffle(train_sources)
    splits = {
        "train": train_sources[:4_000],
        "valid": [e.source for e in read_examples(DATA / "valid.jsonl")][:300],
    }
    for name, sources in splits.items():
        path = Path(getattr(config.data, name))
        if not path.exists():
            cut = prefixes(sources, rng)
            seconds = write_distilled(
                target, cut, path, batch_size=64, max_new_tokens=MAX_NEW_TOKENS
            )
            print(f"distilled {len(cut)} {name} prefixes in {seconds:.0f} s", flush=True)


def systems(editor) -> dict[str, dict]:
    return {
        "re-translate (greedy)": {"max_new_tokens": MAX_NEW_TOKENS},
        "editor, 1 pass": {"editor": editor, "edit_passes": 1},
        "editor, 2 passes": {"editor": editor, "edit_passes": 2},
        "editor, 3 passes": {"editor": editor, "edit_passes": 3},
    }


def evaluate(target, editor, test: list, sentences: int) -> dict:
    """Stream the first ``sentences`` test sources through every system, interleaved."""
    runs = systems(editor)
    streams: dict[str, list] = {name: [] for name in runs}
    for example in test[:sentences]:
        words = source_words(example.source)
        for name, options in runs.items():
            streams[name].append(list(retranslate(target, words, **options)))
    references = [[e.target] for e in test[:sentences]]
    table = {}
    for name, result in streams.items():
        finals = target.tokenizer.decode_batch([s[-1].tokens for s in result])
        by_length = {}
        for low, high in BUCKETS:
            passes = [u.passes for s in result for u in s if low <= u.source_words <= high]
            if passes:
                by_length[f"{low}-{high} words"] = sum(passes) / len(passes)
        table[name] = {
            "final_bleu": compute_metric("bleu", finals, references)["bleu"],
            **stream_metrics(result),
            "passes_per_update_by_source_length": by_length,
        }
    return table


def long_streams(test: list, count: int, words: int) -> list[list[str]]:
    """``count`` streams of ``words`` words, each joining consecutive test sentences."""
    result, current = [], []
    for example in test:
        current += source_words(example.source)
        if len(current) >= words:
            result.append(current[:words])
            current = []
            if len(result) == count:
                break
    return result


def time_updates(target, editor, test: list, count: int = 20) -> dict:
    """Median seconds (and passes) of the update at each of TIMED_LENGTHS source words."""
    streams = long_streams(test, count, max(TIMED_LENGTHS))
    seconds = {name: {n: [] for n in TIMED_LENGTHS} for name in systems(editor)}
    passes = {name: {n: [] for n in TIMED_LENGTHS} for name in systems(editor)}
    for words in streams:
        for name, options in systems(editor).items():
            for update in retranslate(target, words, **options):
                if update.source_words in TIMED_LENGTHS:
                    seconds[name][update.source_words].append(update.seconds)
                    passes[name][update.source_words].append(update.passes)
    return {
        name: {
            f"{n} words": {
                "ms_per_update": 1000 * statistics.median(seconds[name][n]),
                "passes": statistics.mean(passes[name][n]),
            }
            for n in TIMED_LENGTHS
        }
        for name in seconds
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", default="runs/multi30k/best")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--skip-training", action="store_true", help="use runs/fretna/editor")
    parser.add_argument("--retrain", action="store_true", help="even if a finished editor exists")
    args = parser.parse_args()
    started = time.perf_counter()
    # One thread throughout: batch-1 updates gain nothing from a second, and on shared
    # cores two-thread kernels wait for each other (15x slower here under load).
    torch.set_num_threads(1)
    os.chdir(ROOT)
    target_dir = Path(args.target)
    if not (target_dir / "config.json").exists():
        raise SystemExit(f"{target_dir}: no model; run bench/multi30k.py first")
    target = seqweave.load(target_dir)
    config = load_config(
        "recipes/fretna/editor.toml",
        [
            f"tokenizer.path={target_dir}",
            f"train.init_from={target_dir}",
            f"train.max_minutes={args.minutes}",
        ],
    )
    distil(target, config, random.Random(7))
    best = train_or_load(config, retrain=args.retrain, reuse_any=args.skip_training)
    editor = seqweave.load(best)

    test = read_examples(DATA / "test2016.jsonl")
    quality = evaluate(target, editor, test, args.sentences)
    timing = time_updates(target, editor, test[args.sentences :])
    out = Path("recipes/fretna/results.json")
    write_results(
        out,
        seeds=[config.train.seed],
        device="cpu",
        jobs=1,
        started=started,
        data=f"multi30k-en-de test2016, first {args.sentences} sentences, sacrebleu 13a; "
        "a word arrives per update",
        target=str(target_dir),
        editor=scored_checkpoint(config.train.out_dir, best),
        systems=quality,
        update_cost=timing,
    )
    print(f"{'system':24} {'BLEU':>6} {'AL':>6} {'NE':>6} {'passes/upd':>10} {'ms/upd':>8}")
    for name, row in quality.items():
        print(
            f"{name:24} {row['final_bleu']:6.2f} {row['average_lagging']:6.2f} "
            f"{row['normalized_erasure']:6.3f} {row['passes_per_update']:10.2f} "
            f"{1000 * row['seconds_per_update']:8.2f}"
        )
    for name, row in timing.items():
        cells = ", ".join(
            f"{n}: {v['ms_per_update']:.1f} ms / {v['passes']:.1f} passes" for n, v in row.items()
        )
        print(f"{name:24} {cells}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
