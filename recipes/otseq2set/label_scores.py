"""Decoding and scoring of recipes/otseq2set's trained models: greedy and no-repeat outputs,
micro precision / recall / F1, exact sets, and where the decoding steps go."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_many
from seqweave.decoding.common import pad_batch
from seqweave.objectives.set_matching import EMPTY_TOKEN


@dataclass
class TestSet:
    """A task's test texts as the model reads them and its gold sets as token ids; which
    ids are labels, and ``<empty>``. ``steps``: the set decoder's T."""

    sources: list[list[int]]
    gold: list[list[int]]
    labels: frozenset[int]
    empty_id: int
    eos_id: int
    steps: int


def load_test_set(model, meta: dict) -> TestSet:
    """The test file of a prepared task (``label_tasks.prepare``), through the trained
    model's tokenizer; gold labels the tokenizer does not know are dropped (as they were
    before: a label never seen in training cannot be predicted)."""
    tokenizer = model.tokenizer
    rows = [json.loads(line) for line in Path(meta["test"]).read_text().splitlines()]
    labels = {tokenizer.token_to_id(label) for label in meta["labels"]} - {None}
    gold = [[t for t in tokenizer.encode(row["target"]) if t in labels] for row in rows]
    return TestSet(
        sources=model.encode_sources([row["source"] for row in rows]),
        gold=gold,
        labels=frozenset(labels),
        empty_id=tokenizer.token_to_id(EMPTY_TOKEN),
        eos_id=tokenizer.eos_id,
        steps=meta["steps"],
    )


def decode_steps(variant: str, test: TestSet) -> int:
    """The set model runs T steps; the sequence model at most T labels and its end token."""
    return test.steps if variant != "seq2seq" else test.steps + 1


def greedy_outputs(network, variant: str, test: TestSet) -> list[list[int]]:
    """Greedy decoding (``seqweave.decoding``); the set model runs T steps, the sequence
    model until its end token. Tokens after the start token, without the end token."""
    cfg = DecodeConfig(decoder="greedy", max_new_tokens=decode_steps(variant, test), batch_size=256)
    return [out.tokens for out in decode_many(network, test.sources, cfg)]


@torch.no_grad()
def no_repeat_outputs(
    network, variant: str, test: TestSet, device, forbid: bool = True
) -> list[list[int]]:
    """Greedy decoding in which a label already written in a row is masked out of that
    row's later steps (EMPTY and the end token stay allowed): the set decoding constraint,
    at inference only. Written on the decoder-state API (``encode``/``start``/``step``),
    since ``seqweave.decoding`` has no logit hook; with ``forbid=False`` it is plain greedy
    and gives ``greedy_outputs``' tokens (checked on every scoring run)."""
    steps = decode_steps(variant, test)
    is_label = torch.zeros(network.config.vocab_size, dtype=torch.bool, device=device)
    is_label[list(test.labels)] = True
    rows: list[list[int]] = []
    for start in range(0, len(test.sources), 256):
        sources = test.sources[start : start + 256]
        src, lengths = pad_batch(sources, network.config.pad_id, device)
        state = network.start(network.encode(src, lengths), capacity=steps)
        token = torch.full((len(sources), 1), network.config.decoder_start_id, device=device)
        written = torch.zeros(len(sources), network.config.vocab_size, dtype=torch.bool)
        written = written.to(device)
        outputs = []
        for _ in range(steps):
            logits = network.step(state, token)[:, -1].float()  # (B, V)
            if forbid:
                logits = logits.masked_fill(written, float("-inf"))
            token = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            written.scatter_(1, token, is_label[token])
            outputs.append(token)
        for row in torch.cat(outputs, dim=1).tolist():
            rows.append(row[: row.index(test.eos_id)] if test.eos_id in row else row)
    return rows


def diagnose(outputs: list[list[int]], test: TestSet) -> dict[str, float]:
    """Where a row's steps go, summed over the test texts: a label already written in that
    row (``repeat``), EMPTY beyond the T - |gold| steps the gold set leaves over while gold
    labels remain unmatched (``excess_empty``), a label not in the gold set (``wrong``,
    counted once per distinct label). ``missed_labels_per_text`` is the mean number of gold
    labels not predicted. Rates are per decoding step (end tokens not counted)."""
    steps = repeats = excess_empty = wrong = missed = short = 0
    for tokens, labels in zip(outputs, test.gold, strict=True):
        seen: set[int] = set()
        empties = 0
        for t in tokens:
            steps += 1
            if t == test.empty_id:
                empties += 1
            elif t in test.labels:
                if t in seen:
                    repeats += 1
                seen.add(t)
        missing = len(set(labels) - seen)
        missed += missing
        wrong += len(seen - set(labels))
        short += len(seen) < len(labels)
        if missing:
            excess_empty += max(0, empties - (test.steps - len(labels)))
    n, steps = len(test.gold), max(steps, 1)
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


def label_set(tokens: list[int], test: TestSet) -> set[int]:
    """EMPTY, the end token, other words and repeats dropped."""
    return {t for t in tokens if t in test.labels}


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
