"""The two label-set tasks of recipes/otseq2set as texts: a source text of words and a gold
set of label words, one word per label (synthetic keywords, and E2E slot[value] sets).

``prepare`` writes a task's training and test files (JSON lines, ``source`` and
``target``: the labels most frequent in training first, the fixed order of the seq2seq
baseline; the set models read the same target as a set) and builds the one words
tokenizer all of the task's runs share, ``<empty>`` included.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

E2E = Path("../shared/data/e2e")
MAX_SOURCE = 63  # words per text, before the end token


@dataclass
class Task:
    """Source texts (words separated by single spaces) and gold label sets (label words);
    ``steps`` is the largest training set: the set decoder's number of steps."""

    name: str
    steps: int
    train: list[tuple[str, list[str]]]
    test: list[tuple[str, list[str]]]


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


def keyword_words(text: list[tuple]) -> str:
    """``not``, ``kw<k>`` (two keywords per label) and ``filler<f>``, separated by spaces."""
    names = {"not": lambda item: "not", "keyword": lambda item: f"kw{item[1]}"}
    return " ".join(names.get(item[0], lambda item: f"filler{item[1]}")(item) for item in text)


def keywords_task(train_size: int, test_size: int, seed: int) -> Task:
    num_labels, fillers = 24, 100

    def examples(count, rng):
        rows = []
        for _ in range(count):
            text, gold = keyword_example(rng, num_labels, fillers)
            rows.append((keyword_words(text), [f"label{label}" for label in gold]))
        return rows

    return Task(
        name="keywords",
        steps=6,
        train=examples(train_size, random.Random(seed)),
        test=examples(test_size, random.Random(10_000)),  # one test set for every seed
    )


def split_slots(mr: str) -> list[str]:
    """``name[X], food[Y]`` -> ``["name[X]", "food[Y]"]`` (values may contain commas)."""
    return [slot.strip() for slot in re.split(r",\s*(?=[a-zA-Z ]+\[)", mr)]


def label_word(slot: str) -> str:
    """One word per label: ``customer rating[5 out of 5]`` -> ``customer_rating[5_out_of_5]``."""
    return "_".join(slot.split())


def words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def e2e_task() -> Task:
    rows = {
        split: [json.loads(line) for line in (E2E / f"{split}.jsonl").open(encoding="utf-8")]
        for split in ("train", "valid")
    }
    known = {label_word(s) for row in rows["train"] for s in split_slots(row["source"])}

    def examples(split):
        out = []
        for row in rows[split]:
            text = " ".join(words(row["target"])[:MAX_SOURCE])
            gold = [label_word(s) for s in split_slots(row["source"])]
            out.append((text, [label for label in gold if label in known]))
        return out

    train = examples("train")
    return Task("e2e", max(len(gold) for _, gold in train), train, examples("valid"))


def build_task(name: str, quick: bool) -> Task:
    if name == "keywords":
        return keywords_task(20_000 if quick else 100_000, 2000, seed=1)
    if name == "e2e":
        return e2e_task()
    raise SystemExit(f"unknown task {name!r}; tasks: keywords, e2e")


def frequency_order(task: Task) -> dict[str, int]:
    """Rank of each label in the baseline's fixed order: most frequent in training first."""
    counts = Counter(label for _, gold in task.train for label in gold)
    ranked = sorted(counts, key=lambda label: (-counts[label], label))
    return {label: rank for rank, label in enumerate(ranked)}


def write_examples(path: Path, rows: list[tuple[str, list[str]]], order: dict[str, int]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for source, gold in rows:
            target = " ".join(sorted(gold, key=lambda label: order.get(label, len(order))))
            handle.write(json.dumps({"source": source, "target": target}) + "\n")


def prepare(name: str, quick: bool, directory: Path, tokenizer_config) -> dict:
    """Write the task's train.jsonl and test.jsonl and its words tokenizer (built from the
    training texts, ``tokenizer_config``'s ``min_frequency``) under ``directory``, unless
    there already; returns their paths, the labels and the number of set steps."""
    from seqweave.objectives.set_matching import EMPTY_TOKEN
    from seqweave.tokenizers import build_tokenizer

    meta_path = directory / "task.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    task = build_task(name, quick)
    order = frequency_order(task)
    directory.mkdir(parents=True, exist_ok=True)
    write_examples(directory / "train.jsonl", task.train, order)
    write_examples(directory / "test.jsonl", task.test, order)
    texts = [text for source, gold in task.train for text in (source, " ".join(gold))]
    kind, minimum = tokenizer_config.kind, tokenizer_config.min_frequency
    tokenizer = build_tokenizer(kind, texts, 0, (EMPTY_TOKEN,), None, minimum)
    tokenizer.save(directory / "tokenizer")
    meta = {
        "train": str(directory / "train.jsonl"),
        "test": str(directory / "test.jsonl"),
        "tokenizer": str(directory / "tokenizer"),
        "labels": sorted(order, key=order.get),
        "steps": task.steps,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta
