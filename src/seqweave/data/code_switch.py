"""Code-switching: replace a share of a sentence's words by their lexicon translations.

The code-switching restore task (Zan et al. 2022) trains a seq2seq model to turn a
code-switched sentence back into the original, between pretraining and fine-tuning,
so that the encoder learns to read a word and its translation alike. This module
makes its examples: ``code_switch`` switches one sentence, ``restore_pairs`` a corpus.

A word is *eligible* when the lexicon translates it into a different word. Of the n
eligible words of a sentence, ``round(ratio * n)`` (halves up) are switched, chosen
uniformly by the caller's ``random.Random``; everything between words (spaces,
punctuation) is kept as it is. A switched sentence-initial capitalised word gives a
capitalised translation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from seqweave.data.lexicon import WORD, Lexicon
from seqweave.errors import ConfigError


@dataclass(frozen=True)
class Switched:
    text: str  # the code-switched sentence
    replaced: tuple[int, ...]  # indices (among the sentence's words) of the switched words
    eligible: int  # how many words the lexicon could have switched


def eligible_positions(text: str, lexicon: Lexicon) -> list[int]:
    """Indices of the words of ``text`` that the lexicon translates into another word."""
    positions = []
    for index, match in enumerate(WORD.finditer(text)):
        translation = lexicon.translate(match.group())
        if translation is not None and translation.lower() != match.group().lower():
            positions.append(index)
    return positions


def switch_count(eligible: int, ratio: float) -> int:
    """How many of ``eligible`` words a ``ratio`` switches: ratio * eligible, halves up."""
    _check_ratio(ratio)
    return math.floor(ratio * eligible + 0.5)


def code_switch(text: str, lexicon: Lexicon, ratio: float, rng: random.Random) -> Switched:
    """Switch ``switch_count(eligible, ratio)`` eligible words of ``text``, chosen by ``rng``.

    Raises:
        ConfigError: ``ratio`` is not in [0, 1].
    """
    positions = eligible_positions(text, lexicon)
    chosen = set(rng.sample(positions, switch_count(len(positions), ratio)))
    pieces, end = [], 0
    for index, match in enumerate(WORD.finditer(text)):
        if index not in chosen:
            continue
        translation = lexicon.translate(match.group())
        assert translation is not None
        if index == 0 and match.group()[0].isupper():
            translation = translation[0].upper() + translation[1:]
        pieces += [text[end : match.start()], translation]
        end = match.end()
    pieces.append(text[end:])
    return Switched("".join(pieces), tuple(sorted(chosen)), len(positions))


def restore_pairs(
    texts: Sequence[str], lexicon: Lexicon, ratio: float, seed: int
) -> list[tuple[str, str]]:
    """(code-switched, original) training pairs for the restore task, one per text in
    which at least one word was switched (the others would only teach copying).

    Raises:
        ConfigError: ``ratio`` is not in [0, 1].
    """
    _check_ratio(ratio)
    rng = random.Random(seed)
    pairs = []
    for text in texts:
        switched = code_switch(text, lexicon, ratio, rng)
        if switched.replaced:
            pairs.append((switched.text, text))
    return pairs


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"code-switching ratio must be in [0, 1], got {ratio}")
