"""The synthetic long-range recall task of the SeqBoat recipe (associative recall).

A source of ``length`` words: filler words ``f0..f15`` everywhere, ``pairs`` marked
key-value words ``kIvJ`` (one word: key I among 8, all distinct, value J among 8) at
random places in the first half, and at the end a query word ``qI`` naming one of the
pairs' keys. The target is that pair's value ``vJ``: at least length/2 words back.

Why this task: the encoder-decoder's decoder reads the whole source through
cross-attention, so a task whose answer sits at a marker could be solved by the decoder
alone, whatever the encoder. Here the decoder (one layer, whose cross-attention query is
the start token's, the same for every example) cannot know which key is asked before it
reads the source, so the encoder must bring the value to the query: a lookup across at
least half the sequence inside the encoder, one attention hop for a model that attends.
The pair words and the query are the *marked* tokens; the recipe reports how often the
router activates them and the fillers.

Training data mixes lengths (``shortest``..``length``): learning the lookup from scratch
at 512 words alone is slow (the first gradients of attention are spread over every
filler), while the short examples teach it and the long ones keep it working at length.

Seeded: ``write_split(path, count, length, seed, shortest)`` writes the same file for the
same arguments.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

FILLERS, KEYS, VALUES = 16, 8, 8


def example(rng: random.Random, length: int, pairs: int = 4) -> dict[str, str]:
    """One source/target pair of ``length`` source words."""
    words = [f"f{rng.randrange(FILLERS)}" for _ in range(length - 1)]
    places = rng.sample(range(length // 2), pairs)
    keys = rng.sample(range(KEYS), pairs)
    values = [rng.randrange(VALUES) for _ in range(pairs)]
    for place, key, value in zip(places, keys, values, strict=True):
        words[place] = f"k{key}v{value}"
    asked = rng.randrange(pairs)
    words.append(f"q{keys[asked]}")
    return {"source": " ".join(words), "target": f"v{values[asked]}"}


def is_marked(word: str) -> bool:
    """A key-value word or the query (not a filler)."""
    return not word.startswith("f")


def write_split(
    path: Path, count: int, length: int, seed: int, shortest: int = 0, pairs: int = 4
) -> Path:
    """``count`` examples of ``length`` words, or of lengths drawn uniformly from
    ``shortest``..``length`` when ``shortest`` is set."""
    rng = random.Random(f"{seed}-{shortest}-{length}-{pairs}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for _ in range(count):
            n = rng.randint(shortest, length) if shortest else length
            handle.write(json.dumps(example(rng, n, pairs)) + "\n")
    return path
