"""Protein pretraining (TAPE, Protap at small scale): does masked-LM pretraining help a
per-residue tagger, against training from scratch and one-hot baselines?

    .venv/bin/python recipes/protein_pretraining/run.py pretrain [--minutes 8]
    .venv/bin/python recipes/protein_pretraining/run.py tag --task qian [--seeds 1,2,3]
        [--steps 60]
    .venv/bin/python recipes/protein_pretraining/run.py tag --task ss --seeds 1 --steps 80
        --max-tokens 4096
    .venv/bin/python recipes/protein_pretraining/run.py gb1 [--seeds 1,2,3]

``pretrain`` trains the encoder with ``train.objective = "mlm"`` and, separately, the decoder
with ``"lm"`` on the corpus of ``data.py`` (training sequences only), each for ``--minutes``
on one CPU thread, and scores both on held-out flip-ss proteins beside a unigram baseline
(pretraining.json). ``tag`` trains the tagging head (``model.tag_head``,
``train.objective = "tag"``) from scratch and from the mlm encoder (``train.init_from``) for
``--steps`` updates per seed, and fits the one-hot window baselines (linear, MLP), all scored
by Q3 on our validation split (tag-TASK-STEPSsteps.json). ``gb1`` regresses GB1 fitness
from mean-pooled encoder states (pretrained vs the same encoder untrained) and from one-hot
sequences, Spearman's rho on the 43 rows flagged ``validation`` (gb1.json).
Run from the repository root; every model trains through ``seqweave.harness.train_or_load``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

import torch

import seqweave
from seqweave.baselines.proteins import HeadSettings, ResidueTagger, q3
from seqweave.config import load_config
from seqweave.harness import (
    difference,
    mean_std,
    scored_checkpoint,
    train_or_load,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "recipes" / "protein_pretraining"
CONFIG = HERE / "model.toml"
RUNS = Path("runs/protein_pretraining")
DATA = RUNS / "data"
BASELINE_PROTEINS = 1000  # the one-hot heads fit on at most this many proteins (memory)
sys.path.insert(0, str(HERE))
from gb1 import run_gb1  # noqa: E402

import data  # noqa: E402


def config(objective: str, out: str, train_file: Path, valid_file: Path, *extra: str):
    """The recipe's model config for one run (tag_head first: the objective checks it)."""
    head = ["model.tag_head=mlp"] if objective == "tag" else []
    return load_config(
        CONFIG,
        [
            *head,
            f"train.objective={objective}",
            f"data.train={train_file}",
            f"data.valid={valid_file}",
            f"train.out_dir={RUNS / out}",
            *extra,
        ],
    )


def unigram(corpus: Path, held_out: Path) -> dict:
    """Per-residue perplexity and accuracy of the corpus's letter frequencies on held-out
    proteins: what a model must beat to have learnt anything beyond composition."""
    counts = Counter("".join(r["source"] for r in data.read_jsonl(corpus)))
    total = sum(counts.values())
    residues = "".join(r["source"] for r in data.read_jsonl(held_out))
    nll = -sum(math.log(counts.get(c, 0.5) / total) for c in residues) / len(residues)
    top = counts.most_common(1)[0][0]
    return {"ppl": math.exp(nll), "accuracy": residues.count(top) / len(residues), "top": top}


def pretrain(args) -> None:
    from seqweave.data.readers import read_examples
    from seqweave.train.data import tokenize_set
    from seqweave.train.validate import validate_objective

    started = time.perf_counter()
    paths = data.write_all(DATA)
    results = HERE / "pretraining.json"
    earlier = json.loads(results.read_text())["figures"] if results.exists() else {}
    figures = {**earlier, "unigram": unigram(paths["corpus"], paths["held_out"])}
    budget = [f"train.max_minutes={args.minutes}", "train.max_steps=100000"]
    for objective in args.objectives.split(","):
        cfg = config(objective, objective, paths["corpus"], paths["held_out"], *budget)
        best = train_or_load(cfg, retrain=args.retrain)
        model = seqweave.load(best)
        held = tokenize_set(
            "held_out",
            read_examples(str(paths["held_out"])),
            model.tokenizer,
            model.config,
            cfg.data,
        )
        result = validate_objective(model.network, model.tokenizer, held, cfg)
        figures[objective] = {
            "ppl": result["valid_ppl"],
            "accuracy": result["valid_accuracy"],
            "scored": int(result["valid_scored"]),
            "checkpoint": scored_checkpoint(cfg.train.out_dir, best),
        }
        print(objective, figures[objective], flush=True)
    print("unigram", figures["unigram"])
    write_results(
        results,
        seeds=[1],
        device="cpu",
        jobs=1,
        started=started,
        figures=figures,
        settings=vars(args),
        held_out_proteins=data.HELD_OUT,
    )


def tag_split(task: str, limit: int) -> tuple[Path, Path, list[dict], list[dict]]:
    """Training and logging files, the fitting rows (for the baselines) and the rows Q3 is
    reported on (flip-ss: the first ``limit`` validation proteins)."""
    paths = data.write_all(DATA)
    if task == "qian":
        fit, valid = data.qian_split()
        return paths["qian_train"], paths["qian_valid"], fit, valid
    fit = data.read_jsonl(paths["ss_train"])
    return paths["ss_train"], paths["ss_dev"], fit, data.ss_valid()[:limit]


def tag(args) -> None:
    started = time.perf_counter()
    train_file, log_file, fit, valid = tag_split(args.task, args.eval_limit)
    pretrained = RUNS / "mlm" / "best"
    if not pretrained.exists():
        raise SystemExit(f"{pretrained}: run the pretrain stage first")
    sources, truth = [r["source"] for r in valid], [r["target"] for r in valid]
    runs: dict[str, list[float]] = {}
    for seed in args.seeds:
        for variant in ("scratch", "pretrained"):
            extra = [
                f"tokenizer.path={pretrained}",  # one vocabulary (with <mask>) for both
                f"train.seed={seed}",
                f"train.max_steps={args.steps}",
                f"train.validate_every={args.steps}",  # once, at the end: no selection
                f"train.warmup_steps={max(1, args.steps // 10)}",
                f"train.lr={args.lr}",
                f"data.max_tokens={args.max_tokens}",
            ]
            if variant == "pretrained":
                extra.append(f"train.init_from={pretrained}")
            out = f"tag-{args.task}-{args.steps}steps-{variant}-seed{seed}"
            cfg = config("tag", out, train_file, log_file, *extra)
            model = seqweave.load(train_or_load(cfg, retrain=args.retrain))
            score = q3(truth, model.tag(sources, labels="HEC", batch_size=8))
            runs.setdefault(variant, []).append(score)
            print(f"{args.task} {variant} seed {seed}: Q3 {score:.4f}", flush=True)
        baseline_fit = fit[:BASELINE_PROTEINS]
        for name, hidden in (("one-hot linear", 0), ("one-hot MLP", 40)):
            epochs = 20 if args.task == "qian" else 3  # about 1,000-3,000 updates either way
            settings = HeadSettings(hidden=hidden, epochs=epochs, seed=seed)
            tagger = ResidueTagger(settings=settings).fit(
                [r["source"] for r in baseline_fit], [r["target"] for r in baseline_fit]
            )
            runs.setdefault(name, []).append(q3(truth, tagger.predict(sources)))
            print(f"{args.task} {name} seed {seed}: Q3 {runs[name][-1]:.4f}", flush=True)
    figures = {name: mean_std(values) for name, values in runs.items()}
    coil = q3(truth, ["C" * len(t) for t in truth])
    write_results(
        HERE / (args.results or f"tag-{args.task}-{args.steps}steps.json"),
        seeds=args.seeds,
        device="cpu",
        jobs=1,
        started=started,
        figures=figures,
        all_coil_q3=coil,
        pretrained_minus_scratch=difference(figures["scratch"], figures["pretrained"]),
        proteins={
            "fit": len(fit),
            "baseline_fit": min(len(fit), BASELINE_PROTEINS),
            "valid": len(valid),
            "valid_residues": sum(map(len, truth)),
        },
        settings={k: v for k, v in vars(args).items() if k not in ("stage", "retrain")},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("pretrain", "tag", "gb1"))
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--objectives", default="mlm,lm", help="pretrain: which, in order")
    parser.add_argument("--task", choices=("qian", "ss"), default="qian")
    parser.add_argument("--steps", type=int, default=60, help="tag: updates per run")
    parser.add_argument("--lr", type=float, default=2e-3, help="tag: peak learning rate")
    parser.add_argument("--max-tokens", type=int, default=2048, help="tag: tokens per batch")
    parser.add_argument("--eval-limit", type=int, default=300, help="tag ss: proteins scored")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--results", default="", help="tag: results file name (default by task)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.chdir(ROOT)
    if args.stage == "pretrain":
        pretrain(args)
    elif args.stage == "tag":
        tag(args)
    else:
        run_gb1(args.seeds, RUNS / "mlm" / "best", HERE / "gb1.json")


if __name__ == "__main__":
    main()
