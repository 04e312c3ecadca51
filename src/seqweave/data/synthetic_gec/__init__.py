"""Synthetic grammatical-error-correction (GEC) data: a toy English grammar plus learner errors.

Why this exists: the demo must train a GEC model offline in minutes, so the data has to be free,
unlimited and *learnable*. Every injected error is recoverable from the corrupted sentence alone,
because the grammar is built so that each error site has exactly one repair: a collocation head
is always followed by its own preposition, places and "in the morning" always take "the", no verb
has identical base and past forms, and nouns, verbs and adjectives never share a spelling.

Split into `grammar` (lexicon and sentence generator), `corruption` (error injection) and
`pairs` (record generation and train/valid/test files).
"""

# the underscore names below are private, re-exported only because the tests inspect them
from .corruption import _VOCAB as _VOCAB
from .corruption import (
    DEFAULT_ERROR_COUNTS,
    DEFAULT_WEIGHTS,
    ERROR_TYPES,
    apply_error,
    corrupt,
)
from .grammar import _ADJS as _ADJS
from .grammar import _LEMMA as _LEMMA
from .grammar import _NOUN_FORMS as _NOUN_FORMS
from .grammar import ADJECTIVES, NAMES, NOUNS, PLACES, TOPICS, VERBS, generate_sentence
from .pairs import generate_pairs, write_splits

__all__ = [
    "ADJECTIVES",
    "DEFAULT_ERROR_COUNTS",
    "DEFAULT_WEIGHTS",
    "ERROR_TYPES",
    "NAMES",
    "NOUNS",
    "PLACES",
    "TOPICS",
    "VERBS",
    "apply_error",
    "corrupt",
    "generate_pairs",
    "generate_sentence",
    "write_splits",
]
