"""Sources and targets for a pointer-generator over words: sentence marks and copy slots.

A pointer-generator (See et al. 2017) copies source words, including words outside its
vocabulary: each example gets an *extended vocabulary*, its k-th distinct unknown source
word taking id ``V + k``. Here the extended ids are ordinary words of a ``words``
tokenizer, ``<copy0> .. <copyN-1>``, reserved right after the specials, so the whole
training and decoding pipeline (tokenizer, batching, checkpoints, decoders) carries them
unchanged: ``mark`` rewrites an example's unknown words to their slot (in the source, and
in the target where the word occurs in the source) and ``restore`` puts the words back
into a decoded text. The model (``models/hier_nse.py``) only ever produces a ``<copyk>``
by copying it, since its vocabulary distribution gives those ids no mass.

``mark`` also starts each source sentence with ``<sent>``, the boundary of the
hierarchical model's sentence memories. Text is lower-cased and punctuation split off,
so that ``results.`` and ``results`` are one word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from seqweave.architectures import HierNSEConfig
from seqweave.errors import ConfigError
from seqweave.tokenizers.tokenizer import Tokenizer
from seqweave.tokenizers.words import words_tokenizer

SENTENCE = "<sent>"
_COPY = re.compile(r"<copy(\d+)>")
_PUNCTUATION = re.compile(r"([^\w\s])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def copy_word(k: int) -> str:
    """The word of the k-th copy slot."""
    return f"<copy{k}>"


def reserved_words(copy_slots: int) -> tuple[str, ...]:
    """``<sent>`` and the copy slots, in id order."""
    return (SENTENCE, *(copy_word(k) for k in range(copy_slots)))


def normalize(text: str) -> str:
    """Lower-cased, punctuation as words of its own, single spaces."""
    return " ".join(_PUNCTUATION.sub(r" \1 ", text.lower()).split())


def split_sentences(text: str) -> list[str]:
    """Sentences of a text joined by spaces (an end mark, a space, then a capital, a digit
    or a bracket), each normalized; empty ones dropped."""
    sentences = (normalize(s) for s in _SENTENCE_END.split(text.strip()))
    return [s for s in sentences if s]


def copy_tokenizer(
    texts: Iterable[str], vocab_size: int, copy_slots: int, min_frequency: int = 1
) -> Tokenizer:
    """A ``words`` tokenizer over normalized ``texts`` with ``<sent>`` and the copy slots
    reserved: ``<sent>`` is id 4 and ``<copyk>`` id 5 + k."""
    normalized = (normalize(text) for text in texts)
    return words_tokenizer(
        normalized, vocab_size, min_frequency, reserved=reserved_words(copy_slots)
    )


@dataclass(frozen=True)
class Marked:
    """An example as the model reads it, and the words behind its copy slots."""

    source: str
    target: str
    unknown: tuple[str, ...]  # unknown[k] is the word of <copyk>


def mark(source: str, target: str, known: Callable[[str], bool], copy_slots: int) -> Marked:
    """Mark sentences and rewrite unknown words to copy slots, numbered by first occurrence
    in the source. An unknown word past the last slot, or a target word not in the source,
    stays as it is (the tokenizer reads it as ``<unk>``)."""
    unknown: list[str] = []
    sentences = []
    for sentence in split_sentences(source):
        words = []
        for word in sentence.split():
            if not known(word) and word not in unknown and len(unknown) < copy_slots:
                unknown.append(word)
            words.append(copy_word(unknown.index(word)) if word in unknown else word)
        sentences.append(" ".join([SENTENCE, *words]))
    slots = {word: copy_word(k) for k, word in enumerate(unknown)}
    marked_target = " ".join(slots.get(word, word) for word in normalize(target).split())
    return Marked(" ".join(sentences), marked_target, tuple(unknown))


def mark_with(tokenizer: Tokenizer, copy_slots: int) -> Callable[[str, str], Marked]:
    """``mark`` with the vocabulary of ``tokenizer`` (a word is known when it has an id)."""

    def known(word: str) -> bool:
        return tokenizer.token_to_id(word) is not None

    return lambda source, target="": mark(source, target, known, copy_slots)


def restore(text: str, unknown: tuple[str, ...] | list[str]) -> str:
    """A decoded text with each ``<copyk>`` replaced by the source word behind it."""

    def word(match: re.Match) -> str:
        k = int(match.group(1))
        return unknown[k] if k < len(unknown) else match.group(0)

    return _COPY.sub(word, text)


def copy_ids(settings: HierNSEConfig, tokenizer: Tokenizer) -> HierNSEConfig:
    """``[model.hier_nse]`` with the ids of ``<sent>`` and ``<copy0>`` from ``tokenizer``.

    Raises:
        ConfigError: the tokenizer lacks ``<sent>`` or a copy slot, or the slots are not
            consecutive ids (build it with ``copy_tokenizer``).
    """
    ids = [tokenizer.token_to_id(word) for word in reserved_words(settings.copy_slots)]
    first = ids[1] if len(ids) > 1 else -1
    consecutive = all(i == first + k for k, i in enumerate(ids[1:]))
    if None in ids or not consecutive:
        raise ConfigError(
            f"model.architecture='hier_nse' needs a words tokenizer with {SENTENCE} and "
            f"{copy_word(0)} .. {copy_word(settings.copy_slots - 1)} at consecutive ids "
            "(seqweave.data.copy_words.copy_tokenizer builds one)"
        )
    return replace(settings, sentence_id=ids[0], copy_start=first)
