"""SeqPE length extrapolation: train at L positions, measure perplexity at L, 2L and 4L.

    .venv/bin/python recipes/seqpe/run.py [--steps 800] [--systems sinusoidal,learned,...]
        [--retrain] [--threads 1] [--device auto]

1. English Multi30k captions (train for training, valid + test2016 for evaluation)
   are packed into prefix-LM examples: one sentence as the prefix, the sentences
   after it as the target, as many as fit in N positions (prefix + start token +
   target). Training uses N = L = 64; evaluation uses N = 64, 128 and 256.
2. One model per system (recipes/seqpe/lm.toml, same size and steps): sinusoidal,
   learned (a 256-row table, rows past ~64 never trained), RoPE, SeqPE without and
   with its two auxiliary objectives.
3. Per system and length: perplexity of the target tokens (teacher forced), and the
   Spearman correlation between position distance and the cosine similarity of
   position vectors over positions 0..L-1 and 0..4L-1 (absolute encodings only).

Writes recipes/seqpe/results.json and prints a table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
from pathlib import Path

import torch

import seqweave
from seqweave.config import load_config
from seqweave.data.framing import frame_source
from seqweave.data.readers import read_examples
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.objectives.seqpe import distance_rank_correlation
from seqweave.tokenizers import Tokenizer, build_tokenizer
from seqweave.train import train
from seqweave.train.data import collate
from seqweave.train.report import read_metrics

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("../shared/data/multi30k-en-de")
CONFIG = "recipes/seqpe/lm.toml"
LENGTH = 64
LENGTHS = (LENGTH, 2 * LENGTH, 4 * LENGTH)
VOCAB = 1000
SYSTEMS = {
    "sinusoidal": ["model.position=sinusoidal"],
    "learned": ["model.position=learned"],
    "rope": ["model.position=rope"],
    "seqpe": ["model.position=seqpe"],
    "seqpe+objectives": [
        "model.position=seqpe",
        "objectives.seqpe.contrastive_weight=0.1",
        "objectives.seqpe.distill_weight=0.1",
    ],
}


def pack(tokenizer: Tokenizer, texts: list[str], positions: int) -> list[dict]:
    """Consecutive sentences as prefix-LM examples of at most ``positions`` positions: the
    first sentence (+ eos) is the prefix, the following ones joined by spaces the target
    (after the start token). Lengths are those of the joined text as the model sees it."""
    lengths = [len(ids) for ids in tokenizer.encode_batch(texts)]
    examples, i = [], 0
    while i < len(texts) - 1:
        used = lengths[i] + 2  # the prefix, its eos and the start token
        j = i + 1
        while j < len(texts) and used + lengths[j] + 1 <= positions:
            used += lengths[j] + 1  # a sentence and its end (the eos, or a joining space)
            j += 1
        target = " ".join(texts[i + 1 : j])
        while j > i + 1 and lengths[i] + len(tokenizer.encode(target)) + 3 > positions:
            j -= 1  # the joined text took more tokens than its sentences alone
            target = " ".join(texts[i + 1 : j])
        if j > i + 1:
            examples.append({"source": texts[i], "target": target})
        i = j
    return examples


def prepare(out: Path) -> Tokenizer:
    """The tokenizer and the packed training, validation and evaluation sets (kept when
    they exist, so that a machine without the shared data can train and evaluate)."""
    data = out / "data"
    names = ["train", "valid", *(f"eval{n}" for n in LENGTHS)]
    if (out / "tokenizer" / "tokenizer.json").exists() and all(
        (data / f"{name}.jsonl").exists() for name in names
    ):
        return Tokenizer.load(out / "tokenizer")
    train_texts = [e.source for e in read_examples(DATA / "train.jsonl")]
    held_out = [
        e.source for name in ("valid", "test2016") for e in read_examples(DATA / f"{name}.jsonl")
    ]
    if not (out / "tokenizer" / "tokenizer.json").exists():
        build_tokenizer("bpe", train_texts, VOCAB, (), None).save(out / "tokenizer")
    tokenizer = Tokenizer.load(out / "tokenizer")
    data.mkdir(parents=True, exist_ok=True)
    train_examples = pack(tokenizer, train_texts, LENGTH)
    sets = {"train": train_examples[200:], "valid": train_examples[:200]}
    sets.update({f"eval{n}": pack(tokenizer, held_out, n) for n in LENGTHS})
    for name, examples in sets.items():
        with (data / f"{name}.jsonl").open("w") as handle:
            handle.writelines(json.dumps(e) + "\n" for e in examples)
    return tokenizer


@torch.no_grad()
def perplexity(model, tokenizer: Tokenizer, examples: list[dict]) -> dict:
    """Teacher-forced perplexity of the targets, framed exactly as in training. One example
    per pass: in a padded prefix-LM batch the padding after a short target would sit at
    positions past the longest real one, past a learned table's last row."""
    cfg = model.config
    sources = [
        frame_source(ids, cfg) for ids in tokenizer.encode_batch([e["source"] for e in examples])
    ]
    targets = tokenizer.encode_batch([e["target"] for e in examples])
    nll, tokens, longest = 0.0, 0, 0
    for source, target in zip(sources, targets, strict=True):
        micro = collate([source], [target], cfg).to(model.device)
        logits = model(micro.src, micro.src_lengths, micro.tgt_in)
        nll += float(label_smoothed_nll(logits, micro.tgt_out, cfg.pad_id)[1])
        tokens += micro.num_tokens
        longest = max(longest, len(source) + micro.num_tokens)
    return {
        "ppl": math.exp(nll / tokens),
        "examples": len(examples),
        "tokens": tokens,
        "max_positions_used": longest,
    }


def finished(out_dir: Path, steps: int) -> bool:
    """Whether ``out_dir`` holds a model trained for exactly ``steps`` steps."""
    log = out_dir / "metrics.jsonl"
    return (out_dir / "best").exists() and any(
        r["kind"] == "valid" and r["step"] == steps for r in read_metrics(log)
    )


def position_vectors(model, count: int) -> torch.Tensor | None:
    """(count, D) position vectors of an absolute encoding; None for RoPE."""
    positions = model.embed.positions
    if positions is None:
        return None
    with torch.no_grad():
        return positions.forward(torch.arange(count, device=model.device)[None])[0].cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--retrain", action="store_true", help="train even where runs/seqpe/NAME has --steps"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args()
    os.chdir(ROOT)
    torch.set_num_threads(args.threads)
    out = Path("runs/seqpe")
    tokenizer = prepare(out)
    evaluation = {
        n: [json.loads(line) for line in (out / "data" / f"eval{n}.jsonl").open()] for n in LENGTHS
    }
    results = {}
    for name in args.systems.split(","):
        overrides = [
            *SYSTEMS[name],
            f"train.out_dir={out / name}",
            f"train.max_steps={args.steps}",
            f"train.device={args.device}",
        ]
        config = load_config(CONFIG, overrides)
        out_dir = Path(config.train.out_dir)
        if args.retrain or not finished(out_dir, args.steps):
            train(config)
        device = args.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = seqweave.load(out_dir / "best", device=device).network.eval()
        log = read_metrics(out_dir / "metrics.jsonl")
        valid = [r for r in log if r["kind"] == "valid"][-1]
        last = [r for r in log if r["kind"] == "train"][-1]
        row = {
            "training_minutes": round(last["elapsed_seconds"] / 60, 2),
            "steps": valid["step"],
            "valid_ppl_at_L": valid["valid_ppl"],
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        for n in LENGTHS:
            row[f"ppl@{n}"] = perplexity(model, tokenizer, evaluation[n])
        vectors = position_vectors(model, 4 * LENGTH)
        if vectors is not None:
            row["spearman_distance_similarity"] = {
                f"0..{LENGTH - 1}": distance_rank_correlation(vectors[:LENGTH]),
                f"0..{4 * LENGTH - 1}": distance_rank_correlation(vectors),
            }
        results[name] = row
        print(name, json.dumps(row), flush=True)
    summary = {
        "task": "prefix LM on English Multi30k captions: one sentence as prefix, the following "
        "sentences as target; trained at <= 64 positions, evaluated on valid+test2016 at <= 64, "
        "128, 256 positions",
        "config": CONFIG,
        "steps": args.steps,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
        f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}, "
        f"torch {torch.__version__}",
        "results": results,
    }
    path = ROOT / "recipes" / "seqpe" / "results.json"
    if args.systems == ",".join(SYSTEMS):
        path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {path}")
    print(
        f"{'system':18s}"
        + "".join(f"  ppl@{n:<5d}" for n in LENGTHS)
        + "  spearman(0..L-1, 0..4L-1)"
    )
    for name, row in results.items():
        rho = row.get("spearman_distance_similarity")
        rho_text = "  n/a" if rho is None else "  " + ", ".join(f"{v:+.2f}" for v in rho.values())
        print(
            f"{name:18s}" + "".join(f"  {row[f'ppl@{n}']['ppl']:9.2f}" for n in LENGTHS) + rho_text
        )


if __name__ == "__main__":
    main()
