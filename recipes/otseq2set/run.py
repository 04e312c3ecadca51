"""OTSeq2Set (Cao & Zhang 2022): label sets by matching and optimal transport vs a fixed order.

    .venv/bin/python recipes/otseq2set/run.py [--quick] [--tasks keywords,e2e]
        [--variants seq2seq,seq2set,otseq2set] [--seeds 1,2] [--steps N]
        [--no-repeat] [--device cpu|cuda] [--jobs N] [--out FILE] [--fresh]

Two multi-label tasks, each predicted as a label set from a text:

- ``keywords`` (synthetic): a text of 12-20 random filler words into which each
  gold label puts one of its two keywords at a random place; 0-2 distractors
  (``not`` followed by the keyword of a label that is absent) are added too.
  24 labels drawn with Zipf-like weights, 1 to 6 per text. The text gives no
  order to the labels: any fixed order is a convention the model has to learn.
- ``e2e`` (real): the E2E restaurant descriptions (../shared/data/e2e); labels are
  the meaning representation's ``slot[value]`` strings (79 distinct, 3 to 8 per
  text). Train on train.jsonl, score on all of valid.jsonl. Crowd-workers left out
  some slots, so no model can reach 100 %.

Three models of the same size (an encoder-decoder Transformer from
``seqweave.models``; labels are vocabulary tokens):

- ``seq2seq``: the fixed-order baseline (SGM-style): labels sorted by training
  frequency, most frequent first, then the end token; teacher-forced MLE;
  greedy decoding until the end token;
- ``seq2set``: student forcing for T steps (T = the task's largest set) and the
  Hungarian matching loss with EMPTY padding (``objectives.set_matching``);
- ``otseq2set``: the same plus the IPOT optimal-transport term (weight ``--ot-weight``).

The set models decode greedily for T tokens with ``seqweave.decoding``; EMPTY and
repeats are dropped. Scores on held-out texts: micro precision, recall and F1,
exact set match and mean absolute set-size error, and a diagnosis of where the
decoding steps go (a repeated label, EMPTY while gold labels are still missing, a
wrong label; ``diagnose``). ``--no-repeat`` scores each trained model a second time
with labels already written masked out of later steps (inference only). Runs
(task x model x seed) are a grid (``seqweave.harness``); ``--jobs N`` trains N at a time
in separate processes (one CPU thread each, or sharing one GPU with ``--device cuda``),
and a cut-off run resumes with the runs it has not finished. The models train in this
file's loop, not ``seqweave.train``: the trainer reads text through a tokenizer and has no
set-matching objective (student-forced rollout, Hungarian matching, the OT term), and all
three models share this loop so that they differ only in their loss. Writes
recipes/otseq2set/results.json (or ``--out``) and prints a table. Run from the repository
root.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from seqweave.config import DecodeConfig, ModelConfig
from seqweave.decoding import decode_many
from seqweave.decoding.common import pad_batch
from seqweave.harness import (
    add_run_arguments,
    cell_log_path,
    grid,
    run_grid,
    seed_list,
    summarise,
    write_results,
)
from seqweave.models import build_model
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.objectives.set_matching import (
    ot_loss,
    output_embeddings,
    pad_sets,
    set_matching_loss,
    student_forced_log_probs,
)

ROOT = Path(__file__).resolve().parents[2]
E2E = Path("../shared/data/e2e")
PAD, BOS, EOS, EMPTY = 0, 1, 2, 3
FIRST_LABEL = 4
VARIANTS = ("seq2seq", "seq2set", "otseq2set")
MAX_SOURCE = 63  # words per text, before the end token


@dataclass
class Task:
    """Texts as token ids (each ending with the end token) and gold label sets as token ids;
    ``labels`` names the label tokens, which come first after the specials."""

    name: str
    vocab_size: int
    labels: list[str]
    steps: int  # the largest gold set: the set decoder's number of steps
    train: list[tuple[list[int], list[int]]]
    test: list[tuple[list[int], list[int]]]


# -- tasks --------------------------------------------------------------------------------------


def keyword_example(rng: random.Random, num_labels: int, fillers: int) -> tuple[list, list]:
    """Text tokens (as label / filler / ``not`` markers) and the gold label indices."""
    weights = [1.0 / (rank + 1) ** 0.7 for rank in range(num_labels)]
    size = rng.randint(1, 6)
    gold: list[int] = []
    while len(gold) < size:
        label = rng.choices(range(num_labels), weights)[0]
        if label not in gold:
            gold.append(label)
    text: list[tuple] = [("filler", rng.randrange(fillers)) for _ in range(rng.randint(12, 20))]
    for label in gold:
        text.insert(rng.randint(0, len(text)), ("keyword", 2 * label + rng.randrange(2)))
    absent = [label for label in range(num_labels) if label not in gold]
    for label in rng.sample(absent, rng.randint(0, 2)):
        place = rng.randint(0, len(text))
        text[place:place] = [("not",), ("keyword", 2 * label + rng.randrange(2))]
    return text, gold


def keywords_task(train_size: int, test_size: int, seed: int) -> Task:
    num_labels, fillers = 24, 100
    first_word = FIRST_LABEL + num_labels  # then: not, 2 keywords per label, fillers

    def ids(text):
        out = []
        for item in text:
            if item[0] == "not":
                out.append(first_word)
            elif item[0] == "keyword":
                out.append(first_word + 1 + item[1])
            else:
                out.append(first_word + 1 + 2 * num_labels + item[1])
        return [*out, EOS]

    def examples(count, rng):
        rows = []
        for _ in range(count):
            text, gold = keyword_example(rng, num_labels, fillers)
            rows.append((ids(text), [FIRST_LABEL + label for label in gold]))
        return rows

    return Task(
        name="keywords",
        vocab_size=first_word + 1 + 2 * num_labels + fillers,
        labels=[f"label{i}" for i in range(num_labels)],
        steps=6,
        train=examples(train_size, random.Random(seed)),
        test=examples(test_size, random.Random(10_000)),  # one test set for every seed
    )


def split_slots(mr: str) -> list[str]:
    """``name[X], food[Y]`` -> ``["name[X]", "food[Y]"]`` (values may contain commas)."""
    return [slot.strip() for slot in re.split(r",\s*(?=[a-zA-Z ]+\[)", mr)]


def words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def e2e_task() -> Task:
    rows = {
        split: [json.loads(line) for line in (E2E / f"{split}.jsonl").open(encoding="utf-8")]
        for split in ("train", "valid")
    }
    label_counts = Counter(s for row in rows["train"] for s in split_slots(row["source"]))
    labels = sorted(label_counts)
    word_counts = Counter(w for row in rows["train"] for w in words(row["target"]))
    vocabulary = sorted(w for w, n in word_counts.items() if n >= 2)
    first_word = FIRST_LABEL + len(labels) + 1  # after the labels: one unknown-word token
    unknown = first_word - 1
    word_id = {w: first_word + i for i, w in enumerate(vocabulary)}
    label_id = {label: FIRST_LABEL + i for i, label in enumerate(labels)}

    def examples(split):
        out = []
        for row in rows[split]:
            text = [word_id.get(w, unknown) for w in words(row["target"])][:MAX_SOURCE]
            gold = [label_id[s] for s in split_slots(row["source"]) if s in label_id]
            out.append(([*text, EOS], gold))
        return out

    train = examples("train")
    return Task(
        name="e2e",
        vocab_size=first_word + len(vocabulary),
        labels=labels,
        steps=max(len(gold) for _, gold in train),
        train=train,
        test=examples("valid"),
    )


def build_task(name: str, quick: bool) -> Task:
    if name == "keywords":
        return keywords_task(20_000 if quick else 100_000, 2000, seed=1)
    if name == "e2e":
        return e2e_task()
    raise SystemExit(f"unknown task {name!r}; tasks: keywords, e2e")


# -- training -----------------------------------------------------------------------------------


def frequency_order(task: Task) -> dict[int, int]:
    """Rank of each label in the baseline's fixed order: most frequent in training first."""
    counts = Counter(label for _, gold in task.train for label in gold)
    ranked = sorted(counts, key=lambda label: (-counts[label], label))
    return {label: rank for rank, label in enumerate(ranked)}


def batch_loss(model, variant: str, batch, task: Task, order, ot_weight: float, device):
    sources = [source for source, _ in batch]
    gold = [labels for _, labels in batch]
    src, lengths = pad_batch(sources, PAD, device)
    if variant == "seq2seq":
        ordered = [sorted(labels, key=order.__getitem__) for labels in gold]
        tgt, _ = pad_batch([[BOS, *labels, EOS] for labels in ordered], PAD, device)
        loss, _ = label_smoothed_nll(model(src, lengths, tgt[:, :-1]), tgt[:, 1:], PAD)
        return loss / (tgt[:, 1:] != PAD).sum()
    log_probs, _ = student_forced_log_probs(model, src, lengths, task.steps)
    nll, _ = set_matching_loss(log_probs, gold, EMPTY)
    loss = nll / log_probs.shape[:2].numel()
    if variant == "otseq2set":
        padded = pad_sets(gold, task.steps, EMPTY).to(device)
        loss = loss + ot_weight * ot_loss(log_probs, output_embeddings(model), padded) / len(gold)
    return loss


def greedy_outputs(model, variant: str, task: Task) -> list[list[int]]:
    """Greedy decoding (``seqweave.decoding``); the set model runs T steps, the sequence
    model until its end token. Tokens after the start token, without the end token."""
    steps = task.steps if variant != "seq2seq" else task.steps + 1
    cfg = DecodeConfig(decoder="greedy", max_new_tokens=steps, batch_size=256)
    return [out.tokens for out in decode_many(model, [source for source, _ in task.test], cfg)]


@torch.no_grad()
def no_repeat_outputs(
    model, variant: str, task: Task, device, forbid: bool = True
) -> list[list[int]]:
    """Greedy decoding in which a label already written in a row is masked out of that
    row's later steps (EMPTY and the end token stay allowed): the set decoding constraint,
    at inference only. Written on the decoder-state API (``encode``/``start``/``step``),
    since ``seqweave.decoding`` has no logit hook; with ``forbid=False`` it is plain greedy
    and gives ``greedy_outputs``' tokens (checked on every scoring run)."""
    steps = task.steps if variant != "seq2seq" else task.steps + 1
    first, last = FIRST_LABEL, FIRST_LABEL + len(task.labels)
    rows: list[list[int]] = []
    for start in range(0, len(task.test), 256):
        sources = [source for source, _ in task.test[start : start + 256]]
        src, lengths = pad_batch(sources, PAD, device)
        state = model.start(model.encode(src, lengths), capacity=steps)
        token = torch.full((len(sources), 1), model.config.decoder_start_id, device=device)
        written = torch.zeros(len(sources), model.config.vocab_size, dtype=torch.bool)
        written = written.to(device)
        outputs = []
        for _ in range(steps):
            logits = model.step(state, token)[:, -1].float()  # (B, V)
            if forbid:
                logits = logits.masked_fill(written, float("-inf"))
            token = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            is_label = (token >= first) & (token < last)
            written.scatter_(1, token, is_label)
            outputs.append(token)
        for row in torch.cat(outputs, dim=1).tolist():
            rows.append(row[: row.index(EOS)] if EOS in row else row)
    return rows


def diagnose(outputs: list[list[int]], gold: list[list[int]], task: Task) -> dict[str, float]:
    """Where a row's steps go, summed over the test texts: a label already written in that
    row (``repeat``), EMPTY beyond the T - |gold| steps the gold set leaves over while gold
    labels remain unmatched (``excess_empty``), a label not in the gold set (``wrong``,
    counted once per distinct label). ``missed_labels_per_text`` is the mean number of gold
    labels not predicted. Rates are per decoding step (end tokens not counted)."""
    first, last = FIRST_LABEL, FIRST_LABEL + len(task.labels)
    steps = repeats = excess_empty = wrong = missed = short = 0
    for tokens, labels in zip(outputs, gold, strict=True):
        seen: set[int] = set()
        empties = 0
        for t in tokens:
            steps += 1
            if t == EMPTY:
                empties += 1
            elif first <= t < last:
                if t in seen:
                    repeats += 1
                seen.add(t)
        missing = len(set(labels) - seen)
        missed += missing
        wrong += len(seen - set(labels))
        short += len(seen) < len(labels)
        if missing:
            excess_empty += max(0, empties - (task.steps - len(labels)))
    n, steps = len(gold), max(steps, 1)
    return {
        "repeat_rate": repeats / steps,
        "empty_rate": excess_empty / steps,
        "wrong_rate": wrong / steps,
        "repeats_per_text": repeats / n,
        "excess_empty_per_text": excess_empty / n,
        "wrong_labels_per_text": wrong / n,
        "missed_labels_per_text": missed / n,
        "short_set_fraction": short / n,
    }


def label_set(tokens: list[int], task: Task) -> set[int]:
    """EMPTY, the end token and repeats dropped."""
    return {t for t in tokens if FIRST_LABEL <= t < FIRST_LABEL + len(task.labels)}


def scores(predicted: list[set[int]], gold: list[list[int]]) -> dict[str, float]:
    pairs = list(zip(predicted, [set(g) for g in gold], strict=True))
    hits = sum(len(p & g) for p, g in pairs)
    n_predicted, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    precision = hits / max(n_predicted, 1)
    recall = hits / n_gold
    return {
        "micro_precision": precision,
        "micro_recall": recall,
        "micro_f1": 2 * hits / (n_predicted + n_gold),
        "exact_set_match": statistics.mean(p == g for p, g in pairs),
        "set_size_error": statistics.mean(abs(len(p) - len(g)) for p, g in pairs),
    }


def train_and_score(cell: dict, settings: dict) -> dict:
    """Train one model on one task with one seed and score it; runs in a worker process."""
    task_name, variant, seed, device = (
        cell["task"],
        cell["variant"],
        cell["seed"],
        settings["device"],
    )
    if device == "cpu":
        torch.set_num_threads(1)
    task = build_task(task_name, settings["quick"])
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=task.vocab_size,
        d_model=settings["d_model"],
        num_heads=4,
        encoder_layers=settings["layers"],
        decoder_layers=settings["layers"],
        ffn_dim=2 * settings["d_model"],
        dropout=0.1,
        max_positions=MAX_SOURCE + 1,
    )
    model = build_model(cfg).to(device).train()
    steps = settings["steps"]
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings["lr"], total_steps=steps, pct_start=0.05
    )
    order = frequency_order(task)
    rng = random.Random(seed)
    started = time.perf_counter()
    for _ in range(steps):
        batch = rng.sample(task.train, settings["batch_size"])
        loss = batch_loss(model, variant, batch, task, order, settings["ot_weight"], device)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - started
    model.eval()
    gold = [g for _, g in task.test]
    outputs = greedy_outputs(model, variant, task)
    result = scores([label_set(out, task) for out in outputs], gold)
    result["diagnosis"] = diagnose(outputs, gold, task)
    if settings["no_repeat"]:
        plain = no_repeat_outputs(model, variant, task, device, forbid=False)
        if plain != outputs:
            raise RuntimeError("the step-by-step decoder disagrees with greedy decoding")
        masked = no_repeat_outputs(model, variant, task, device)
        result["no_repeat"] = scores([label_set(out, task) for out in masked], gold)
        result["no_repeat"]["diagnosis"] = diagnose(masked, gold, task)
    print(
        f"{task_name:9} {variant:10} seed {seed}: micro-F1 {100 * result['micro_f1']:5.1f}  "
        f"exact {100 * result['exact_set_match']:5.1f}  size error "
        f"{result['set_size_error']:.3f}  ({seconds:.0f} s)",
        flush=True,
    )
    return {**result, "final_loss": loss.item(), "train_seconds": seconds}


# -- report -------------------------------------------------------------------------------------

TASKS = {
    "keywords": "synthetic: 24 labels, 1-6 per text, keywords at random places among "
    "12-20 fillers, 0-2 negated distractors; 2,000 test texts",
    "e2e": "E2E descriptions -> slot[value] labels (79, 3-8 per text); train.jsonl, "
    "scored on all 4,672 rows of valid.jsonl",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the smaller CPU configuration")
    parser.add_argument("--tasks", default="keywords,e2e")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--steps", type=int, help="updates per run (default 2000; quick 400)")
    parser.add_argument("--d-model", type=int, help="model width (default 128; quick 64)")
    parser.add_argument("--layers", type=int, help="encoder and decoder layers (3; quick 2)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ot-weight", type=float, default=0.5)
    parser.add_argument(
        "--no-repeat",
        action="store_true",
        help="also score each trained model with already-written labels masked at inference",
    )
    add_run_arguments(parser, ROOT / "recipes/otseq2set/results.json", jobs=2)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    settings = {
        "quick": args.quick,
        "steps": args.steps or (400 if args.quick else 2000),
        "d_model": args.d_model or (64 if args.quick else 128),
        "layers": args.layers or (2 if args.quick else 3),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "ot_weight": args.ot_weight,
        "device": args.device,
        "no_repeat": args.no_repeat,
    }
    tasks, seeds = args.tasks.split(","), seed_list(args.seeds)
    cells = grid(task=tasks, variant=args.variants.split(","), seed=seeds)

    def write(rows: list[dict]) -> dict:
        return write_results(
            args.out,
            seeds=seeds,
            device=args.device,
            jobs=args.jobs,
            started=started,
            complete=len(rows) == len(cells),
            tasks={task: TASKS[task] for task in tasks},
            training=settings,
            results=summarise(rows, by=("task", "variant")),
            runs=rows,
        )

    log = cell_log_path(args.out, "runs/otseq2set", args.fresh)
    result = write(run_grid(train_and_score, cells, settings, log, args.jobs, write))
    print_table(result["results"])
    print(f"wrote {args.out}")


def print_table(results: dict) -> None:
    """Means over seeds per task and model, greedy and (with --no-repeat) no-repeat."""
    print(
        f"\n{'task / model':22} {'decoding':10} {'micro-F1':>9} {'exact':>7} "
        f"{'size err':>9} {'repeat':>7} {'x-EMPTY':>8} {'wrong':>7} {'missed':>7}"
    )
    for group, figures in results.items():
        for name, prefix in (("greedy", ""), ("no-repeat", "no_repeat.")):
            if f"{prefix}micro_f1" not in figures:
                continue
            cells = [
                f"{100 * figures[prefix + 'micro_f1']['mean']:9.1f}",
                f"{100 * figures[prefix + 'exact_set_match']['mean']:7.1f}",
                f"{figures[prefix + 'set_size_error']['mean']:9.3f}",
                f"{figures[prefix + 'diagnosis.repeats_per_text']['mean']:7.3f}",
                f"{figures[prefix + 'diagnosis.excess_empty_per_text']['mean']:8.3f}",
                f"{figures[prefix + 'diagnosis.wrong_labels_per_text']['mean']:7.3f}",
                f"{figures[prefix + 'diagnosis.missed_labels_per_text']['mean']:7.3f}",
            ]
            print(f"{group:22} {name:10} " + " ".join(cells))
    print("(repeat, x-EMPTY, wrong, missed: per test text)")


if __name__ == "__main__":
    main()
