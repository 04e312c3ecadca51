"""The two label-set tasks of recipes/otseq2set: texts as token ids and gold label sets as
label tokens (synthetic keywords, and E2E slot[value] sets)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

E2E = Path("../shared/data/e2e")
PAD, BOS, EOS, EMPTY = 0, 1, 2, 3
FIRST_LABEL = 4
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
