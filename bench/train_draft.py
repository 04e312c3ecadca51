"""Distil a small draft model from a Hugging Face BART, for speculative decoding.

    .venv/bin/python bench/train_draft.py [--hf-model ../shared/models/gec-bart-anchor]
        [--sentences 30000] [--minutes 6] [--out runs/draft-anchor]

1. Converts the BART checkpoint (seqweave import-hf) into runs/<name>-target.
2. Decodes the first N sources of gec-synth with it (IAD: the same tokens as
   greedy) and keeps the outputs as targets: the draft learns what the target
   says, not the references (sequence-level distillation, Kim and Rush 2016).
3. Trains a shallow seqweave model (2 encoder layers, 1 decoder layer, d=128)
   with the target's tokenizer and BART framing, so it can draft for it.
Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import seqweave
from seqweave.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)
from seqweave.models.hf_import import import_hf
from seqweave.train import train
from seqweave.train.distil import write_distilled

ROOT = Path(__file__).resolve().parents[1]
SOURCES = "../shared/data/gec-synth/train.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-model", default="../shared/models/gec-bart-anchor")
    parser.add_argument("--sentences", type=int, default=30_000)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--out", default="runs/draft-anchor")
    args = parser.parse_args()
    os.chdir(ROOT)
    out = Path(args.out)
    target_dir = out.parent / (out.name + "-target")
    target = seqweave.load(import_hf(args.hf_model, target_dir))
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    with open(SOURCES) as handle:
        lines = [json.loads(next(handle))["source"] for _ in range(args.sentences + 500)]
    if not (data / "train.jsonl").exists():
        for name, part in (("train", lines[500:]), ("valid", lines[:500])):
            seconds = write_distilled(target, part, data / f"{name}.jsonl", 32, decoder="iad")
            print(f"distilled {len(part)} outputs in {seconds:.0f} s")
    cfg = target.config
    config = ExperimentConfig(
        model=ModelConfig(
            d_model=128,
            num_heads=4,
            encoder_layers=2,
            decoder_layers=1,
            ffn_dim=512,
            dropout=0.0,
            position="learned",
            max_positions=cfg.max_positions,
            source_bos=True,
            target_bos=True,
        ),
        tokenizer=TokenizerConfig(path=str(target_dir)),
        data=DataConfig(
            train=str(data / "train.jsonl"), valid=str(data / "valid.jsonl"), max_tokens=4000
        ),
        train=TrainConfig(
            out_dir=str(out),
            lr=2e-3,
            schedule="cosine",
            warmup_steps=100,
            max_steps=1200,
            max_minutes=args.minutes,
            validate_every=300,
            metric="exact",
            label_smoothing=0.0,
        ),
    )
    best = train(config)
    draft = seqweave.load(best)
    target.attach_draft(draft)  # checks that the two fit together
    print(f"draft model: {best}")


if __name__ == "__main__":
    main()
