"""The data of recipes/e2s2: unlabelled English for pretraining (minus any sentence that is a
held-out GEC target), synthetic GEC splits, a JFLEG copy and the shared BPE with ``<mask>``."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from seqweave.data.readers import read_examples
from seqweave.objectives.e2s2 import MASK_TOKEN
from seqweave.tokenizers import build_tokenizer
from seqweave.train.validate import references

SHARED = Path("../shared/data")
DATA = Path("runs/e2s2/data")


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def prepare_data(vocab_size: int = 4000) -> dict[str, str]:
    """Splits and the shared tokenizer; rebuilt only when missing. Returns their paths."""
    DATA.mkdir(parents=True, exist_ok=True)
    paths = {
        name: DATA / f"{name}.jsonl"
        for name in ("pretrain", "pretrain_valid", "gec_train", "gec_valid", "gec_test")
    }
    paths["tokenizer"] = DATA / "tokenizer"
    paths["jfleg"] = DATA / "jfleg_dev.jsonl"  # a copy, so that runs need nothing but DATA
    if not paths["jfleg"].exists():
        jfleg = read_examples(SHARED / "jfleg" / "dev.jsonl")
        rows = [{"source": e.source, "references": references(e)} for e in jfleg]
        write_jsonl(paths["jfleg"], [{**row, "target": row["references"][0]} for row in rows])
    if all(p.exists() for p in paths.values()):
        return {name: str(path) for name, path in paths.items()}
    gec = read_examples(SHARED / "gec-synth" / "train.jsonl")
    order = list(range(len(gec)))
    random.Random(0).shuffle(order)
    test, valid, rest = order[:1000], order[1000:1300], order[1300:]

    def pair(i: int) -> dict:
        return {"source": gec[i].source, "target": gec[i].target}

    write_jsonl(paths["gec_test"], [pair(i) for i in test])
    write_jsonl(paths["gec_valid"], [pair(i) for i in valid])
    write_jsonl(paths["gec_train"], [pair(i) for i in rest])
    held_out = {normalise(gec[i].target) for i in test + valid}
    english = [e.source for e in read_examples(SHARED / "multi30k-en-de" / "train.jsonl")]
    english += [e.target for e in read_examples(SHARED / "e2e" / "train.jsonl")]
    text = sorted({t for t in english if normalise(t) not in held_out})
    random.Random(1).shuffle(text)
    write_jsonl(paths["pretrain"], [{"source": t, "target": t} for t in text])
    valid_text = [e.source for e in read_examples(SHARED / "multi30k-en-de" / "valid.jsonl")]
    write_jsonl(paths["pretrain_valid"], [{"source": t, "target": t} for t in valid_text])
    corpus = text + [gec[i].source for i in rest] + [gec[i].target for i in rest]
    tokenizer = build_tokenizer("bpe", corpus, vocab_size, (MASK_TOKEN,), None)
    tokenizer.save(paths["tokenizer"])
    return {name: str(path) for name, path in paths.items()}
