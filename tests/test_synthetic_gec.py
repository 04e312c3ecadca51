"""Tests for the synthetic GEC data: well-formed targets, recoverable errors, disjoint splits."""

import itertools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.data import synthetic_gec as gec
from seqweave.data.synthetic_gec import (
    ERROR_TYPES,
    apply_error,
    corrupt,
    generate_pairs,
    generate_sentence,
    write_splits,
)


def _sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [generate_sentence(rng) for _ in range(n)]


def test_deterministic_for_a_seed():
    assert _sentences(200, seed=7) == _sentences(200, seed=7)
    assert _sentences(200, seed=7) != _sentences(200, seed=8)
    assert generate_pairs(300, seed=1) == generate_pairs(300, seed=1)
    assert generate_pairs(300, seed=1) != generate_pairs(300, seed=2)


def test_sentences_are_well_formed():
    for sentence in _sentences(3000):
        words = sentence.split(" ")
        assert sentence[0].isupper() and sentence.endswith(".") and not sentence.endswith(" .")
        assert all(words), f"double or edge space in {sentence!r}"
        assert 4 <= len(words) <= 20, sentence
        plain = [w.rstrip(".").lower() for w in words]
        assert all(w in gec._VOCAB for w in plain), sentence
        assert all(a != b for a, b in itertools.pairwise(plain)), sentence


def test_distinct_sentences_so_the_model_cannot_memorise():
    assert len(set(_sentences(20_000, seed=3))) > 15_000


def test_lexicon_spellings_never_collide():
    """Corruption finds sites by spelling, so word classes must not share spellings."""
    verb_forms = set(gec._LEMMA)
    classes = [gec._NOUN_FORMS, verb_forms, gec._ADJS, set(gec.PLACES), set(gec.TOPICS)]
    for k, first in enumerate(classes):
        for second in classes[k + 1 :]:
            assert not first & second
    forms_seen: dict[str, str] = {}
    for base, forms in gec.VERBS.items():
        assert forms["past"] != base, f"{base}: past equal to base would hide agreement errors"
        for form in forms.values():
            assert forms_seen.setdefault(form, base) == base, f"{form} is a form of two verbs"


def test_a_and_an_both_occur_and_match_the_next_word():
    words = [s.split() for s in _sentences(3000)]
    pairs = [(w[i].lower(), w[i + 1]) for w in words for i in range(len(w) - 1)]
    articles = [(a, nxt) for a, nxt in pairs if a in ("a", "an")]
    assert {a for a, _ in articles} == {"a", "an"}
    assert all((a == "an") == (nxt[0] in "aeiou") for a, nxt in articles)


def test_reported_errors_match_changes():
    rng = random.Random(11)
    for target in _sentences(3000, seed=11):
        source, errors = corrupt(target, rng)
        assert (source != target) == bool(errors), (target, source, errors)
        assert len(errors) <= 3 and set(errors) <= set(ERROR_TYPES)


def test_clean_fraction_is_small_but_present():
    pairs = generate_pairs(20_000, seed=5)
    clean = sum(p["source"] == p["target"] for p in pairs) / len(pairs)
    assert 0.05 <= clean <= 0.15
    assert all(p["errors"] for p in pairs if p["source"] != p["target"])


def test_each_error_type_occurs_in_a_sample():
    counts = {name: 0 for name in ERROR_TYPES}
    for pair in generate_pairs(5000, seed=9):
        for name in pair["errors"]:
            counts[name] += 1
    assert all(count >= 50 for count in counts.values()), counts


def test_same_source_never_comes_from_two_targets():
    """A cheap ambiguity check: the correction must be a function of the corrupted sentence."""
    pairs = generate_pairs(20_000, seed=13)
    targets = {p["target"] for p in pairs}
    seen: dict[str, str] = {}
    for p in pairs:
        assert seen.setdefault(p["source"], p["target"]) == p["target"]
        assert p["source"] == p["target"] or p["source"] not in targets


EXAMPLES = {
    "article": ("She ate an apple.", {"She ate a apple."}),
    "agreement": ("The dog runs in the park.", {"The dog run in the park."}),
    "verb_form": (
        "She will eat the cake.",
        {"She will eats the cake.", "She will ate the cake.", "She will eating the cake."},
    ),
    "noun_number": ("Tom bought two red apples.", {"Tom bought two red apple."}),
    "preposition": (
        "Anna is interested in music.",
        {f"Anna is interested {p} music." for p in ("on", "at", "about", "for")},
    ),
    "word_swap": ("The big dog sleeps.", {"The dog big sleeps."}),
    "duplicate_word": (
        "We met Tom.",
        {"We We met Tom.", "We met met Tom.", "We met Tom Tom."},
    ),
    "missing_the": ("Tom sleeps in the park.", {"Tom sleeps in park."}),
    "lowercase_start": ("Tom sleeps.", {"tom sleeps."}),
    "missing_period": ("Tom sleeps.", {"Tom sleeps"}),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_error_type_on_a_known_site(name):
    sentence, expected = EXAMPLES[name]
    for seed in range(5):
        assert apply_error(name, sentence, random.Random(seed)) in expected


def test_typo_keeps_first_letter_and_is_not_a_word():
    sentence = "The teacher bought a beautiful umbrella."
    for seed in range(50):
        source = apply_error("typo", sentence, random.Random(seed))
        assert source is not None
        pairs = zip(sentence.split(), source.split(), strict=True)
        changed = [(a, b) for a, b in pairs if a != b]
        assert len(changed) == 1
        original, typo = changed[0]
        assert typo[0] == original[0] and typo.rstrip(".").lower() not in gec._VOCAB


def test_errors_need_a_site():
    assert apply_error("preposition", "Tom sleeps.", random.Random(0)) is None
    assert apply_error("article", "Tom sleeps.", random.Random(0)) is None
    assert apply_error("missing_the", "The dog sleeps.", random.Random(0)) is None
    assert apply_error("noun_number", "The dogs sleep.", random.Random(0)) is None


@pytest.mark.parametrize("name", sorted(ERROR_TYPES))
def test_each_error_type_changes_a_generated_sentence(name):
    rng = random.Random(21)
    for sentence in _sentences(2000, seed=21):
        corrupted = apply_error(name, sentence, rng)
        if corrupted is not None:
            assert corrupted != sentence
            return
    pytest.fail(f"{name} found no site in 2000 sentences")


def test_weights_and_error_counts_are_configurable():
    only_period = {name: 0.0 for name in ERROR_TYPES} | {"missing_period": 1.0}
    rng = random.Random(0)
    for sentence in _sentences(200):
        source, errors = corrupt(sentence, rng, weights=only_period, error_counts=(0, 1))
        assert errors == ["missing_period"] and source == sentence[:-1]
    with pytest.raises(ValueError, match="unknown"):
        corrupt("Tom sleeps.", rng, weights={"no_such_error": 1.0})


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_corrupt_never_crashes_on_generated_sentences(seed):
    rng = random.Random(seed)
    target = generate_sentence(rng)
    source, errors = corrupt(target, rng)
    assert source.strip() and len(errors) <= 3
    assert (source != target) == bool(errors)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.integers(min_value=0, max_value=1000))
def test_corrupt_never_crashes_on_arbitrary_text(text, seed):
    source, errors = corrupt(text, random.Random(seed))
    assert isinstance(source, str) and set(errors) <= set(ERROR_TYPES)


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_write_splits_are_disjoint_and_reproducible(tmp_path):
    paths = write_splits(tmp_path / "a", n_train=3000, n_valid=300, n_test=300, seed=4)
    splits = {name: _read(path) for name, path in paths.items()}
    assert {name: len(rows) for name, rows in splits.items()} == {
        "train": 3000,
        "valid": 300,
        "test": 300,
    }
    assert all(set(row) == {"source", "target", "errors"} for row in splits["train"])
    targets = {name: {row["target"] for row in rows} for name, rows in splits.items()}
    assert sum(len(t) for t in targets.values()) == 3600  # unique within and across splits
    again = write_splits(tmp_path / "b", n_train=3000, n_valid=300, n_test=300, seed=4)
    assert all(paths[k].read_bytes() == again[k].read_bytes() for k in paths)
    more_train = write_splits(tmp_path / "c", n_train=5000, n_valid=300, n_test=300, seed=4)
    assert more_train["test"].read_bytes() == paths["test"].read_bytes()
