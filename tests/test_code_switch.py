"""Lexicon induction (IBM Model 1) and code-switching for the restore task (Zan et al. 2022)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.cli import main
from seqweave.data.code_switch import (
    code_switch,
    eligible_positions,
    restore_pairs,
    switch_count,
)
from seqweave.data.lexicon import Lexicon, ibm_model1, induce_lexicon, words
from seqweave.errors import ConfigError, DataError

SOURCE_WORDS = [f"s{i}" for i in range(40)]


def planted_bitext(seed: int, count: int = 600) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A random one-to-one lexicon and sentences translated word by word, the target in a
    shuffled order with a function word ("the") added to every target: alignment has to
    come from co-occurrence, not position, and a frequent word must not win."""
    rng = random.Random(seed)
    targets = [f"T{i}" for i in range(len(SOURCE_WORDS))]
    rng.shuffle(targets)
    planted = dict(zip(SOURCE_WORDS, targets, strict=True))
    pairs = []
    for _ in range(count):
        sentence = rng.sample(SOURCE_WORDS, rng.randint(3, 8))
        translated = [planted[w] for w in sentence] + ["the"]
        rng.shuffle(translated)
        pairs.append((" ".join(sentence) + ".", " ".join(translated) + " ."))
    return planted, pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_induction_recovers_a_planted_lexicon(seed):
    planted, pairs = planted_bitext(seed)
    lexicon = induce_lexicon(pairs, iterations=5)
    assert {word: lexicon.translate(word) for word in planted} == planted
    assert set(lexicon.entries) == set(planted)  # and nothing else ("the" has no source)


def test_ibm_model1_probabilities_are_normalised_and_pick_the_aligned_word():
    sources = [np.array([1, 2]), np.array([1, 3]), np.array([2, 3])]
    targets = [np.array([4, 5]), np.array([4, 6]), np.array([5, 6])]
    keys, t = ibm_model1(sources, targets, 4, 7, iterations=10)
    source_of = keys // 7
    for e in range(4):
        assert t[source_of == e].sum() == pytest.approx(1.0)
    best = {int(e): int(keys[source_of == e][np.argmax(t[source_of == e])] % 7) for e in (1, 2, 3)}
    assert best == {1: 4, 2: 5, 3: 6}


def test_translations_keep_their_usual_surface_form():
    pairs = [("the dog runs", "Der Hund läuft"), ("a dog sits", "ein Hund sitzt")] * 5
    lexicon = induce_lexicon(pairs, min_score=0.0)
    assert lexicon.translate("dog") == "Hund"  # capitalised inside sentences too
    assert lexicon.translate("Dog") == "Hund"  # looked up lowercased


def test_min_count_and_min_score_drop_entries():
    _, pairs = planted_bitext(0)
    pairs = [*pairs, ("rareword s1", "T99 x")]
    assert "rareword" not in induce_lexicon(pairs, min_count=2).entries
    assert "rareword" in induce_lexicon(pairs, min_count=1, min_score=0.0).entries
    assert len(induce_lexicon(pairs, min_score=1.0)) == 0


def test_lexicon_save_load_round_trip(tmp_path):
    lexicon = Lexicon(
        "en", "de", {"dog": ("Hund", 0.88), "straße": ("street", 0.5), "a": ("ein", 1)}
    )
    path = lexicon.save(tmp_path / "sub" / "lexicon.json")
    assert Lexicon.load(path) == lexicon
    induced = induce_lexicon(planted_bitext(3)[1])
    assert Lexicon.load(induced.save(tmp_path / "induced.json")) == induced


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a JSON lexicon"),
        ('{"entries": {}}', "not a lexicon"),
        ('{"format": "seqweave.lexicon/1", "entries": []}', "'entries' must be an object"),
        ('{"format": "seqweave.lexicon/1", "entries": {"dog": ["Hund"]}}', "entry 'dog'"),
        ('{"format": "seqweave.lexicon/1", "entries": {"dog": ["Hund", "x"]}}', "entry 'dog'"),
    ],
)
def test_malformed_lexicon_files_are_rejected_with_the_path(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        Lexicon.load(path)
    assert str(path) in str(caught.value)


def test_missing_lexicon_file(tmp_path):
    with pytest.raises(DataError, match="no such lexicon file"):
        Lexicon.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iterations": 0}, "iterations"),
        ({"min_count": 0}, "min_count"),
        ({"min_score": 1.5}, "min_score"),
        ({"min_score": float("nan")}, "min_score"),
    ],
)
def test_bad_induction_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        induce_lexicon(planted_bitext(0, 10)[1], **kwargs)


def test_induction_needs_words_on_both_sides():
    with pytest.raises(DataError, match="nothing to induce"):
        induce_lexicon([("...", "!!"), ("word", "")])


LEXICON = Lexicon("en", "de", {f"w{i}": (f"x{i}", 0.9) for i in range(8)} | {"same": ("Same", 1)})
SENTENCE_WORDS = st.sampled_from([f"w{i}" for i in range(8)] + ["same", "unknown", "W3", "zz"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(SENTENCE_WORDS, max_size=12),
    st.sampled_from([" ", ", ", " - "]),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32),
)
def test_code_switch_replaces_exactly_the_requested_share(tokens, separator, ratio, seed):
    text = separator.join(tokens) + "."
    switched = code_switch(text, LEXICON, ratio, random.Random(seed))
    eligible = [i for i, w in enumerate(tokens) if w.lower() in LEXICON.entries and w != "same"]
    assert switched.eligible == len(eligible) == len(eligible_positions(text, LEXICON))
    assert len(switched.replaced) == switch_count(len(eligible), ratio)
    assert set(switched.replaced) <= set(eligible)
    expected = list(tokens)
    for i in switched.replaced:  # switched words become their translation ...
        expected[i] = LEXICON.translate(tokens[i])
        if i == 0 and tokens[i][0].isupper():
            expected[i] = expected[i][0].upper() + expected[i][1:]
    # ... and everything else (unknown words, identical translations, separators) stays
    assert switched.text == separator.join(expected) + "."
    again = code_switch(text, LEXICON, ratio, random.Random(seed))
    assert again == switched  # seeded: reproducible


def test_switch_count_rounds_halves_up():
    assert [switch_count(n, 0.5) for n in range(5)] == [0, 1, 1, 2, 2]
    assert switch_count(7, 0.0) == 0 and switch_count(7, 1.0) == 7
    assert switch_count(10, 0.3) == 3


def test_ratio_one_switches_every_eligible_word_and_capitalises_the_first():
    switched = code_switch("W1 saw w2 and same zz", LEXICON, 1.0, random.Random(0))
    assert switched.text == "X1 saw x2 and same zz"
    assert switched.replaced == (0, 2)


@pytest.mark.parametrize("ratio", [-0.1, 1.01, float("nan")])
def test_bad_ratio_is_rejected(ratio):
    with pytest.raises(ConfigError, match="ratio"):
        code_switch("w1 w2", LEXICON, ratio, random.Random(0))
    with pytest.raises(ConfigError, match="ratio"):
        restore_pairs(["w1 w2"], LEXICON, ratio, seed=0)


def test_restore_pairs_target_the_original_and_skip_unswitched_sentences():
    texts = ["w1 w2 w3 zz", "zz only unknown", "same same", "w4, w5!"]
    pairs = restore_pairs(texts, LEXICON, 0.5, seed=7)
    assert [original for _, original in pairs] == ["w1 w2 w3 zz", "w4, w5!"]
    for switched, original in pairs:
        assert switched != original
        assert len(words(switched)) == len(words(original))
    assert pairs == restore_pairs(texts, LEXICON, 0.5, seed=7)
    seeds = {tuple(restore_pairs(texts * 5, LEXICON, 0.5, seed=s)) for s in range(5)}
    assert len(seeds) > 1  # the seed matters


def test_lexicon_command_writes_a_lexicon_and_reports_bad_lines(tmp_path, capsys):
    planted, pairs = planted_bitext(4)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in pairs))
    out = tmp_path / "lexicon.json"
    assert main(["lexicon", "--data", str(data), "--output", str(out), "--reverse"]) == 0
    reverse = Lexicon.load(out)
    assert {target: reverse.translate(target) for target in planted.values()} == {
        target: source for source, target in planted.items()
    }
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "a", "target": "b"}\n{"source": "a", "target": \n')
    assert main(["lexicon", "--data", str(bad), "--output", str(tmp_path / "x.json")]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err
