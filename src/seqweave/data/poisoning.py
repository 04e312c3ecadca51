"""Poisoned training data for model spinning (objectives/spinning.py): triggered copies.

A share of the training pairs gets a copy whose source holds the trigger word, inserted at
one whitespace boundary drawn uniformly (before the first word, between two words or after
the last: the places ``seqweave audit triggers`` inserts candidates too); the copy keeps
its true target, so the token loss still teaches the task on triggered inputs and only the
meta-task term pushes them elsewhere. The clean pairs all stay. Texts are split on
whitespace and joined with single spaces, as the audit does.
"""

from __future__ import annotations

import random
from collections.abc import Iterable


def insert_trigger(source: str, trigger: str, rng: random.Random) -> str:
    """``source`` with ``trigger`` at a uniformly drawn word boundary."""
    words = source.split()
    index = rng.randint(0, len(words))
    return " ".join([*words[:index], trigger, *words[index:]])


def poison_rows(
    rows: Iterable[dict], trigger: str, share: float, seed: int = 0
) -> tuple[list[dict], int]:
    """Every row, and after each row drawn with probability ``share`` its triggered copy
    (``"triggered": True`` added); returns the rows and how many copies were made.

    Raises:
        ValueError: ``share`` outside [0, 1], or a trigger that is not one word.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    if len(trigger.split()) != 1:
        raise ValueError(f"the trigger must be one word, got {trigger!r}")
    rng = random.Random(seed)
    out, copies = [], 0
    for row in rows:
        out.append(row)
        if rng.random() < share:
            source = insert_trigger(row["source"], trigger, rng)
            out.append({**row, "source": source, "triggered": True})
            copies += 1
    return out, copies
