"""DNA BPE, packed-read pretraining (METAGENE-1) and multi-task fine-tuning (Omni-DNA).

    .venv/bin/python recipes/dna/run.py [--stage all|tokenizer|pretrain|finetune]
        [--skip-training] [--threads 1] [--decoders bpe,base] [--only ROW [ROW ...]]
        [--seed 1]

1. tokenizer: DNA BPE learned on the training reads at several vocabulary sizes; base
   pairs per token on the test reads, and how many tokens each planted motif takes.
2. pretrain: order-k Markov baselines (k = 1..8, k chosen on the validation reads) and a
   small decoder pretrained on packed reads (recipes/dna/pretrain.toml), once with the
   DNA BPE and once with one token per base; bits per base pair on the same test reads.
3. finetune: for each of the two decoders, ``seqweave extend-vocab`` adds the task and
   label tokens to the pretrained model; one multi-task model (splice + motif + strand)
   and one model per task, each fine-tuned from it for the same number of updates, plus
   splice from scratch (no pretraining) and the multi-task model with NEFTune; accuracy
   on each task's validation split, the label chosen among the task's label tokens.

Data and models go to runs/dna/ (recipes/dna/data.py says what the data are). A model
that finished training with the same config is reused. Writes recipes/dna/results.json;
each stage records its command, machine line and minutes. A run limited by ``--decoders``
or ``--only`` (fine-tuning rows by name, as in FINETUNES) replaces only the entries it made
and keeps the rest of results.json; each fine-tuning row records the command that made it.
``--seed N`` (not 1) fine-tunes with ``train.seed=N`` into rows named "ROW (seed N)".
Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dna_data

import seqweave
from seqweave.baselines.markov_dna import MarkovDNA, bits_per_base, select_order
from seqweave.cli import main as seqweave_cli
from seqweave.config import load_config
from seqweave.data.readers import read_examples
from seqweave.harness import scored_checkpoint, train_or_load, write_results
from seqweave.harness.results import command_line, machine_line
from seqweave.metrics_dna import bits_per_base as model_bits_per_base
from seqweave.metrics_dna import choose_labels
from seqweave.tokenizers.dna_bpe import bases_per_token, train_dna_bpe

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/dna")
RUNS = Path("runs/dna")
DATA = RUNS / "data"
VOCAB_SIZES = (9, 16, 64, 256, 512, 1024, 4096)


def reads() -> dict[str, list[str]]:
    if not (DATA / "reads_test.jsonl").exists():
        sequence = dna_data.genome()
        dna_data.write_reads(DATA, sequence)
        dna_data.write_tasks(DATA, sequence)
    return {
        part: [e.target for e in read_examples(DATA / f"reads_{part}.jsonl")]
        for part in ("train", "valid", "test")
    }


def tokenizer_stage(skip: bool, decoders: list[str], only: list[str] | None, seed: int) -> dict:
    split = reads()
    table = {}
    for size in VOCAB_SIZES:
        tokenizer = train_dna_bpe(split["train"], size)
        table[size] = {
            "bp_per_token_test": bases_per_token(tokenizer, split["test"]),
            "motif_tokens": [len(tokenizer.encode(m)) for m in dna_data.MOTIFS],
        }
        print(f"vocab {size}: {table[size]}", flush=True)
    return {"vocab_sizes": table}


# the two decoders: DNA BPE (vocabulary 512, pretrain.toml as it is) and one token per base
# (rows of 256 tokens: two 100 bp reads); each has its own runs directories
DECODERS = {
    "bpe": ([], ""),
    "base": (["tokenizer.kind=dna", "data.max_target_len=256"], "_base"),
}
# sources of one token per base are four times longer: more minutes for the same updates
FINETUNE_OVERRIDES = {"bpe": [], "base": ["train.max_minutes=7"]}


def pretrain_stage(skip: bool, decoders: list[str], only: list[str] | None, seed: int) -> dict:
    split = reads()
    best_k, valid_scores = select_order(split["train"], split["valid"], range(1, 9))
    test_scores = {
        k: bits_per_base(MarkovDNA(k).fit(split["train"]), split["test"]) for k in range(1, 9)
    }
    print(f"markov: k={best_k} chosen on valid; test bits/bp {test_scores}", flush=True)
    scores = {}
    for name in decoders:
        overrides, suffix = DECODERS[name]
        out_dir = f"train.out_dir={RUNS}/pretrain{suffix}"
        config = load_config(HERE / "pretrain.toml", [*overrides, out_dir])
        best = train_or_load(config, reuse_any=skip)
        model = seqweave.load(best)
        lm = {
            part: model_bits_per_base(model.network, model.tokenizer, split[part])
            for part in ("valid", "test")
        }
        print(f"decoder {name}: bits/bp {lm}", flush=True)
        scores[name] = {
            "bits_per_bp": lm,
            "bp_per_token_test": bases_per_token(model.tokenizer, split["test"]),
            "parameters": sum(p.numel() for p in model.network.parameters()),
            "checkpoint": scored_checkpoint(config.train.out_dir, best),
        }
    return {
        "markov_valid_bits_per_bp": valid_scores,
        "markov_test_bits_per_bp": test_scores,
        "markov_chosen_k": best_k,
        "decoders": scores,
        "reads": {part: len(rows) for part, rows in split.items()},
    }


FINETUNES = {  # name -> (training file, init from the pretrained model, extra overrides)
    "multi-task": ("multi", True, []),
    "splice only": ("splice", True, []),
    "motif only": ("motif", True, []),
    "strand only": ("strand", True, []),
    "multi-task + NEFTune 5": ("multi", True, ["train.neftune_alpha=5.0"]),
    # pretraining saw DNA only as causal targets after an empty prefix; read it so here too
    "splice only, causal prefix": ("splice", True, ["model.prefix_attention=causal"]),
    "splice only, lr 3e-4": ("splice", True, ["train.lr=3e-4"]),
    "multi-task, no pretraining": ("multi", False, []),
    "splice only, no pretraining": ("splice", False, []),
    "motif only, no pretraining": ("motif", False, []),
    "strand only, no pretraining": ("strand", False, []),
}
# The one-token-per-base decoder's pretraining stayed at 2 bits per base (it learned no
# context), and its multi-task model stayed at the label priors, so only that and splice
# from scratch run for it; everything runs for the BPE decoder.
ONLY = {name: ("bpe",) for name in FINETUNES}
ONLY["multi-task"] = ONLY["splice only, no pretraining"] = ("bpe", "base")


def accuracy(model, valid: dict, tasks: list[str]) -> dict[str, float]:
    """Per task, the share of validation rows whose label is the chosen label token."""
    scores = {}
    for task in tasks:
        sources = [e.source for e in valid[task]]
        chosen = choose_labels(model.network, model.tokenizer, sources, dna_data.TASKS[task])
        hits = sum(c == e.target for c, e in zip(chosen, valid[task], strict=True))
        scores[task] = hits / len(valid[task])
    return scores


def finetune_stage(skip: bool, decoders: list[str], only: list[str] | None, seed: int) -> dict:
    reads()
    valid = {task: read_examples(DATA / f"{task}_valid.jsonl") for task in dna_data.TASKS}
    results = {}
    for decoder in decoders:
        suffix = DECODERS[decoder][1]
        extended = RUNS / f"extended{suffix}"
        if not (extended / "model.safetensors").exists():
            tokens = [*dna_data.TASK_TOKENS, *dna_data.LABEL_TOKENS]
            args = ["--model", str(RUNS / f"pretrain{suffix}/best"), "--output", str(extended)]
            seqweave_cli(["extend-vocab", *args, "--tokens", *tokens])
        results[decoder] = {}
        for name, (task, pretrained, extra) in FINETUNES.items():
            if decoder not in ONLY.get(name, (decoder,)) or (only and name not in only):
                continue
            slug = name.replace(" ", "_").replace(",", "").replace("+", "plus")
            row, seeded = name, []
            if seed != 1:  # other seeds beside the seed-1 rows, in their own directories
                row, slug, seeded = (
                    f"{name} (seed {seed})",
                    f"{slug}_seed{seed}",
                    [f"train.seed={seed}"],
                )
            overrides = [
                f"data.train={DATA / f'{task}_train.jsonl'}",
                f"data.valid={DATA / f'{task}_valid.jsonl'}",
                f"tokenizer.path={extended}",
                f"train.out_dir={RUNS / f'finetune{suffix}' / slug}",
                f"train.init_from={extended if pretrained else ''}",
                *FINETUNE_OVERRIDES[decoder],
                *extra,
                *seeded,
            ]
            config = load_config(HERE / "finetune.toml", overrides)
            best = train_or_load(config, reuse_any=skip)
            model = seqweave.load(best)
            scores = accuracy(model, valid, list(dna_data.TASKS) if task == "multi" else [task])
            results[decoder][row] = {
                "valid_accuracy": scores,
                "checkpoint": scored_checkpoint(config.train.out_dir, best),
                "command": command_line(),
            }
            print(f"{decoder}, {row}: {scores}", flush=True)
    return results


STAGES = {"tokenizer": tokenizer_stage, "pretrain": pretrain_stage, "finetune": finetune_stage}


def merged(stage: str, old: dict, new: dict) -> dict:
    """A stage's new results over its old ones, so that a run limited to some decoders or
    rows keeps the figures of the others (the README's tables come from one file)."""
    if stage == "pretrain" and "decoders" in old:
        return {**new, "decoders": {**old["decoders"], **new["decoders"]}}
    if stage == "finetune":
        return {**old, **{name: {**old.get(name, {}), **rows} for name, rows in new.items()}}
    return new


def keep(summary: dict, stage: str, new: dict, partial: bool) -> None:
    """Put a stage's results in ``summary``; a partial run (some decoders or rows) keeps the
    other entries and lists, under ``<stage>_earlier_runs``, the runs that made them."""
    if not partial:
        summary.pop(f"{stage}_earlier_runs", None)
        summary[stage] = new
        return
    summary[stage] = merged(stage, summary.get(stage, {}), new)
    if f"{stage}_run" in summary:
        earlier = summary.pop(f"{stage}_earlier_runs", [])
        summary[f"{stage}_earlier_runs"] = [*earlier, summary[f"{stage}_run"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", choices=["all", *STAGES], default="all")
    parser.add_argument("--skip-training", action="store_true", help="reuse runs/dna/")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--decoders", default="bpe,base", help="of: bpe, base")
    parser.add_argument(
        "--only", nargs="+", choices=list(FINETUNES), metavar="ROW", help="fine-tuning rows"
    )
    parser.add_argument("--seed", type=int, default=1, help="fine-tuning seed (train.seed)")
    args = parser.parse_args()
    os.chdir(ROOT)
    torch.set_num_threads(args.threads)
    out = HERE / "results.json"
    kept = json.loads(out.read_text()) if out.exists() else {}
    summary = {k: v for k, v in kept.items() if k not in ("command", "machine", "minutes")}
    begun = time.perf_counter()
    for stage in STAGES if args.stage == "all" else [args.stage]:
        started = time.perf_counter()
        decoders = args.decoders.split(",")
        new = STAGES[stage](args.skip_training, decoders, args.only, args.seed)
        partial = stage != "tokenizer" and set(decoders) != set(DECODERS)
        limited = stage == "finetune" and (bool(args.only) or args.seed != 1)
        keep(summary, stage, new, partial or limited)
        summary[f"{stage}_run"] = {
            "command": command_line(),
            "machine": machine_line("cpu", 1, args.threads),
            "minutes": (time.perf_counter() - started) / 60,
        }
        write_results(
            out,
            seeds=[1],
            device="cpu",
            jobs=1,
            threads=args.threads,
            started=begun,
            **{k: v for k, v in summary.items() if k not in ("seeds", "complete")},
        )


if __name__ == "__main__":
    main()
