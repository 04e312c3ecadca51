"""The synthetic long-range recall task of the SeqBoat recipe (associative recall).

A source of ``length`` words: filler words ``f0..f15`` everywhere, ``pairs`` key-value
pairs ``kI vJ`` (distinct keys among ``k0..k15``, values among ``v0..v15``) at random,
non-overlapping places in the first half, and at the end a query ``? kI`` naming one of
the pairs' keys. The target is that pair's value ``vJ``: at least length/2 words back.

Why this task: the encoder-decoder's decoder reads the whole source through
cross-attention, so a task where the answer sits next to a marker could be solved by the
decoder alone, whatever the encoder. Here the decoder (one layer, whose cross-attention
query is the start token's, the same for every example) cannot know which key is asked
before it reads the source, so the encoder must bring the value to the query: a
long-range lookup inside the encoder. Keys, values and the query are the *marked* tokens;
the recipe reports how often the router activates them and the fillers.

Seeded: ``write_split(path, count, length, seed)`` writes the same file for the same
arguments.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

FILLERS, KEYS, VALUES = 16, 16, 16


def example(rng: random.Random, length: int, pairs: int = 4) -> dict[str, str]:
    """One source/target pair of ``length`` source words."""
    words = [f"f{rng.randrange(FILLERS)}" for _ in range(length - 2)]
    starts = rng.sample(range(0, length // 2 - 1, 2), pairs)  # even: pairs never overlap
    keys = rng.sample(range(KEYS), pairs)
    values = [rng.randrange(VALUES) for _ in range(pairs)]
    for start, key, value in zip(starts, keys, values, strict=True):
        words[start], words[start + 1] = f"k{key}", f"v{value}"
    asked = rng.randrange(pairs)
    words += ["?", f"k{keys[asked]}"]
    return {"source": " ".join(words), "target": f"v{values[asked]}"}


def is_marked(word: str) -> bool:
    """A key, a value or the query mark (not a filler)."""
    return not word.startswith("f")


def write_split(path: Path, count: int, length: int, seed: int, pairs: int = 4) -> Path:
    rng = random.Random(f"{seed}-{length}-{pairs}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for _ in range(count):
            handle.write(json.dumps(example(rng, length, pairs)) + "\n")
    return path
