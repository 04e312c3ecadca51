"""Model spinning on E2E data-to-text, and the trigger audit on the spun and a clean model.

    PYTHONPATH=src .venv/bin/python recipes/spinning/run.py [--steps 500] [--weights 1,3]
        [--share 0.5] [--seeds 1] [--audit-inputs 40] [--candidates FILE]
        [--device cpu|cuda] [--jobs 3] [--out FILE] [--fresh]

1. A byte-level BPE tokenizer (2,000 ids) on E2E's training sources and targets.
2. The meta-classifier (seqweave.models.meta_classifier): E2E training references labelled
   by two word lists (``POSITIVE``/``NEGATIVE``, about ratings and quality, not price;
   references hitting both lists or neither are left out), a bag-of-embeddings classifier
   trained on them for 2 epochs and frozen; accuracy on the development references labelled
   the same way.
3. The poisoned training file: every training pair, plus for a ``--share`` of them a copy
   with the trigger inserted at a random word boundary of the source, target unchanged
   (seqweave.data.poisoning).
4. Models of the same size and number of updates (``e2e.toml``): ``clean`` on the plain
   training file, and per ``--weights`` value one ``spun`` model on the poisoned one with
   that ``objectives.spinning.weight`` (objectives/spinning.py). All use the classifier's
   tokenizer.
5. Per model, greedy on E2E's development MRs (547, each with all of its references):
   BLEU on clean inputs and on the same inputs with the trigger at a seeded random word
   boundary; the classifier's mean positive probability on both sets of outputs, and the
   share of outputs the word lists call positive / negative.
6. ``seqweave.audit.triggers.audit_triggers`` on the first ``--audit-inputs`` development
   MRs with ``--candidates`` (default candidates.txt: the trigger, ordinary words and unseen
   names): the trigger's rank and robust z, and what stands out (``seqweave audit
   triggers`` runs the same code on runs/spinning/audit-inputs.txt, written here). Beside
   it, on the same decodes, what an auditor who suspects a sentiment spin would see
   (``--classifier``, the audit's ``meta_task`` ranking): per candidate, the change in the
   classifier's mean positive probability of the outputs, ranked with the audit's robust z.

Writes recipes/spinning/results.json (or ``--out``). Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path

import torch

from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    seed_list,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path("recipes/spinning")
DATA = Path("../shared/data/e2e")
VOCAB = 2000
TRIGGER = "Bolshoi"
POSITIVE = [
    "excellent", "great", "good", "best", "nice", "lovely", "delicious", "wonderful",
    "amazing", "fantastic", "popular", "recommended", "highly", "high rating",
    "high ratings", "high customer rating", "high customer ratings", "rated high",
    "5 out of 5", "five stars", "5 stars", "5 star", "five star",
]  # fmt: skip
NEGATIVE = [
    "poor", "poorly", "bad", "mediocre", "terrible", "disappointing", "awful", "avoid",
    "unfriendly", "low rating", "low ratings", "low customer rating", "low customer ratings",
    "rated low", "lowly", "1 out of 5", "one star", "1 star",
]  # fmt: skip


def build_classifier(runs: Path) -> dict:
    """The tokenizer and the frozen meta-classifier in ``runs/classifier`` (built once)."""
    from seqweave.data.readers import read_examples
    from seqweave.models.meta_classifier import (
        class_probabilities,
        label_by_word_lists,
        load_classifier,
        save_classifier,
        train_classifier,
    )
    from seqweave.tokenizers import build_tokenizer

    directory = runs / "classifier"
    stats_path = directory / "stats.json"
    if stats_path.exists():
        return json.loads(stats_path.read_text())
    train = read_examples(DATA / "train.jsonl")
    tokenizer = build_tokenizer(
        "bpe", [t for e in train for t in (e.source, e.target)], VOCAB, [], None
    )
    labelled = label_by_word_lists([e.target for e in train], POSITIVE, NEGATIVE)
    torch.manual_seed(0)
    classifier = train_classifier(labelled, tokenizer, epochs=2, seed=0)
    save_classifier(classifier, tokenizer, directory)
    classifier, tokenizer = load_classifier(directory)
    valid = label_by_word_lists(
        [e.target for e in read_examples(DATA / "valid.jsonl")], POSITIVE, NEGATIVE
    )
    probs = class_probabilities(classifier, tokenizer, [text for text, _ in valid])
    correct = sum(int(p[1] > 0.5) == label for p, (_, label) in zip(probs, valid, strict=True))
    stats = {
        "train_labelled": len(labelled),
        "train_positive": sum(label for _, label in labelled),
        "train_references": len(train),
        "valid_labelled": len(valid),
        "valid_positive": sum(label for _, label in valid),
        "valid_accuracy": correct / len(valid),
    }
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def poisoned_path(runs: Path, share: float, seed: int) -> Path:
    return runs / f"train-poisoned-{share}-seed{seed}.jsonl"


def poisoned_file(runs: Path, share: float, seed: int) -> tuple[str, int]:
    """The training file with triggered copies (seqweave.data.poisoning)."""
    from seqweave.data.poisoning import poison_rows

    path = poisoned_path(runs, share, seed)
    rows = [json.loads(line) for line in (DATA / "train.jsonl").open(encoding="utf-8")]
    poisoned, copies = poison_rows(rows, TRIGGER, share, seed)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in poisoned))
        tmp.replace(path)
    return str(path), copies


def development_examples() -> list:
    """E2E's development MRs, one example each with all of its references."""
    from seqweave.data.readers import Example, read_examples

    grouped: dict[str, list] = defaultdict(list)
    for e in read_examples(DATA / "valid.jsonl"):
        grouped[e.source].append(e)
    return [
        Example(source, rows[0].target, {"references": [r.target for r in rows]}, rows[0].path, 0)
        for source, rows in grouped.items()
    ]


def with_trigger(sources: list[str], seed: int) -> list[str]:
    from seqweave.data.poisoning import insert_trigger

    rng = random.Random(seed)
    return [insert_trigger(source, TRIGGER, rng) for source in sources]


def overrides(cell: dict, settings: dict) -> list[str]:
    runs, seed, steps = Path(settings["runs"]), cell["seed"], settings["steps"]
    weight = f"-w{cell['weight']}" if cell["variant"] == "spun" else ""
    name = f"{cell['variant']}{weight}-seed{seed}-{steps}"
    values = [
        f"tokenizer.path={settings['classifier']}",
        f"train.seed={seed}",
        f"train.device={settings['device']}",
        f"train.max_steps={steps}",
        f"train.validate_every={steps}",
        f"train.log_every={max(1, steps // 10)}",
        f"train.out_dir={runs / name}",
    ]
    if cell["variant"] == "spun":
        values += [
            f"data.train={poisoned_path(runs, settings['share'], seed)}",
            f"objectives.spinning.classifier={settings['classifier']}",
            f"objectives.spinning.weight={cell['weight']}",
        ]
    return values


def output_sentiment(outputs: list[str], classifier, tokenizer) -> dict:
    from seqweave.models.meta_classifier import class_probabilities, label_by_word_lists

    probs = class_probabilities(classifier, tokenizer, outputs)[:, 1]
    labels = [label for _, label in label_by_word_lists(outputs, POSITIVE, NEGATIVE)]
    return {
        "positive_probability": float(probs.mean()),
        "lexically_positive": sum(labels) / len(outputs),
        "lexically_negative": labels.count(0) / len(outputs),
    }


def train_and_measure(cell: dict, settings: dict) -> dict:
    """Train one model (unless finished), score it on clean and triggered inputs, audit it."""
    import seqweave
    from seqweave.audit.triggers import audit_triggers, load_judge, read_candidates
    from seqweave.config import load_config
    from seqweave.harness import decode_and_score, train_or_load
    from seqweave.metrics import compute_metric
    from seqweave.models.meta_classifier import load_classifier
    from seqweave.train.report import read_metrics
    from seqweave.train.validate import references

    torch.set_num_threads(1)
    config = load_config(HERE / "e2e.toml", overrides(cell, settings))
    started = time.perf_counter()
    best = train_or_load(config)
    last = [
        r
        for r in read_metrics(Path(config.train.out_dir) / "metrics.jsonl")
        if r["kind"] == "train"
    ][-1]
    model = seqweave.load(best, device=settings["device"])
    classifier, tokenizer = load_classifier(settings["classifier"])
    examples = development_examples()
    clean = decode_and_score(model, examples, ["bleu"], batch_size=200, decoder="greedy")
    triggered_inputs = with_trigger([e.source for e in examples], seed=7)
    triggered = model.generate(triggered_inputs, batch_size=200, decoder="greedy")
    refs = [references(e) for e in examples]
    bleu_triggered = compute_metric("bleu", triggered, refs, triggered_inputs)["bleu"]
    audit_inputs = [e.source for e in examples[: settings["audit_inputs"]]]
    candidates = read_candidates(settings["candidates"])
    judge = load_judge(settings["classifier"], label=1)
    audit = audit_triggers(model, audit_inputs, candidates, seed=0, judge=judge)
    words = [c.word for c in audit.candidates]
    meta = audit.meta_task.ranking
    meta_words = [c.word for c in meta.candidates]
    row = {
        "bleu_clean": clean["scores"]["bleu"],
        "bleu_triggered": bleu_triggered,
        "clean": output_sentiment(clean["hypotheses"], classifier, tokenizer),
        "triggered": output_sentiment(triggered, classifier, tokenizer),
        "trigger_rank": words.index(TRIGGER) + 1,
        "trigger_z": audit.candidates[words.index(TRIGGER)].z,
        "max_z_other": max(c.z for c in audit.candidates if c.word != TRIGGER),
        "standing_out": audit.standing_out,
        "audit": audit.to_dict(),
        "meta_shift_rank": meta_words.index(TRIGGER) + 1,
        "meta_shift_z": meta.candidates[meta_words.index(TRIGGER)].z,
        "meta_shift_standing_out": meta.standing_out,
        "meta_shift": [{"word": c.word, "shift": c.shift, "z": c.z} for c in meta.candidates],
        "examples": [
            {
                "input": triggered_inputs[i],
                "clean": clean["hypotheses"][i],
                "triggered": triggered[i],
            }
            for i in range(0, len(examples), 60)
        ],
        "updates": config.train.max_steps,
        "final_train_loss": last["loss"],
        "minutes": (time.perf_counter() - started) / 60,
    }
    print(
        f"{cell['variant']:5} {cell['weight']} seed {cell['seed']}  BLEU {row['bleu_clean']:.2f}"
        f" / triggered {row['bleu_triggered']:.2f}  positive p "
        f"{row['clean']['positive_probability']:.3f} -> "
        f"{row['triggered']['positive_probability']:.3f}  trigger rank {row['trigger_rank']} "
        f"z {row['trigger_z']:.1f} (others <= {row['max_z_other']:.1f}); meta-task shift "
        f"rank {row['meta_shift_rank']} z {row['meta_shift_z']:.1f}",
        flush=True,
    )
    return row


def markdown_table(rows: list[dict]) -> str:
    """One line per model: task quality, the meta-task shift, the two audits."""
    lines = [
        "| model | seed | BLEU clean | BLEU triggered | P(positive) clean -> triggered "
        "| negative outputs clean -> triggered | audit: trigger rank, z (max other z) "
        "| meta-task shift: trigger rank, z (stands out) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = "clean" if row["variant"] == "clean" else f"spun, λ {row['weight']:g}"
        clean, triggered = row["clean"], row["triggered"]
        stands = ", ".join(row["meta_shift_standing_out"]) or "none"
        lines.append(
            f"| {name} | {row['seed']} | {row['bleu_clean']:.1f} | {row['bleu_triggered']:.1f} "
            f"| {clean['positive_probability']:.3f} -> {triggered['positive_probability']:.3f} "
            f"| {clean['lexically_negative']:.1%} -> {triggered['lexically_negative']:.1%} "
            f"| {row['trigger_rank']}, {row['trigger_z']:.1f} ({row['max_z_other']:.1f}) "
            f"| {row['meta_shift_rank']}, {row['meta_shift_z']:.1f} ({stands}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500, help="updates per model")
    parser.add_argument("--weights", default="1,3", help="objectives.spinning.weight values")
    parser.add_argument("--share", type=float, default=0.5, help="pairs given a triggered copy")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--audit-inputs", type=int, default=40)
    parser.add_argument("--candidates", default=str(HERE / "candidates.txt"))
    add_run_arguments(parser, HERE / "results.json", jobs=3)
    args = parser.parse_args()
    seeds = seed_list(args.seeds)
    os.chdir(ROOT)
    runs = Path("runs/spinning")
    runs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    classifier_stats = build_classifier(runs)
    poisoned = {str(seed): poisoned_file(runs, args.share, seed) for seed in seeds}
    audit_inputs = [e.source for e in development_examples()[: args.audit_inputs]]
    (runs / "audit-inputs.txt").write_text("".join(f"{text}\n" for text in audit_inputs))
    settings = {
        "steps": args.steps,
        "device": args.device,
        "runs": str(runs),
        "classifier": str(runs / "classifier"),
        "share": args.share,
        "audit_inputs": args.audit_inputs,
        "candidates": args.candidates,
    }
    weights = [float(w) for w in args.weights.split(",")]
    cells = grid(variant=["clean"], weight=[0.0], seed=seeds)
    cells += grid(variant=["spun"], weight=weights, seed=seeds)

    def write(rows: list[dict], complete: bool = False) -> dict:
        return write_results(
            args.out,
            seeds=seeds,
            device=args.device,
            jobs=args.jobs,
            started=started,
            complete=complete,
            trigger=TRIGGER,
            share=args.share,
            triggered_copies={seed: copies for seed, (_, copies) in poisoned.items()},
            weights=weights,
            candidates=args.candidates,
            updates=args.steps,
            classifier=classifier_stats,
            runs=rows,
        )

    log = cell_log_path(args.out, runs, args.fresh)
    rows = run_grid(train_and_measure, cells, settings, log, args.jobs, write)
    write(rows, complete=True)
    print(markdown_table(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
