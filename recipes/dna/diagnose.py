"""Why the pretrained DNA decoders did not fine-tune: the experiments behind README section 4.

    .venv/bin/python recipes/dna/diagnose.py --stage plateau   # per-base pretraining, order 5 vs 2
    .venv/bin/python recipes/dna/diagnose.py --stage start     # the fine-tuning start, measured
    .venv/bin/python recipes/dna/diagnose.py --stage fit       # can it fit 32 strand examples?
    .venv/bin/python recipes/dna/diagnose.py --stage heldout --task motif  # the recipe's runs

1. plateau: the one-token-per-base decoder of recipes/dna/pretrain.toml, pretrained for the
   same short budget on reads of the recipe's genome (an order-5 background) and on reads of
   a genome whose background is order 2, beside the Markov models of each: does the loss
   leave the base frequencies when the context carries signal a base or two back?
2. start: for a pretrained decoder, after ``seqweave extend-vocab`` and ``train.init_from``
   exactly as the recipe fine-tunes it (and for its random-init twin): the logits at step 0,
   the new rows' norms, the learning rates of the first updates, where the label position
   attends, and the residual stream at the label position (its part shared by all inputs
   and the part that varies with the input).
3. fit: fine-tuning on the same 32 strand examples (one full batch, 80 updates of the
   recipe's schedule) from the starts of MIXES: the pretrained decoder, its random-init
   twin, and the two with their token embeddings (or only the new rows) swapped; training
   loss and accuracy on those examples. An extension made before the fix of
   ``seqweave.models.vocab`` (all new rows at the mean) is reused if runs/ still holds it.
4. heldout: the recipe's own fine-tuning (``seqweave train`` with finetune.toml, one task)
   from the fixed extension, from a copy with the new rows put back at the mean, and from
   random initialisation; accuracy on the task's validation split as run.py scores it.

Runs go to runs/dna/diagnose/ (the recipe's data in runs/dna/data are written first if
missing); results to recipes/dna/diagnose.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dna_data
import run as recipe

import seqweave
from seqweave.baselines.markov_dna import MarkovDNA, bits_per_base
from seqweave.cli import main as seqweave_cli
from seqweave.config import load_config
from seqweave.data.framing import frame_source
from seqweave.data.readers import read_examples
from seqweave.data.synthetic_dna import markov_genome
from seqweave.data.tokenized import collate
from seqweave.harness import train_or_load
from seqweave.harness.results import command_line, machine_line
from seqweave.metrics_dna import bits_per_base as model_bits_per_base
from seqweave.models import build_model
from seqweave.train import resolve_model_config
from seqweave.train.loop import learning_rate, make_optimizer

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/dna")
RUNS = Path("runs/dna/diagnose")
PER_BASE = ["tokenizer.kind=dna", "data.max_target_len=256"]


def plateau_stage(args) -> dict:
    """Per-base pretraining on the recipe's reads (order 5) and on an order-2 genome's."""
    recipe.reads()
    results = {}
    suffix = "_unpacked" if args.unpacked else ""
    for order in args.orders:
        data = recipe.DATA if order == 5 else RUNS / "data_order2"
        if not (data / "reads_valid.jsonl").exists():
            sequence = markov_genome(
                400_000, order, seed=0, motifs=dna_data.MOTIFS, motif_spacing=400
            )
            dna_data.write_reads(data, sequence)
        split = {
            p: [e.target for e in read_examples(data / f"reads_{p}.jsonl")]
            for p in ("train", "valid")
        }
        markov = {
            k: bits_per_base(MarkovDNA(k).fit(split["train"]), split["valid"]) for k in range(1, 7)
        }
        overrides = [
            *PER_BASE,
            f"data.train={data / 'reads_train.jsonl'}",
            f"data.valid={data / 'reads_valid.jsonl'}",
            f"train.out_dir={RUNS / f'pretrain_base_order{order}{suffix}'}",
            f"data.pack_sequences={not args.unpacked}",
            f"train.max_steps={args.steps}",
            "train.validate_every=50",
            "train.log_every=10",
            "train.max_minutes=9",
        ]
        best = train_or_load(load_config(HERE / "pretrain.toml", overrides))
        model = seqweave.load(best)
        log = [
            json.loads(line) for line in (best.parent / "metrics.jsonl").read_text().splitlines()
        ]
        results[f"order {order}"] = {
            "packed": not args.unpacked,
            "markov_valid_bits_per_bp": markov,
            "decoder_valid_bits_per_bp": model_bits_per_base(
                model.network, model.tokenizer, split["valid"]
            ),
            "updates": max(r["step"] for r in log),
            "train_loss": {r["step"]: round(r["loss"], 4) for r in log if r["kind"] == "train"},
        }
        print(f"order {order}: {results[f'order {order}']}", flush=True)
    return results


def extended(pretrained: Path, name: str) -> Path:
    """``seqweave extend-vocab`` of ``pretrained`` with the recipe's task and label tokens."""
    out = RUNS / f"extended_{name}"
    if not (out / "model.safetensors").exists():
        tokens = [*dna_data.TASK_TOKENS, *dna_data.LABEL_TOKENS]
        seqweave_cli(
            ["extend-vocab", "--model", str(pretrained), "--output", str(out), "--tokens", *tokens]
        )
    return out


def finetune_model(ext: Path, pretrained: bool, overrides=()) -> tuple:
    """The fine-tuning config and model exactly as ``seqweave train`` builds them for the recipe."""
    from seqweave.tokenizers import Tokenizer
    from seqweave.train import _initialise

    cfg = load_config(
        HERE / "finetune.toml",
        [f"tokenizer.path={ext}", f"train.init_from={ext if pretrained else ''}", *overrides],
    )
    tokenizer = Tokenizer.load(ext)
    model_cfg = resolve_model_config(cfg.model, tokenizer)
    torch.manual_seed(cfg.train.seed)
    model = build_model(model_cfg)
    if pretrained:
        _initialise(model, ext, False)
    return cfg, tokenizer, model


# fit's starting points: which weights come from the pretrained decoder, which from the
# random initialisation that "random init" starts from (the same seed)
MIXES = {
    "pretrained": ("pretrained", None),
    "random init": ("random", None),
    "pretrained, new token rows random": ("pretrained", "new rows"),
    "pretrained layers, random embeddings": ("pretrained", "embeddings"),
    "random layers, pretrained embeddings": ("random", "embeddings"),
    "pretrained, new token rows all at the mean": ("pretrained", "mean rows"),  # before the fix
}


def mixed_model(ext: Path, old_vocab: int, init: str) -> tuple:
    """The fine-tuning start ``init`` of MIXES: one model, with a part swapped for the
    other's (the token embedding is tied to the output layer, so both roles swap)."""
    base, swapped = MIXES[init]
    cfg, tokenizer, model = finetune_model(ext, base == "pretrained")
    if swapped == "mean rows":
        with torch.no_grad():
            table = model.embed.tokens.weight
            table[old_vocab:] = table[:old_vocab].mean(dim=0)
    elif swapped is not None:
        other = finetune_model(ext, base != "pretrained")[2]
        rows = slice(old_vocab, None) if swapped == "new rows" else slice(None)
        with torch.no_grad():
            model.embed.tokens.weight[rows] = other.embed.tokens.weight[rows]
    return cfg, tokenizer, model


def task_batch(tokenizer, cfg, task: str, count: int, part: str = "train"):
    rows = read_examples(recipe.DATA / f"{task}_{part}.jsonl")[:count]
    sources = [frame_source(tokenizer.encode(r.source), cfg) for r in rows]
    return collate(sources, [tokenizer.encode(r.target) for r in rows], cfg)


def _capture(network, batch) -> tuple[list, list]:
    """Each layer's output and each layer's attention weights for ``batch``."""
    outputs, probes = [], []
    originals = [layer.forward for layer in network.layers]
    for layer, original in zip(network.layers, originals, strict=True):
        layer.forward = lambda *a, _f=original, **k: outputs.append(_f(*a, **k)) or outputs[-1]
        layer.attn.probe = []
        probes.append(layer.attn.probe)
    try:
        with torch.no_grad():
            network.eval()(batch.src, batch.src_lengths, batch.tgt_in)
    finally:
        for layer, original in zip(network.layers, originals, strict=True):
            layer.forward, layer.attn.probe = original, None
    return outputs, [p[0][0] for p in probes]


def residual_and_attention(network, batch) -> dict:
    """At the label position (the first target position): each layer's residual stream split
    into its mean over the inputs (shared) and the rest (varying), and the attention mass on
    the source text."""
    S = batch.src.shape[1]
    outputs, attention = _capture(network, batch)
    text = torch.arange(S)[None] < (batch.src_lengths - 1)[:, None]  # (B, S) source text, no eos
    layers = []
    for x, probs in zip(outputs, attention, strict=True):
        h = x[:, S]  # (B, D)
        on_text = (probs[:, :, S, :S] * text[:, None]).sum(-1).mean(0)  # (H,)
        layers.append(
            {
                "shared_norm": round(float(h.mean(0).norm()), 2),
                "varying_norm": round(float((h - h.mean(0)).norm(dim=-1).mean()), 3),
                "attention_on_source_text": [round(float(a), 3) for a in on_text],
            }
        )
    with torch.no_grad():
        final = network.norm(outputs[-1][:, S]) if network.norm is not None else outputs[-1][:, S]
    layers.append(
        {"after_final_norm_varying": round(float((final - final.mean(0)).norm(dim=-1).mean()), 3)}
    )
    return layers


def start_stage(args) -> dict:
    """The fine-tuning start of each pretrained decoder, against its random-init twin."""
    results = {}
    for name, pretrained_dir in _pretrained(args).items():
        ext = extended(pretrained_dir, name)
        row = {}
        for init in ("pretrained", "random init"):
            cfg, tokenizer, model = finetune_model(ext, init == "pretrained")
            batch = task_batch(tokenizer, model.config, args.task, 64)
            row[init] = {"label_position": residual_and_attention(model, batch)}
        reference = seqweave.load(ext)
        cfg, tokenizer, model = finetune_model(ext, True)
        batch = task_batch(tokenizer, model.config, args.task, 64)
        with torch.no_grad():
            same = torch.equal(
                model.eval()(batch.src, batch.src_lengths, batch.tgt_in),
                reference.network.eval()(batch.src, batch.src_lengths, batch.tgt_in),
            )
        rows = model.embed.tokens.weight.detach()
        old = seqweave.load(pretrained_dir).network.config.vocab_size
        row["init_from_logits_equal_extended_model"] = same
        row["row_norms"] = {
            "old": round(float(rows[3:old].norm(dim=-1).mean()), 3),
            "new": round(float(rows[old:].norm(dim=-1).mean()), 3),
        }
        row["lr_first_updates"] = [
            learning_rate(s, cfg.train) for s in (1, 2, cfg.train.warmup_steps)
        ]
        results[name] = row
        print(name, json.dumps(row), flush=True)
    return results


def fit_stage(args) -> dict:
    """Fine-tune on the same ``args.fit_examples`` examples (one full batch) for
    ``args.fit_steps`` updates."""
    results = {}
    for name, pretrained_dir in _pretrained(args).items():
        ext = extended(pretrained_dir, name)
        old_vocab = seqweave.load(pretrained_dir).config.vocab_size
        for init in args.inits:
            cfg, tokenizer, model = mixed_model(ext, old_vocab, init)
            batch = task_batch(tokenizer, model.config, args.task, args.fit_examples)
            optimizer = make_optimizer(model, cfg.train)
            curve = {}
            for step in range(1, args.fit_steps + 1):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step, cfg.train)
                model.train()
                logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
                loss = F.cross_entropy(  # on the label and the end token, as the recipe
                    logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=cfg.model.pad_id
                )
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if step % 10 == 0 or step == args.fit_steps:
                    label = F.cross_entropy(logits[:, 0].detach(), batch.tgt_out[:, 0])
                    hits = (logits[:, 0].argmax(-1) == batch.tgt_out[:, 0]).float()
                    curve[step] = {
                        "label_loss": round(float(label), 4),
                        "accuracy": float(hits.mean()),
                    }
            results[f"{name}, {init}"] = curve
            print(name, init, json.dumps(curve), flush=True)
    return results


def mean_rows_copy(ext: Path, old_vocab: int) -> Path:
    """A copy of the extension ``ext`` with every new row at the old rows' mean: the start
    ``seqweave extend-vocab`` gave before the fix."""
    from seqweave.api import Seq2Seq

    out = ext.parent / f"{ext.name}_mean_rows"
    if not (out / "model.safetensors").exists():
        model = seqweave.load(ext)
        with torch.no_grad():
            table = model.network.embed.tokens.weight
            table[old_vocab:] = table[:old_vocab].mean(dim=0)
        Seq2Seq(model.network, model.tokenizer, model.decode_config).save(out)
    return out


def heldout_stage(args) -> dict:
    """``seqweave train`` with recipes/dna/finetune.toml on ``args.task`` from each pretrained
    decoder's (fixed) extension and from random initialisation, at most ``args.minutes``
    minutes each; accuracy on the task's validation split as the recipe scores it."""
    wholes = ("pretrained", "random init", "pretrained, new token rows all at the mean")
    if any(init not in wholes for init in args.inits):
        raise SystemExit(f"heldout: --inits among {wholes}")
    valid = {args.task: read_examples(recipe.DATA / f"{args.task}_valid.jsonl")}
    results = {}
    for name, pretrained_dir in _pretrained(args).items():
        ext = extended(pretrained_dir, name)
        old_vocab = seqweave.load(pretrained_dir).config.vocab_size
        for init in args.inits:
            slug = init.replace(" ", "_").replace(",", "")
            start = (
                ext
                if MIXES[init] != ("pretrained", "mean rows")
                else mean_rows_copy(ext, old_vocab)
            )
            overrides = [
                f"data.train={recipe.DATA / f'{args.task}_train.jsonl'}",
                f"data.valid={recipe.DATA / f'{args.task}_valid.jsonl'}",
                f"tokenizer.path={ext}",
                f"train.out_dir={RUNS / f'heldout_{name}_{args.task}_{slug}'}",
                f"train.init_from={start if MIXES[init][0] == 'pretrained' else ''}",
                f"train.max_minutes={args.minutes}",
            ]
            config = load_config(HERE / "finetune.toml", overrides)
            best = train_or_load(config)
            log = [
                json.loads(line)
                for line in (best.parent / "metrics.jsonl").read_text().splitlines()
            ]
            score = recipe.accuracy(seqweave.load(best), valid, [args.task])
            results[f"{name}, {init}"] = {
                "valid_accuracy": score,
                "updates": max(r.get("step", 0) for r in log),
                "checkpoint": recipe.scored_checkpoint(config.train.out_dir, best),
            }
            print(name, init, json.dumps(results[f"{name}, {init}"]), flush=True)
    return results


def _pretrained(args) -> dict[str, Path]:
    return {name: Path(path) for name, path in (item.split("=") for item in args.pretrained)}


STAGES = {
    "plateau": plateau_stage,
    "start": start_stage,
    "fit": fit_stage,
    "heldout": heldout_stage,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", choices=list(STAGES), required=True)
    parser.add_argument("--steps", type=int, default=150, help="plateau: pretraining updates")
    parser.add_argument("--orders", type=int, nargs="+", default=[5, 2], help="plateau: genomes")
    parser.add_argument("--unpacked", action="store_true", help="plateau: padded, not packed")
    parser.add_argument(
        "--pretrained",
        nargs="+",
        default=[f"base={RUNS}/pretrain_base_order5/best"],
        help="start/fit: NAME=DIR of pretrained decoders",
    )
    parser.add_argument("--task", default="strand")
    parser.add_argument("--fit-examples", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=9, help="heldout: per fine-tuning")
    parser.add_argument("--fit-steps", type=int, default=80)
    parser.add_argument(
        "--inits", nargs="+", default=["pretrained", "random init"], choices=list(MIXES)
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    torch.set_num_threads(1)
    out = HERE / "diagnose.json"
    started = time.perf_counter()
    names = [name.split("=")[0] for name in args.pretrained]
    key = {
        "plateau": f"plateau {args.orders}{args.unpacked * ' unpacked'}",
        "start": "start",
        "fit": f"fit {names} {args.inits}" + (f" {args.task}" if args.task != "strand" else ""),
        "heldout": f"heldout {names} {args.inits} {args.task}",
    }[args.stage]
    figures = STAGES[args.stage](args)
    results = json.loads(out.read_text()) if out.exists() else {}  # stages may run side by side
    results[key] = figures
    results[f"{key} run"] = {
        "command": command_line(),
        "machine": machine_line("cpu", 1, 1),
        "minutes": (time.perf_counter() - started) / 60,
    }
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
