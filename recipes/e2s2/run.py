"""E2S2 (Zhong et al. 2022): denoising pretraining with and without the encoder-side
objectives, then fine-tuning on grammatical error correction.

    python recipes/e2s2/run.py [--quick] [--device cpu|cuda] [--jobs N] [--seeds 1,2,3]
        [--variants scratch,plain,e2s2] [--pre-steps N] [--ft-steps N] [--out FILE] [--fresh]

1. Data (written to runs/e2s2/data, from ../shared/data): unlabelled English text
   (the English side of Multi30k train and the E2E train texts, minus any sentence
   whose normalised form is a held-out GEC target), a shared byte-level BPE with a
   ``<mask>`` token, and synthetic GEC pairs (gec-synth) split into train / 300 valid /
   1,000 test by a seeded shuffle.
2. Per seed, three variants of one small encoder-decoder (d_model 128, 2+2 layers):
   - ``scratch``: no pretraining (fine-tuned from random weights);
   - ``plain``: BART-style denoising pretraining, source tokens masked (20%) or
     replaced (10%) on the fly, the decoder writes the original;
   - ``e2s2``: the same plus E2S2's encoder-side restore loss (with the restore head)
     and its contrastive loss between the clean and corrupted views.
   Pretraining runs ``--pre-steps`` updates; fine-tuning on gec-synth ``--ft-steps``
   updates from the pretrained weights (``train.init_from``).
3. Scores per run:
   - encoder noise detection: a logistic-regression probe on the frozen pretrained
     encoder states predicts, per text position of a corrupted held-out sentence
     (Multi30k valid), whether it was corrupted; accuracy over all positions, and the
     balanced accuracy of replaced vs kept positions (masks are trivially visible);
     for ``e2s2``, also what the restore head says (its argmax differs from the input);
   - GLEU (greedy, through IAD, which returns greedy's tokens) on the held-out
     gec-synth test set and on JFLEG dev (4 references), beside copying the source.

The runs are a grid (``seqweave.harness``): ``--jobs N`` runs N at a time in separate
processes (one CPU thread each, or sharing one GPU with ``--device cuda``); results are
rewritten after every finished run, a cut-off run resumes with the runs it has not
finished, and a model that finished training with the same config is reused. Writes
recipes/e2s2/results.json (or ``--out``) and prints a table. Run from the repository
root.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from e2s2_data import prepare_data
from noise_probe import MASK_RATE, REPLACE_RATE, noise_detection

import seqweave
from seqweave.config import ExperimentConfig, from_dict
from seqweave.data.readers import read_examples
from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    scored_checkpoint,
    seed_list,
    summarise,
    train_or_load,
    write_results,
)
from seqweave.metrics import compute_metric
from seqweave.train.validate import references

ROOT = Path(__file__).resolve().parents[2]
RUNS = Path("runs/e2s2")
MODEL = dict(
    d_model=128,
    num_heads=4,
    encoder_layers=2,
    decoder_layers=2,
    ffn_dim=512,
    dropout=0.1,
    max_positions=256,
)
E2S2 = dict(denoise_weight=1.0, contrastive_weight=0.1, temperature=0.1)  # [objectives.e2s2]
DENOISING = dict(mask_rate=MASK_RATE, replace_rate=REPLACE_RATE)  # [objectives.denoising]
FULL = dict(pre_steps=1500, ft_steps=1200, max_tokens=4096, probe_sentences=1000, eval_limit=0)
# what two shared CPU cores manage in about ten minutes for three seeds
QUICK = dict(pre_steps=100, ft_steps=150, max_tokens=1024, probe_sentences=300, eval_limit=200)


# -- training --------------------------------------------------------------------------------


def experiment(
    paths: dict,
    out_dir: Path,
    steps: int,
    max_tokens: int,
    device: str,
    restore_head: bool = False,
    objectives: dict | None = None,
    **train_values,
):
    data = {"train": str(paths["train"]), "valid": str(paths["valid"]), "max_tokens": max_tokens}
    values = {
        "model": {**MODEL, "restore_head": restore_head},
        "tokenizer": {"path": str(paths["tokenizer"])},
        "data": {**data, "max_source_len": 200, "max_target_len": 200},
        "train": {
            "out_dir": str(out_dir),
            "device": device,
            "lr": 1e-3,
            "schedule": "cosine",
            "warmup_steps": max(20, steps // 10),
            "max_steps": steps,
            "validate_every": steps,
            "metric": "none",
            "label_smoothing": 0.1,
            "log_every": max(10, steps // 10),
            "progress": False,
            **train_values,
        },
        "objectives": objectives or {},
    }
    return from_dict(ExperimentConfig, values)


def run_job(cell: dict, settings: dict) -> dict:
    """Pretrain (unless scratch), fine-tune and score one (variant, seed)."""
    device, variant, seed = settings["device"], cell["variant"], cell["seed"]
    torch.set_num_threads(1)  # on a GPU, only the probe and the data work run on the CPU
    paths, size = settings["paths"], settings["size"]
    out = RUNS / f"{variant}-s{seed}"
    started = time.perf_counter()
    row: dict = {}
    pretrained = None
    if variant != "scratch":
        objectives = {"denoising": DENOISING, **({"e2s2": E2S2} if variant == "e2s2" else {})}
        pre_paths = {**paths, "train": paths["pretrain"], "valid": paths["pretrain_valid"]}
        cfg = experiment(
            pre_paths,
            out / "pre",
            size["pre_steps"],
            size["max_tokens"],
            device,
            restore_head=variant == "e2s2",
            objectives=objectives,
            seed=seed,
        )
        pretrained = train_or_load(cfg)
        row["pretrain_seconds"] = time.perf_counter() - started
    encoder = seqweave.load(pretrained, device=device) if pretrained else None
    if encoder is None:  # the random encoder a scratch model starts from
        torch.manual_seed(seed)
        encoder = _random_model(paths, device)
    row["noise_detection"] = noise_detection(encoder, paths, size["probe_sentences"], seed)
    ft_paths = {**paths, "train": paths["gec_train"], "valid": paths["gec_valid"]}
    init = {"init_from": str(pretrained)} if pretrained else {}
    cfg = experiment(
        ft_paths, out / "gec", size["ft_steps"], size["max_tokens"], device, seed=seed, **init
    )
    best = train_or_load(cfg)
    row["gleu"] = gec_scores(seqweave.load(best, device=device), paths, size["eval_limit"])
    row["checkpoint"] = scored_checkpoint(out / "gec", best)
    row["seconds"] = time.perf_counter() - started
    g = row["gleu"]
    print(
        f"{variant:8} seed {seed}: gec-synth GLEU {g['gec-synth test']:.2f}, "
        f"jfleg GLEU {g['jfleg dev']:.2f}, probe "
        f"{row['noise_detection']['probe_accuracy']:.3f} ({row['seconds']:.0f} s)",
        flush=True,
    )
    return row


def _random_model(paths: dict, device: str):
    from seqweave.api import Seq2Seq
    from seqweave.config import DecodeConfig, ModelConfig
    from seqweave.models import build_model
    from seqweave.tokenizers import Tokenizer
    from seqweave.train import resolve_model_config

    tokenizer = Tokenizer.load(paths["tokenizer"])
    cfg = resolve_model_config(ModelConfig(**MODEL), tokenizer)
    return Seq2Seq(build_model(cfg).to(device), tokenizer, DecodeConfig())


def gec_scores(model, paths: dict, limit: int) -> dict:
    sets = {
        "gec-synth test": read_examples(paths["gec_test"])[:limit],
        "jfleg dev": read_examples(paths["jfleg"])[:limit],
    }
    result = {}
    for name, examples in sets.items():
        sources = [e.source for e in examples]
        refs = [references(e) for e in examples]
        hypotheses = model.generate(sources, decoder="iad", batch_size=64, max_new_tokens=160)
        result[name] = compute_metric("gleu", hypotheses, refs, sources)["gleu"]
        result[f"{name} (copy source)"] = compute_metric("gleu", sources, refs, sources)["gleu"]
    return result


# -- report ----------------------------------------------------------------------------------


def print_table(summary: dict) -> None:
    keys = list(dict.fromkeys(key for figures in summary.values() for key in figures))
    print(f"{'figure':48}" + "".join(f"{v:>18}" for v in summary))
    for key in keys:
        cells = []
        for variant in summary:
            cell = summary[variant].get(key)
            cells.append(f"{cell['mean']:10.3f} ± {cell['std']:5.3f}" if cell else " " * 18)
        print(f"{key:48}" + "".join(f"{c:>18}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the CPU-sized configuration")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--variants", default="scratch,plain,e2s2")
    parser.add_argument("--pre-steps", type=int, default=0, help="override the size's steps")
    parser.add_argument("--ft-steps", type=int, default=0)
    parser.add_argument("--eval-limit", type=int, default=0, help="score the first N rows")
    add_run_arguments(parser, ROOT / "recipes/e2s2/results.json", jobs=2)
    args = parser.parse_args()
    size = dict(QUICK if args.quick else FULL)
    size["pre_steps"] = args.pre_steps or size["pre_steps"]
    size["ft_steps"] = args.ft_steps or size["ft_steps"]
    size["eval_limit"] = args.eval_limit or size["eval_limit"] or None
    os.chdir(ROOT)
    started = time.perf_counter()
    seeds, variants = seed_list(args.seeds), args.variants.split(",")
    settings = {"device": args.device, "paths": prepare_data(), "size": size}
    cells = grid(seed=seeds, variant=variants)

    def write(rows: list[dict]) -> dict:
        rows = sorted(rows, key=lambda r: (variants.index(r["variant"]), r["seed"]))
        summary = summarise(rows, by=("variant",))
        for figures in summary.values():  # the figures this recipe reports, not the bookkeeping
            for key in [k for k in figures if not k.startswith(("gleu.", "noise_detection."))]:
                del figures[key]
        return write_results(
            args.out,
            seeds=seeds,
            device=args.device,
            jobs=args.jobs,
            started=started,
            complete=len(rows) == len(cells),
            size=size,
            model=MODEL,
            noise=DENOISING,
            e2s2={**E2S2, "restore_head": True},
            summary=summary,
            runs=rows,
        )

    log = cell_log_path(args.out, RUNS, args.fresh)
    result = write(run_grid(run_job, cells, settings, log, args.jobs, write))
    print_table(result["summary"])
    print(f"wrote {args.out} in {60 * result['minutes']:.0f} s")


if __name__ == "__main__":
    main()
