"""The main job: train a grammatical-error-correction model from nothing, then use it.

1. Generate synthetic learner English (``seqweave.data.synthetic_gec``): a
   training set and held-out validation and test sets with no shared targets.
2. Train a small encoder-decoder Transformer with a byte-level BPE tokenizer.
3. Correct held-out sentences, and score the held-out test set (exact match,
   GLEU, BLEU).
4. Decode the test set again with greedy decoding and with input-guided
   aggressive decoding, at batch 1 and 32: same tokens, far fewer passes.

Everything runs offline on the CPU in a few minutes; the figures it prints are
recorded in the README.

The scores are reproducible bit for bit on CPUs that take the same kernels: training
stops after a fixed number of updates (a time cap would train a slower or busier
machine for fewer), on a fixed number of torch threads (their count changes how
reductions are split, hence float rounding), with fixed seeds. What still varies is the
vector kernel torch picks for the CPU (AVX-512, AVX2, ...): it rounds differently, and
training amplifies that; the demo prints which one it ran. Speed varies with the machine
and its load, so the speed comparison is repeated, interleaved, and printed as a median
ratio with its range.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from seqweave.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)

THREADS = 2  # torch threads: fixed, so every machine sums in the same order
REPEATS = 5  # interleaved repeats of the speed comparison


def demo_config(out_dir: Path, minutes: float = 0.0) -> ExperimentConfig:
    """Sized for two CPU cores: ~3.4M parameters, 450 updates of ~3,000 target tokens.
    ``minutes`` (0: none) caps training time, which makes scores depend on speed."""
    data = out_dir / "data"
    return ExperimentConfig(
        model=ModelConfig(
            d_model=192,
            num_heads=4,
            encoder_layers=3,
            decoder_layers=3,
            ffn_dim=768,
            dropout=0.0,  # fresh synthetic data every example; CPU dropout is costly
            max_positions=128,
        ),
        tokenizer=TokenizerConfig(kind="bpe", vocab_size=1500),
        data=DataConfig(
            train=str(data / "train.jsonl"), valid=str(data / "valid.jsonl"), max_tokens=3000
        ),
        train=TrainConfig(
            out_dir=str(out_dir / "model"),
            lr=2e-3,
            schedule="cosine",
            warmup_steps=100,
            max_steps=450,
            max_minutes=minutes,
            validate_every=150,
            metric="exact",
            valid_decode_limit=500,
            label_smoothing=0.1,
            log_every=25,
        ),
    )


def say(text: str = "") -> None:
    print(text, flush=True)


def compare_decoders(model, texts: list[str], repeats: int = REPEATS) -> list[dict]:
    """Greedy and IAD on the same inputs at batch 1 and 32, interleaved (repeat r runs
    both before repeat r + 1, so a busy machine slows them alike); IAD must return
    greedy's tokens. Speeds are medians over the repeats; IAD's row also carries its
    speed ratio to greedy, repeat by repeat."""
    from seqweave.decoding import decode_many

    sources = model.encode_sources(texts)
    rows = []
    for batch_size, count in ((1, 300), (32, len(sources))):
        timings: dict[str, list[float]] = {"greedy": [], "iad": []}
        outputs = {}
        for _ in range(repeats):
            for decoder in timings:
                cfg = model.decode_settings(decoder=decoder, batch_size=batch_size)
                begun = time.perf_counter()
                outputs[decoder] = decode_many(model.network, sources[:count], cfg)
                timings[decoder].append(time.perf_counter() - begun)
        same = sum(
            g.tokens == a.tokens for g, a in zip(outputs["greedy"], outputs["iad"], strict=True)
        )
        for decoder, seconds in timings.items():
            passes = sum(o.stats.passes for o in outputs[decoder]) / count
            rows.append(
                {
                    "decoder": decoder,
                    "batch_size": batch_size,
                    "sentences": count,
                    "sentences_per_second": count / statistics.median(seconds),
                    "passes_per_sentence": passes,
                    "identical_to_greedy": same / count if decoder == "iad" else 1.0,
                    "seconds": seconds,
                }
            )
        rows[-1]["speed_ratios"] = speed_ratios(timings["greedy"], timings["iad"])
    say(f"   {'decoder':8} {'batch':>5} {'sent/s':>8} {'passes/sent':>12} {'same as greedy':>15}")
    for row in rows:
        say(
            f"   {row['decoder']:8} {row['batch_size']:>5} {row['sentences_per_second']:>8.1f} "
            f"{row['passes_per_sentence']:>12.2f} {row['identical_to_greedy']:>15.1%}"
        )
    for row in rows:
        if "speed_ratios" in row:
            ratios = describe_ratios(row["speed_ratios"])
            say(f"   IAD / greedy sentences per second at batch {row['batch_size']}: {ratios}")
    return rows


def speed_ratios(reference: list[float], other: list[float]) -> list[float]:
    """How many times faster ``other`` ran than ``reference``, repeat by repeat (seconds
    of the same repeat, taken back to back)."""
    return [r / o for r, o in zip(reference, other, strict=True)]


def describe_ratios(ratios: list[float]) -> str:
    """'1.93x (median of 5 repeats, 1.71x-2.05x)'"""
    low, high = min(ratios), max(ratios)
    median = statistics.median(ratios)
    return f"{median:.2f}x (median of {len(ratios)} repeats, {low:.2f}x-{high:.2f}x)"


def pin_threads(threads: int = THREADS) -> str:
    """Run torch on ``threads`` threads; returns what decides float rounding on this
    machine (threads and the CPU kernels torch dispatches to), for the record."""
    import torch

    torch.set_num_threads(threads)
    return f"{threads} torch threads, {torch.backends.cpu.get_cpu_capability()} kernels"


def run_demo(out_dir: Path, minutes: float = 0.0, train_size: int = 100_000) -> dict:
    """Run the whole demo; returns the held-out scores."""
    import seqweave
    from seqweave.data.readers import read_examples
    from seqweave.data.synthetic_gec import write_splits
    from seqweave.evaluation import evaluate, format_table
    from seqweave.train import train

    started = time.perf_counter()
    setup = pin_threads()
    cap = f", stopping early after {minutes:g} minutes" if minutes else ""
    say(f"== seeded, {demo_config(out_dir).train.max_steps} updates{cap}; {setup}")
    say(f"== 1/3 data: synthetic learner English in {out_dir / 'data'}")
    paths = write_splits(out_dir / "data", train_size, 500, 1000, seed=0)
    for name, path in paths.items():
        say(f"   {name}: {sum(1 for _ in path.open())} pairs")
    sample = json.loads(paths["train"].open().readline())
    say(f"   e.g. {sample['source']!r} -> {sample['target']!r}")

    say("== 2/3 training an encoder-decoder Transformer")
    config = demo_config(out_dir, minutes)
    best = train(config)
    model = seqweave.load(best)
    last = json.loads((best.parent / "last" / "training_state.json").read_text())
    updates = last["progress"]["step"]
    if updates < config.train.max_steps:
        say(
            f"   the time cap stopped training after {updates} of {config.train.max_steps} updates:"
        )
        say("   the scores below depend on this machine's speed")

    say(f"== 3/3 using the model in {best}")
    test = read_examples(paths["test"])
    shown = [e for e in test if e.source != e.target][:8]
    for example, output in zip(shown, model.generate([e.source for e in shown]), strict=True):
        mark = "ok " if output == example.target else "err"
        say(f"   {example.source}\n   {mark} {output}")
    result = evaluate(model, test, ["exact", "gleu", "bleu"], batch_size=32)
    say(f"\nheld-out test set ({len(test)} sentences, greedy, batch 32):")
    say(format_table(result))
    result.pop("hypotheses")
    say("\n== lossless acceleration: greedy vs input-guided aggressive decoding (IAD)")
    speed = compare_decoders(model, [e.source for e in test])
    summary = {
        "exact": result["scores"]["exact"],
        "gleu": result["scores"]["gleu"],
        "bleu": result["scores"]["bleu"],
        "speed": speed,
        "setup": setup,
        "updates": updates,
        "minutes": (time.perf_counter() - started) / 60,
    }
    (out_dir / "demo_result.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"\ndone in {summary['minutes']:.1f} minutes; results in {out_dir / 'demo_result.json'}")
    return summary


if __name__ == "__main__":
    run_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
