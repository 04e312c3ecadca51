"""DNA BPE, packed-read pretraining (METAGENE-1) and multi-task fine-tuning (Omni-DNA).

    .venv/bin/python recipes/dna/run.py [--stage all|tokenizer|pretrain|finetune]
        [--skip-training] [--threads 1]

1. tokenizer: DNA BPE learned on the training reads at several vocabulary sizes; base
   pairs per token on the test reads, and how many tokens each planted motif takes.
2. pretrain: order-k Markov baselines (k = 1..8, k chosen on the validation reads) and a
   small decoder pretrained on packed reads (recipes/dna/pretrain.toml); bits per base
   pair on the test reads, all on the same reads.
3. finetune: ``seqweave extend-vocab`` adds the task and label tokens to the pretrained
   model; one multi-task model (splice + motif + strand) and one model per task, each
   fine-tuned from it for the same number of updates, plus splice from scratch (no
   pretraining) and the multi-task model with NEFTune; accuracy on each task's
   validation split, the label chosen among the task's label tokens.

Data and models go to runs/dna/ (recipes/dna/data.py says what the data are). A model
that finished training with the same config is reused. Writes recipes/dna/results.json;
each stage records its command, machine line and minutes. Run from the repository root.
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


def tokenizer_stage(skip: bool) -> dict:
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


def pretrain_stage(skip: bool) -> dict:
    split = reads()
    best_k, valid_scores = select_order(split["train"], split["valid"], range(1, 9))
    test_scores = {
        k: bits_per_base(MarkovDNA(k).fit(split["train"]), split["test"]) for k in range(1, 9)
    }
    print(f"markov: k={best_k} chosen on valid; test bits/bp {test_scores}", flush=True)
    config = load_config(HERE / "pretrain.toml")
    best = train_or_load(config, reuse_any=skip)
    model = seqweave.load(best)
    lm = {
        part: model_bits_per_base(model.network, model.tokenizer, split[part])
        for part in ("valid", "test")
    }
    print(f"decoder: bits/bp {lm}", flush=True)
    return {
        "markov_valid_bits_per_bp": valid_scores,
        "markov_test_bits_per_bp": test_scores,
        "markov_chosen_k": best_k,
        "decoder_bits_per_bp": lm,
        "decoder_bp_per_token_test": bases_per_token(model.tokenizer, split["test"]),
        "decoder_parameters": sum(p.numel() for p in model.network.parameters()),
        "decoder_checkpoint": scored_checkpoint(config.train.out_dir, best),
        "reads": {part: len(rows) for part, rows in split.items()},
    }


FINETUNES = {  # name -> (training file, init from the pretrained model, extra overrides)
    "multi-task": ("multi", True, []),
    "splice only": ("splice", True, []),
    "motif only": ("motif", True, []),
    "strand only": ("strand", True, []),
    "splice only, no pretraining": ("splice", False, []),
    "multi-task + NEFTune 5": ("multi", True, ["train.neftune_alpha=5.0"]),
}


def finetune_stage(skip: bool) -> dict:
    reads()
    extended = RUNS / "extended"
    if not (extended / "model.safetensors").exists():
        tokens = [*dna_data.TASK_TOKENS, *dna_data.LABEL_TOKENS]
        args = ["--model", str(RUNS / "pretrain/best"), "--output", str(extended)]
        seqweave_cli(["extend-vocab", *args, "--tokens", *tokens])
    valid = {task: read_examples(DATA / f"{task}_valid.jsonl") for task in dna_data.TASKS}
    results = {}
    for name, (task, pretrained, extra) in FINETUNES.items():
        slug = name.replace(" ", "_").replace(",", "").replace("+", "plus")
        overrides = [
            f"data.train={DATA / f'{task}_train.jsonl'}",
            f"data.valid={DATA / f'{task}_valid.jsonl'}",
            f"train.out_dir={RUNS / 'finetune' / slug}",
            f"train.init_from={extended if pretrained else ''}",
            *extra,
        ]
        config = load_config(HERE / "finetune.toml", overrides)
        best = train_or_load(config, reuse_any=skip)
        model = seqweave.load(best)
        scored = list(dna_data.TASKS) if task == "multi" else [task]
        accuracy = {}
        for t in scored:
            chosen = choose_labels(
                model.network, model.tokenizer, [e.source for e in valid[t]], dna_data.TASKS[t]
            )
            hits = sum(c == e.target for c, e in zip(chosen, valid[t], strict=True))
            accuracy[t] = hits / len(valid[t])
        results[name] = {
            "valid_accuracy": accuracy,
            "checkpoint": scored_checkpoint(config.train.out_dir, best),
        }
        print(f"{name}: {accuracy}", flush=True)
    return results


STAGES = {"tokenizer": tokenizer_stage, "pretrain": pretrain_stage, "finetune": finetune_stage}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", choices=["all", *STAGES], default="all")
    parser.add_argument("--skip-training", action="store_true", help="reuse runs/dna/")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    torch.set_num_threads(args.threads)
    out = HERE / "results.json"
    kept = json.loads(out.read_text()) if out.exists() else {}
    summary = {k: v for k, v in kept.items() if k not in ("command", "machine", "minutes")}
    begun = time.perf_counter()
    for stage in STAGES if args.stage == "all" else [args.stage]:
        started = time.perf_counter()
        summary[stage] = STAGES[stage](args.skip_training)
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
