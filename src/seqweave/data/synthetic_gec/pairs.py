"""Synthetic GEC data, part 3: (source, target) pair generation and train/valid/test splits."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from .corruption import corrupt
from .grammar import generate_sentence


def generate_pairs(
    n: int,
    seed: int,
    *,
    weights: Mapping[str, float] | None = None,
    error_counts: Sequence[float] | None = None,
) -> list[dict]:
    """n {source, target, errors} records with distinct targets, deterministic in `seed`.

    Distinct targets are what let write_splits cut held-out sets that share nothing with train.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    pairs: list[dict] = []
    for _ in range(20 * n + 1000):
        if len(pairs) == n:
            break
        target = generate_sentence(rng)
        if target not in seen:
            seen.add(target)
            source, errors = corrupt(target, rng, weights=weights, error_counts=error_counts)
            pairs.append({"source": source, "target": target, "errors": errors})
    if len(pairs) < n:
        raise ValueError(f"the grammar could not produce {n} distinct sentences")
    return pairs


def write_splits(
    out_dir: str | Path, n_train: int, n_valid: int, n_test: int, seed: int = 0
) -> dict[str, Path]:
    """Write train/valid/test JSON Lines files with disjoint targets; returns their paths.

    Test and valid are cut first, so they stay the same when only n_train changes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = generate_pairs(n_test + n_valid + n_train, seed)
    chunks = {"test": pairs[:n_test], "valid": pairs[n_test : n_test + n_valid]}
    chunks["train"] = pairs[n_test + n_valid :]
    paths = {}
    for split in ("train", "valid", "test"):
        paths[split] = out / f"{split}.jsonl"
        lines = (json.dumps(pair, ensure_ascii=False) + "\n" for pair in chunks[split])
        paths[split].write_text("".join(lines), encoding="utf-8")
    return paths
