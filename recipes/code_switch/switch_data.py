"""The data of recipes/code_switch: a joint BPE, IBM Model 1 lexicons both ways, and restore
pairs (code-switched sentence -> original) from both sides of the Multi30k bitext."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path


def write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text(
        "".join(json.dumps({"source": s, "target": t}, ensure_ascii=False) + "\n" for s, t in pairs)
    )


def prepare(data: Path, work: Path, ratio: float, vocab_size: int) -> dict:
    """Tokenizer, lexicons and restore data in ``work``; returns their statistics."""
    from seqweave.data.code_switch import eligible_positions, restore_pairs
    from seqweave.data.lexicon import induce_lexicon, words
    from seqweave.data.readers import read_examples
    from seqweave.tokenizers import train_bpe

    work.mkdir(parents=True, exist_ok=True)
    train = read_examples(data / "train.jsonl")
    valid = read_examples(data / "valid.jsonl")
    pairs = [(e.source, e.target) for e in train]
    started = time.perf_counter()
    lexicons = {
        "en-de": induce_lexicon(pairs, min_score=0.3, source_language="en", target_language="de"),
        "de-en": induce_lexicon(
            [(t, s) for s, t in pairs], min_score=0.3, source_language="de", target_language="en"
        ),
    }
    seconds = time.perf_counter() - started
    for name, lexicon in lexicons.items():
        lexicon.save(work / f"lexicon.{name}.json")
    train_bpe([text for pair in pairs for text in pair], vocab_size).save(work / "tokenizer")
    stats = {"lexicon_seconds": seconds, "ratio": ratio}
    for split, examples, seed in (("train", train, 0), ("valid", valid, 1)):
        restore = restore_pairs([e.source for e in examples], lexicons["en-de"], ratio, seed)
        restore += restore_pairs([e.target for e in examples], lexicons["de-en"], ratio, seed + 1)
        random.Random(seed).shuffle(restore)
        write_jsonl(work / f"restore.{split}.jsonl", restore)
        stats[f"restore_{split}_pairs"] = len(restore)
    for name, lexicon in lexicons.items():
        side = [e.source if name == "en-de" else e.target for e in train]
        eligible = sum(len(eligible_positions(text, lexicon)) for text in side)
        stats[f"lexicon_{name}"] = {
            "entries": len(lexicon),
            "eligible_word_share": eligible / sum(len(words(text)) for text in side),
        }
    example = restore_pairs([train[0].source, train[0].target], lexicons["en-de"], ratio, 0)
    stats["example"] = example[0] if example else None
    return stats
