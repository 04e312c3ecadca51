"""The data and the measure of recipes/seqpe: Multi30k English captions packed into prefix-LM
examples of at most N positions, and teacher-forced perplexity framed as in training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from seqweave.data.framing import frame_source
from seqweave.data.readers import read_examples
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.tokenizers import Tokenizer, build_tokenizer
from seqweave.train.data import collate

DATA = Path("../shared/data/multi30k-en-de")
LENGTH = 64  # the training length L
LENGTHS = (LENGTH, 2 * LENGTH, 4 * LENGTH)
VOCAB = 1000


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
