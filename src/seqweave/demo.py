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
"""

from __future__ import annotations

import json
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


def demo_config(out_dir: Path, minutes: float) -> ExperimentConfig:
    """Sized for two CPU cores: ~3.4M parameters, ~400 updates of ~3,000 target tokens."""
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


def compare_decoders(model, texts: list[str], repeats: int = 2) -> list[dict]:
    """Greedy and IAD on the same inputs at batch 1 and 32, interleaved, best of
    ``repeats``; IAD must return greedy's tokens."""
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
                    "sentences_per_second": count / min(seconds),
                    "passes_per_sentence": passes,
                    "identical_to_greedy": same / count if decoder == "iad" else 1.0,
                }
            )
    say(f"   {'decoder':8} {'batch':>5} {'sent/s':>8} {'passes/sent':>12} {'same as greedy':>15}")
    for row in rows:
        say(
            f"   {row['decoder']:8} {row['batch_size']:>5} {row['sentences_per_second']:>8.1f} "
            f"{row['passes_per_sentence']:>12.2f} {row['identical_to_greedy']:>15.1%}"
        )
    return rows


def run_demo(out_dir: Path, minutes: float = 6.0, train_size: int = 100_000) -> dict:
    """Run the whole demo; returns the held-out scores."""
    import seqweave
    from seqweave.commands.evaluate import evaluate, format_table
    from seqweave.data.readers import read_examples
    from seqweave.data.synthetic_gec import write_splits
    from seqweave.train import train

    started = time.perf_counter()
    say(f"== 1/3 data: synthetic learner English in {out_dir / 'data'}")
    paths = write_splits(out_dir / "data", train_size, 500, 1000, seed=0)
    for name, path in paths.items():
        say(f"   {name}: {sum(1 for _ in path.open())} pairs")
    sample = json.loads(paths["train"].open().readline())
    say(f"   e.g. {sample['source']!r} -> {sample['target']!r}")

    say("== 2/3 training an encoder-decoder Transformer")
    best = train(demo_config(out_dir, minutes))
    model = seqweave.load(best)

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
        "minutes": (time.perf_counter() - started) / 60,
    }
    (out_dir / "demo_result.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"\ndone in {summary['minutes']:.1f} minutes; results in {out_dir / 'demo_result.json'}")
    return summary


if __name__ == "__main__":
    run_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
