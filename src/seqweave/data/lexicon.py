"""A bilingual word lexicon induced from a sentence-aligned bitext by IBM Model 1.

Code-switching pretext tasks (Zan et al. 2022) replace source words by their
translations; that needs a dictionary, and a bitext we already train on holds one.
IBM Model 1 (Brown et al. 1993) learns word translation probabilities t(f | e) by EM
from co-occurrence alone. It is run in both directions, and a pair scores
sqrt(t(f | e) * t(e | f)): a frequent word that co-occurs with everything (an article,
a full stop's neighbour) gets a high t(the | e) for many e but a low t(e | the), so the
geometric mean keeps the pairs both directions agree on. Each source word keeps its
best-scoring translation, if the score reaches ``min_score``.

Words are ``\\w+`` runs, matched lowercased; each translation keeps the surface form it
most often has inside a sentence (German nouns stay capitalised, articles do not).

The E step is vectorised over every (source word, target word) occurrence pair of the
corpus with ``numpy.bincount``, so Multi30k (29,000 pairs) takes a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqweave.errors import ConfigError, DataError

WORD = re.compile(r"\w+")
FORMAT = "seqweave.lexicon/1"
NULL = 0  # word id 0 is IBM Model 1's empty word in both vocabularies


def words(text: str) -> list[str]:
    """The words of a text, as the lexicon sees them (``\\w+`` runs, case kept)."""
    return WORD.findall(text)


@dataclass(frozen=True)
class Lexicon:
    """Lowercased source word -> (translation surface form, score in [0, 1])."""

    source_language: str
    target_language: str
    entries: dict[str, tuple[str, float]]

    def translate(self, word: str) -> str | None:
        entry = self.entries.get(word.lower())
        return None if entry is None else entry[0]

    def __len__(self) -> int:
        return len(self.entries)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the lexicon as JSON (sorted by score, best first)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ranked = sorted(self.entries.items(), key=lambda item: (-item[1][1], item[0]))
        record = {
            "format": FORMAT,
            "source_language": self.source_language,
            "target_language": self.target_language,
            "entries": {word: [translation, score] for word, (translation, score) in ranked},
        }
        path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Lexicon:
        """Read a lexicon written by ``save``.

        Raises:
            DataError: the file is missing, not JSON, or not a lexicon (the message says
                which entry is wrong).
        """
        name = str(path)
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError("no such lexicon file", path=name) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"not a JSON lexicon: {err}", path=name) from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise DataError(f"not a lexicon: expected format {FORMAT!r}", path=name)
        entries = record.get("entries")
        if not isinstance(entries, dict):
            raise DataError("'entries' must be an object", path=name)
        checked = {}
        for word, value in entries.items():
            if not (
                isinstance(value, list)
                and len(value) == 2
                and isinstance(value[0], str)
                and isinstance(value[1], int | float)
                and not isinstance(value[1], bool)
            ):
                raise DataError(
                    f"entry {word!r} must be [translation, score], got {value!r}", path=name
                )
            checked[word] = (value[0], float(value[1]))
        return cls(
            str(record.get("source_language", "")),
            str(record.get("target_language", "")),
            checked,
        )


class _Vocabulary:
    """Lowercased words -> ids 1.. (0 is the empty word), with counts and surface forms."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = ["<null>"]
        self.surface: list[Counter[str]] = [Counter()]
        self.inside: list[Counter[str]] = [Counter()]  # forms seen after the first word

    def encode(self, sentence: str) -> np.ndarray:
        ids = []
        for position, form in enumerate(words(sentence)):
            word = form.lower()
            index = self.ids.get(word)
            if index is None:
                index = self.ids[word] = len(self.words)
                self.words.append(word)
                self.surface.append(Counter())
                self.inside.append(Counter())
            self.surface[index][form] += 1
            if position:
                self.inside[index][form] += 1
            ids.append(index)
        return np.array(ids, dtype=np.int64)

    def count(self, index: int) -> int:
        return sum(self.surface[index].values())

    def form(self, index: int) -> str:
        """The form a word most often has inside a sentence (else anywhere)."""
        forms = self.inside[index] or self.surface[index]
        return max(forms.items(), key=lambda item: (item[1], item[0]))[0]


def ibm_model1(
    sources: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    source_size: int,
    target_size: int,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """EM for t(f | e) over the word pairs that co-occur in some sentence pair.

    ``sources`` and ``targets`` hold word ids >= 1 per sentence; the empty word (id 0) is
    added to every source. Returns the sorted pair keys ``e * target_size + f`` and
    t(f | e) for each key (each source word's probabilities sum to 1).
    """
    source_occurrence, target_token, pair_keys = [], [], []
    offset = 0
    for e, f in zip(sources, targets, strict=True):
        e = np.concatenate([[NULL], e])  # (S + 1,)
        source_occurrence.append(np.tile(e, len(f)))
        target_token.append(np.repeat(np.arange(offset, offset + len(f)), len(e)))
        pair_keys.append(np.tile(e, len(f)) * target_size + np.repeat(f, len(e)))
        offset += len(f)
    tokens = np.concatenate(target_token)  # (N,): which target token each pair explains
    keys, pair = np.unique(np.concatenate(pair_keys), return_inverse=True)
    pair_source = keys // target_size
    t = np.full(len(keys), 1.0 / target_size)  # uniform start
    for _ in range(iterations):
        weight = t[pair]  # (N,)
        share = weight / np.bincount(tokens, weight, minlength=offset)[tokens]  # E step
        counts = np.bincount(pair, share, minlength=len(keys))
        totals = np.bincount(pair_source, counts, minlength=source_size)
        t = counts / totals[pair_source]  # M step
    return keys, t


def induce_lexicon(
    pairs: Sequence[tuple[str, str]],
    iterations: int = 5,
    min_count: int = 2,
    min_score: float = 0.1,
    source_language: str = "source",
    target_language: str = "target",
) -> Lexicon:
    """A lexicon from (source sentence, target sentence) pairs.

    Source words seen fewer than ``min_count`` times get no entry (their statistics are
    noise); neither do translations scoring below ``min_score``.

    Raises:
        ConfigError: ``iterations`` < 1, ``min_count`` < 1 or ``min_score`` outside [0, 1].
        DataError: no pair has words on both sides.
    """
    if iterations < 1:
        raise ConfigError(f"lexicon iterations must be >= 1, got {iterations}")
    if min_count < 1:
        raise ConfigError(f"lexicon min_count must be >= 1, got {min_count}")
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"lexicon min_score must be in [0, 1], got {min_score}")
    source_vocab, target_vocab = _Vocabulary(), _Vocabulary()
    encoded = [(source_vocab.encode(s), target_vocab.encode(t)) for s, t in pairs]
    encoded = [(e, f) for e, f in encoded if len(e) and len(f)]
    if not encoded:
        raise DataError("no sentence pair has words on both sides: nothing to induce from")
    es, fs = zip(*encoded, strict=True)
    n_source, n_target = len(source_vocab.words), len(target_vocab.words)
    forward_keys, forward = ibm_model1(es, fs, n_source, n_target, iterations)
    backward_keys, backward = ibm_model1(fs, es, n_target, n_source, iterations)
    # the same pair in the backward model's key space (f * n_source + e); drop NULL pairs
    real = (forward_keys // n_target != NULL) & (forward_keys % n_target != NULL)
    keys, t_forward = forward_keys[real], forward[real]
    e, f = keys // n_target, keys % n_target
    t_backward = backward[np.searchsorted(backward_keys, f * n_source + e)]
    score = np.sqrt(t_forward * t_backward)
    entries = {}
    for index in np.lexsort((-score, e)):  # by source word, best translation first
        word = int(e[index])
        name = source_vocab.words[word]
        if name in entries or source_vocab.count(word) < min_count:
            continue
        if score[index] >= min_score:
            entries[name] = (target_vocab.form(int(f[index])), _rounded(score[index]))
        else:
            entries[name] = None  # its best is below the threshold: no entry
    kept = {word: entry for word, entry in entries.items() if entry is not None}
    return Lexicon(source_language, target_language, kept)


def _rounded(value: float) -> float:
    """Scores to 4 decimals, so the JSON file reads well and round-trips exactly."""
    return math.floor(float(value) * 10_000 + 0.5) / 10_000
