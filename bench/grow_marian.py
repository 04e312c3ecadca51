"""A Marian-size GEC model (6 + 6 layers, d = 512) grown from gec-bart-anchor, fine-tuned.

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/grow_marian.py [--minutes 25] [--lr 2e-4]
        [--retrain] [--device cpu] [--out runs/marian_size]
        [--results bench/results/marian_size.json]

1. Import the anchor (4 + 4 layers, d = 256, Hugging Face BART) with seqweave's importer.
2. Split gec-synth ``train.jsonl`` (seeded shuffle, seed 0): the first 500 pairs are the
   held-out test set, the next 300 the validation set of fine-tuning, the rest training.
   The anchor was trained on these captions too (re-corrupted on the fly), so the split is
   held out from fine-tuning only; both models are scored on the same 500 pairs.
3. Grow: ``deepen`` to 6 + 6 layers (the new layers start as identities), then ``widen``
   to d = 512, 8 heads, ffn 2048 (Net2Net): the grown model computes the anchor's logits
   (tests/test_grow.py), 48.4M parameters instead of 9.5M.
4. Fine-tune with ``seqweave.train`` (bench/marian_size.toml, ``train.init_from`` = the
   grown model, targets framed with <s> as the anchor writes them), one thread, for
   ``--minutes``.
5. Score greedy exact match, GLEU and BLEU (and the teacher-forced NLL) on the held-out
   pairs: copying the source, the anchor, the grown model before and after fine-tuning;
   write ``--results``. Export the fine-tuned model to Hugging Face BART (OUT/hf) for
   ``seqweave bench --hf-model``, whose ``--data`` is OUT/data/held_out.jsonl.

Run from the repository root. A finished fine-tuning with the same config is reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

import torch

from seqweave.checkpoint import load_model_config, load_tokenizer, load_weights, save_model_dir
from seqweave.config import TokenizerConfig
from seqweave.config_parse import load_config
from seqweave.harness import decode_and_score, train_or_load, write_results
from seqweave.models import build_model
from seqweave.models.grow import deepen, widen
from seqweave.models.hf_import import import_hf

ANCHOR = Path("../shared/models/gec-bart-anchor")
DATA = Path("../shared/data/gec-synth/train.jsonl")
OUT = Path("runs/marian_size")
CONFIG = Path("bench/marian_size.toml")
RESULTS = Path("bench/results/marian_size.json")
HELD_OUT, VALID = 500, 300
METRICS = ["exact", "gleu", "bleu"]


def split_data(out: Path) -> None:
    """held_out.jsonl, valid.jsonl, train.jsonl (and held_out.txt: the sources)."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(lines)
    out.mkdir(parents=True, exist_ok=True)
    parts = {
        "held_out": lines[:HELD_OUT],
        "valid": lines[HELD_OUT : HELD_OUT + VALID],
        "train": lines[HELD_OUT + VALID :],
    }
    for name, part in parts.items():
        (out / f"{name}.jsonl").write_text("\n".join(part) + "\n", encoding="utf-8")
    sources = [json.loads(line)["source"] for line in parts["held_out"]]
    (out / "held_out.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")


def grow(anchor: Path, out: Path) -> Path:
    """The anchor deepened to 6 + 6 layers and widened to d = 512, saved at ``out``."""
    cfg = load_model_config(anchor)
    model = build_model(cfg)
    load_weights(model, anchor)
    grown = widen(deepen(model.eval(), 6, 6))
    save_model_dir(out, grown, load_tokenizer(anchor, cfg))
    return out


def finetune(grown: Path, out: Path, args: argparse.Namespace) -> Path:
    overrides = [
        f"train.max_minutes={args.minutes}",
        f"train.lr={args.lr}",
        f"train.device={args.device}",
        f"train.out_dir={out}",
        f"data.train={out.parent / 'data' / 'train.jsonl'}",
        f"data.valid={out.parent / 'data' / 'valid.jsonl'}",
    ]
    config = load_config(CONFIG, overrides)
    config = dataclasses.replace(
        config,
        # the anchor writes <s> before the text (BART); its targets must say so too
        model=dataclasses.replace(load_model_config(grown), target_bos=True),
        tokenizer=TokenizerConfig(path=str(grown)),
        train=dataclasses.replace(config.train, init_from=str(grown)),
    )
    return train_or_load(config, retrain=args.retrain)


def training_record(out: Path) -> dict:
    """Steps, minutes and the last validation loss of the fine-tuning, from its log."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if "valid_loss" in r]
    return {"last_record": records[-1], "last_validation": valid[-1] if valid else None}


def held_out_nll(model, examples: list) -> float:
    """Teacher-forced NLL per target token (targets framed with <s>, as the model writes)."""
    from seqweave.data.tokenized import tokenize_set
    from seqweave.train.validate import validation_loss

    config = load_config(CONFIG)
    framing = dataclasses.replace(model.network.config, target_bos=True)
    data = tokenize_set("held_out", examples, model.tokenizer, framing, config.data)
    with torch.inference_mode():
        return validation_loss(model.network, data, config)["valid_nll"]


def score(models: dict[str, Path], held_out: Path, device: str) -> dict:
    import seqweave
    from seqweave.data.readers import read_examples
    from seqweave.metrics import compute_metric

    examples = read_examples(held_out)
    sources = [e.source for e in examples]
    refs = [[e.target] for e in examples]
    rows = {"copy the source": {"scores": {}}}
    for name in METRICS:
        rows["copy the source"]["scores"].update(compute_metric(name, sources, refs, sources))
    for name, directory in models.items():
        model = seqweave.load(directory, device=device)
        params = sum(p.numel() for p in model.network.parameters())
        result = decode_and_score(model, examples, METRICS, decoder="greedy", batch_size=32)
        nll = held_out_nll(model, examples)
        rows[name] = {"parameters": params, "held_out_nll": nll, "scores": result["scores"]}
        print(name, json.dumps(rows[name]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="fine-tuning wall time")
    parser.add_argument("--lr", type=float, default=2e-4, help="fine-tuning peak learning rate")
    parser.add_argument("--retrain", action="store_true", help="fine-tune again")
    parser.add_argument("--device", default="cpu", help="fine-tuning and scoring device")
    parser.add_argument("--out", type=Path, default=OUT, help="where data and models go")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    out = args.out
    anchor = import_hf(ANCHOR, out / "anchor")
    split_data(out / "data")
    grown = grow(anchor, out / "grown")
    finetuned = finetune(grown, out / "finetuned", args)
    models = {
        "anchor (4+4, d=256)": anchor,
        "grown, not fine-tuned": grown,
        "grown + fine-tuned": finetuned,
    }
    rows = score(models, out / "data" / "held_out.jsonl", args.device)
    from seqweave.models.hf_export import export_hf

    export_hf(finetuned, out / "hf")
    write_results(
        args.results,
        seeds=None,
        device=args.device,
        jobs=1,
        started=started,
        held_out=HELD_OUT,
        rows=rows,
        fine_tuning=training_record(out / "finetuned"),
    )


if __name__ == "__main__":
    main()
