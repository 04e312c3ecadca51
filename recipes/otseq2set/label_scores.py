"""Decoding and scoring of recipes/otseq2set's models: greedy and no-repeat outputs, micro
precision / recall / F1, exact sets, and where the decoding steps go."""

from __future__ import annotations

import statistics

import torch
from label_tasks import EMPTY, EOS, FIRST_LABEL, PAD, Task

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_many
from seqweave.decoding.common import pad_batch


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
