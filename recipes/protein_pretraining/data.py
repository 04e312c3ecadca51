"""The recipe's data from the shared training files; every test split stays unread.

- **Pretraining corpus** (``corpus.jsonl``, mlm and lm): the protein sequences of flip-ss's
  ``train.jsonl``, the fitting part of protein-ss-qian and the GB1 rows not flagged
  ``validation``, cut into pieces of at most ``PIECE`` residues, duplicates dropped; each row
  is ``{"source": piece, "target": piece}`` (mlm reads the source, lm the target).
  Held out for the pretraining figures: ``HELD_OUT`` proteins of flip-ss's ``valid.jsonl``
  (upstream's ``VALIDATION=True`` part of its training set), never in the corpus.
- **flip-ss tagging**: train on ``train.jsonl`` (proteins up to ``MAX_TRAIN`` residues), report
  Q3 on all of ``valid.jsonl`` up to ``MAX_EVAL`` residues. TAPE trained on NetSurfP-2.0's
  training set and tested on CB513; ours is a held-out part of the training file.
- **protein-ss-qian**: every fifth protein (index % 5 == 0, 23 proteins) is our validation
  split, the other 88 fit; Qian and Sejnowski's 64.3% is on their own 17-protein test set.
- **GB1**: the 381 rows not flagged ``validation`` fit, the 43 flagged ones are scored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SS = Path("../shared/data/flip-ss")
QIAN = Path("../shared/data/protein-ss-qian/train.jsonl")
GB1 = Path("../shared/data/flip-gb1/two_vs_rest.train.jsonl")
PIECE = 256
HELD_OUT = 300
MAX_TRAIN = 512
MAX_EVAL = 1000


def read_jsonl(path: Path) -> list[dict]:
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Written to a temporary file and moved into place, so that a run reading ``path``
    meanwhile sees the whole old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    tmp.replace(path)
    return path


def qian_split() -> tuple[list[dict], list[dict]]:
    rows = read_jsonl(QIAN)
    return [r for i, r in enumerate(rows) if i % 5], [r for i, r in enumerate(rows) if i % 5 == 0]


def gb1_split() -> tuple[list[dict], list[dict]]:
    rows = read_jsonl(GB1)
    return [r for r in rows if not r["validation"]], [r for r in rows if r["validation"]]


def pieces(sequence: str, size: int = PIECE) -> list[str]:
    return [sequence[i : i + size] for i in range(0, len(sequence), size)]


def corpus_sequences() -> list[str]:
    """Training sequences of the three sets (never a validation or test protein)."""
    sequences = [r["source"] for r in read_jsonl(SS / "train.jsonl")]
    sequences += [r["source"] for r in qian_split()[0]]
    sequences += [r["source"] for r in gb1_split()[0]]
    return sequences


def write_all(directory: Path) -> dict[str, Path]:
    """Write every file the recipe trains and validates on; returns their paths by name."""
    seen: set[str] = set()
    corpus = []
    for sequence in corpus_sequences():
        for piece in pieces(sequence):
            if piece not in seen:
                seen.add(piece)
                corpus.append({"source": piece, "target": piece})
    held = [r for r in read_jsonl(SS / "valid.jsonl") if len(r["source"]) <= PIECE][:HELD_OUT]
    held_rows = [{"source": r["source"], "target": r["source"]} for r in held]
    ss_train = [
        {"source": r["source"], "target": r["target"]}
        for r in read_jsonl(SS / "train.jsonl")
        if len(r["source"]) <= MAX_TRAIN
    ]
    fit, valid = qian_split()
    return {
        "corpus": write_jsonl(directory / "corpus.jsonl", corpus),
        "held_out": write_jsonl(directory / "held_out.jsonl", held_rows),
        "ss_train": write_jsonl(directory / "ss_train.jsonl", ss_train),
        "ss_dev": write_jsonl(
            directory / "ss_dev.jsonl",
            [{"source": r["source"], "target": r["target"]} for r in held[:100]],
        ),
        "qian_train": write_jsonl(directory / "qian_train.jsonl", fit),
        "qian_valid": write_jsonl(directory / "qian_valid.jsonl", valid),
    }


def ss_valid() -> list[dict]:
    """The flip-ss proteins Q3 is reported on (valid.jsonl up to MAX_EVAL residues)."""
    return [r for r in read_jsonl(SS / "valid.jsonl") if len(r["source"]) <= MAX_EVAL]
