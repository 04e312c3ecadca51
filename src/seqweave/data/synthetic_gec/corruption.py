"""Synthetic GEC data, part 2: learner-error injection into grammar sentences."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .grammar import (
    _ADJ_ENTRIES,
    _ADJS,
    _CONTENT,
    _ENTRIES,
    _HEAD_PREP,
    _HEAD_WORDS,
    _LEMMA,
    _NOUN_FORMS,
    _OBJECT_PRONOUNS,
    _PLURAL_DETS,
    _PRONOUNS,
    _QUANTIFIERS,
    _SINGULAR_DETS,
    _SINGULAR_OF,
    _THE_ONLY,
    _TIMES,
    NAMES,
    PLACES,
    VERBS,
    _draw,
)


@dataclass
class Draft:
    """A sentence being corrupted: its words plus the final punctuation ('.' or '').

    Positions never shift (a dropped word becomes '', a duplicated one 'w w') and every touched
    position is locked, so two errors never overlap or undo each other.
    """

    words: list[str]
    locked: set[int] = field(default_factory=set)
    low: list[str] = field(init=False)  # lower-cased words, kept in sync by put()

    def __post_init__(self) -> None:
        self.low = [w.lower() for w in self.words]

    @classmethod
    def from_sentence(cls, sentence: str) -> Draft:
        body, end = (sentence[:-1], ".") if sentence.endswith(".") else (sentence, "")
        return cls([*body.split(), end])

    def text(self) -> str:
        return " ".join(w for w in self.words[:-1] if w) + self.words[-1]

    def word(self, i: int) -> str:
        """Lower-cased word at i ('' outside the sentence); the last copy if duplicated."""
        return self.low[i].rsplit(" ", 1)[-1] if 0 <= i < len(self.words) - 1 else ""

    def before(self, i: int) -> int:
        """Index of the previous non-empty word (dropped words are skipped)."""
        i -= 1
        while i >= 0 and not self.words[i]:
            i -= 1
        return i

    def sites(self, test: Callable[[int, str], object]) -> list[int]:
        """Unlocked word positions (never the punctuation) where test(i, lower word) holds."""
        locked = self.locked
        return [i for i, w in enumerate(self.low[:-1]) if w and i not in locked and test(i, w)]

    def has_any(self, words: frozenset[str]) -> bool:
        """Cheap pre-check that lets rare error types skip the per-word scan."""
        return not words.isdisjoint(self.low)

    def put(self, i: int, new: str, *also_lock: int) -> None:
        self.words[i], self.low[i] = new, new.lower()
        self.locked.update((i, *also_lock))


def _replace_one(draft: Draft, rng: random.Random, options: Callable[[int, str], tuple]) -> bool:
    """Shared driver: pick a random site that has replacement options and apply one of them."""
    sites = draft.sites(options)
    if not sites:
        return False
    i = rng.choice(sites)
    draft.put(i, rng.choice(options(i, draft.low[i])))
    return True


_ARTICLES = frozenset(("a", "an"))


def article_error(draft: Draft, rng: random.Random) -> bool:
    """a <-> an; the next word (locked, so never typo'd or moved) decides the fix."""
    if not draft.has_any(_ARTICLES):
        return False
    sites = draft.sites(
        lambda i, w: w in _ARTICLES and draft.word(i + 1) and i + 1 not in draft.locked
    )
    if not sites:
        return False
    i = rng.choice(sites)
    new = "an" if draft.words[i].lower() == "a" else "a"
    draft.put(i, new.capitalize() if draft.words[i][0].isupper() else new, i + 1)
    return True


_AGREEMENT_SWAPS = {"is": ("are",), "are": ("is",), "am": ("is", "are"), "was": ("were",)}
_AGREEMENT_SWAPS |= {"were": ("was",), "has": ("have",), "have": ("has",), "does": ("do",)}
_AGREEMENT_SWAPS |= {"do": ("does",)}
_NON_FINITE_AFTER = frozenset(("will", "can", "to", "not", "has", "have"))


def agreement_error(draft: Draft, rng: random.Random) -> bool:
    """Subject-verb agreement: drop/add 3rd-person -s, swap is/are, was/were, has/have, do/does."""

    def options(i: int, w: str) -> tuple[str, ...]:
        if w in _AGREEMENT_SWAPS:
            return _AGREEMENT_SWAPS[w]
        forms = VERBS.get(_LEMMA.get(w, ""))
        if forms is None:
            return ()
        if w == forms["3sg"]:
            return (forms["base"],)
        finite = draft.word(draft.before(i)) not in _NON_FINITE_AFTER
        return (forms["3sg"],) if finite and w == forms["base"] else ()

    return _replace_one(draft, rng, options)


def verb_form_error(draft: Draft, rng: random.Random) -> bool:
    """Wrong verb form after an auxiliary: 'will goes', 'has eat', 'is run', 'did not went'."""

    def options(i: int, w: str) -> tuple[str, ...]:
        forms = VERBS.get(_LEMMA.get(w, ""))
        if forms is None and w not in ("be", "been"):
            return ()
        aux = draft.word(draft.before(i))
        if w == "be":
            return ("is", "are") if aux == "will" else ()
        if w == "been":
            return ("be",) if aux in ("has", "have") else ()
        if aux in ("will", "can", "to", "not") and w == forms["base"]:
            wrong: tuple[str, ...] = (forms["3sg"], forms["past"], forms["ing"])
        elif aux in ("has", "have") and w == forms["pp"]:
            wrong = (forms["base"], forms["past"])
        elif aux in ("am", "is", "are", "was", "were") and w == forms["ing"]:
            wrong = (forms["base"], forms["3sg"])
        else:
            return ()
        return tuple(form for form in dict.fromkeys(wrong) if form != w)

    return _replace_one(draft, rng, options)


def noun_number_error(draft: Draft, rng: random.Random) -> bool:
    """Singular noun after a numeral, 'many', 'several' or 'both': 'two dog', 'many big book'."""

    def options(i: int, w: str) -> tuple[str, ...]:
        if w not in _SINGULAR_OF:
            return ()
        j = draft.before(i)
        j = draft.before(j) if draft.word(j) in _ADJS else j
        return (_SINGULAR_OF[w],) if draft.word(j) in _QUANTIFIERS else ()

    return draft.has_any(_QUANTIFIERS) and _replace_one(draft, rng, options)


def preposition_error(draft: Draft, rng: random.Random) -> bool:
    """Wrong preposition in a fixed collocation: 'interested on', 'depends of', 'arrive to'."""

    def options(i: int, w: str) -> tuple[str, ...]:
        prep, wrong = _HEAD_PREP.get(draft.word(draft.before(i)), ("", ()))
        return wrong if w == prep else ()

    return draft.has_any(_HEAD_WORDS) and _replace_one(draft, rng, options)


_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_NEIGHBOURS = {
    c: r[max(k - 1, 0) : k] + r[k + 1 : k + 2] for r in _KEYBOARD for k, c in enumerate(r)
}
_FUNCTION_WORDS = [*_PLURAL_DETS, *_SINGULAR_DETS, *_OBJECT_PRONOUNS, *_AGREEMENT_SWAPS]
_FUNCTION_WORDS += [p for p, _ in _PRONOUNS] + [t for ts in _TIMES.values() for t in ts]
_FUNCTION_WORDS += [p for e in _ENTRIES + _ADJ_ENTRIES for p in (e.prep, *e.wrong)]
_FUNCTION_WORDS += [*PLACES.values(), "an and to not will can did be been"]
_VOCAB = frozenset(" ".join([*_CONTENT, *NAMES, *_FUNCTION_WORDS]).lower().split())
_BY_START: dict[tuple[str, int], list[str]] = {}  # (first letter, length) -> vocabulary words
for _word in sorted(_VOCAB):
    _BY_START.setdefault((_word[0], len(_word)), []).append(_word)


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether a and b differ by one insertion, deletion, substitution or adjacent swap."""
    if len(a) > len(b):
        a, b = b, a
    k = 0
    while k < len(a) and a[k] == b[k]:
        k += 1
    if len(a) < len(b):
        return len(b) - len(a) == 1 and a[k:] == b[k + 1 :]
    swapped = a[k : k + 2] == b[k : k + 2][::-1] and a[k + 2 :] == b[k + 2 :]
    return k < len(a) and (a[k + 1 :] == b[k + 1 :] or swapped)


@lru_cache(maxsize=1 << 16)
def _typo_sources(typo: str) -> tuple[str, ...]:
    """Vocabulary words this typo could come from. Typos keep the first letter (see _make_typo),
    so only words starting with the same letter are candidates."""
    sizes = (len(typo) - 1, len(typo), len(typo) + 1)
    candidates = [w for n in sizes for w in _BY_START.get((typo[0], n), ())]
    return tuple(w for w in candidates if _one_edit_apart(typo, w))


def _make_typo(word: str, rng: random.Random) -> str:
    """One keyboard slip, never on the first letter, so capitals and a/an stay decidable."""
    op = rng.randrange(4)
    k = rng.randrange(1, len(word) - 1 if op == 0 else len(word))
    if op == 0:  # swap two neighbouring letters
        return word[:k] + word[k + 1] + word[k] + word[k + 2 :]
    if op == 1:  # drop a letter
        return word[:k] + word[k + 1 :]
    if op == 2:  # type a letter twice
        return word[:k] + word[k] + word[k:]
    return word[:k] + rng.choice(_KEY_NEIGHBOURS.get(word[k], "e")) + word[k + 1 :]


def typo_error(draft: Draft, rng: random.Random) -> bool:
    """A typo in a content word of 5+ letters, kept only if that word is its sole near match."""
    sites = draft.sites(lambda i, w: len(w) >= 5 and w in _CONTENT)
    rng.shuffle(sites)
    for i in sites[:3]:
        word = draft.words[i]
        for _ in range(3):
            typo = _make_typo(word, rng)
            low = typo.lower()
            if low not in _VOCAB and _typo_sources(low) == (word.lower(),):
                draft.put(i, typo)
                return True
    return False


def word_swap_error(draft: Draft, rng: random.Random) -> bool:
    """Adjective and noun swapped ('the dog big'); the grammar puts adjectives before nouns."""
    if not draft.has_any(_ADJS):
        return False
    nouns = set(draft.sites(lambda i, w: w in _NOUN_FORMS))
    sites = draft.sites(lambda i, w: w in _ADJS and i + 1 in nouns)
    if not sites:
        return False
    i = rng.choice(sites)
    adjective = draft.words[i]
    draft.put(i, draft.words[i + 1])
    draft.put(i + 1, adjective)
    return True


def duplicate_word_error(draft: Draft, rng: random.Random) -> bool:
    """A word typed twice ('the the'); the grammar never repeats a word back to back."""
    sites = draft.sites(lambda i, w: " " not in w)
    if not sites:
        return False
    i = rng.choice(sites)
    draft.put(i, f"{draft.words[i]} {draft.words[i]}")
    return True


def missing_the_error(draft: Draft, rng: random.Random) -> bool:
    """Drop 'the' only before places and day parts, which always take 'the' in this grammar."""
    if "the" not in draft.low:
        return False
    sites = draft.sites(lambda i, w: w == "the" and draft.word(i + 1) in _THE_ONLY)
    if not sites:
        return False
    draft.put(rng.choice(sites), "")
    return True


def lowercase_start_error(draft: Draft, rng: random.Random) -> bool:
    """Sentence starts with a lower-case letter."""
    first = draft.words[0]
    if 0 in draft.locked or not first[:1].isupper() or len(draft.words) < 2:
        return False
    draft.put(0, first[0].lower() + first[1:])
    return True


def missing_period_error(draft: Draft, rng: random.Random) -> bool:
    """Final period left out."""
    last = len(draft.words) - 1
    if draft.words[last] != "." or last in draft.locked or not any(draft.words[:-1]):
        return False
    draft.put(last, "")
    return True


ErrorFn = Callable[[Draft, random.Random], bool]
ERROR_TYPES: dict[str, ErrorFn] = {
    "article": article_error,
    "agreement": agreement_error,
    "verb_form": verb_form_error,
    "noun_number": noun_number_error,
    "preposition": preposition_error,
    "typo": typo_error,
    "word_swap": word_swap_error,
    "duplicate_word": duplicate_word_error,
    "missing_the": missing_the_error,
    "lowercase_start": lowercase_start_error,
    "missing_period": missing_period_error,
}
# Relative draw weights. Types that rarely have a site in a sentence (article, preposition,
# noun_number, missing_the, word_swap) get more weight, so that each ends up 5-15% of all errors.
DEFAULT_WEIGHTS: dict[str, float] = {
    "article": 3.0,
    "agreement": 2.0,
    "verb_form": 1.5,
    "noun_number": 3.0,
    "preposition": 3.0,
    "typo": 1.0,
    "word_swap": 2.5,
    "duplicate_word": 0.6,
    "missing_the": 2.5,
    "lowercase_start": 0.4,
    "missing_period": 0.4,
}
# probability of 0, 1, 2, 3 errors; the first entry is the clean (source == target) share
DEFAULT_ERROR_COUNTS: tuple[float, ...] = (0.09, 0.45, 0.31, 0.15)


def apply_error(name: str, sentence: str, rng: random.Random) -> str | None:
    """Apply one named error type; None when the sentence has no site for it."""
    draft = Draft.from_sentence(sentence)
    return draft.text() if ERROR_TYPES[name](draft, rng) else None


def corrupt(
    sentence: str,
    rng: random.Random,
    *,
    weights: Mapping[str, float] | None = None,
    error_counts: Sequence[float] | None = None,
) -> tuple[str, list[str]]:
    """Inject 0-3 learner errors; returns the corrupted sentence and the error types applied.

    `weights` overrides DEFAULT_WEIGHTS per type (0 disables one); `error_counts[k]` is the
    probability of k errors. A type with no site in this sentence is dropped and another drawn,
    so the error count follows `error_counts` and every reported error changed the text.
    """
    counts = DEFAULT_ERROR_COUNTS if error_counts is None else error_counts
    merged = {**DEFAULT_WEIGHTS, **weights} if weights else DEFAULT_WEIGHTS
    if len(merged) != len(ERROR_TYPES):
        raise ValueError(f"unknown error types: {sorted(set(merged) - set(ERROR_TYPES))}")
    wanted = _draw(rng, counts)
    names = [name for name, weight in merged.items() if weight > 0]
    draw_weights = [merged[name] for name in names]
    draft, applied = Draft.from_sentence(sentence), []
    while len(applied) < wanted and names:
        k = _draw(rng, draw_weights)
        if ERROR_TYPES[names[k]](draft, rng):
            applied.append(names[k])
        else:
            del names[k], draw_weights[k]
    return draft.text(), applied
