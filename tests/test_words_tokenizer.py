"""The words tokenizer: one token per word, a vocabulary from the data, <unk> for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.errors import ConfigError
from seqweave.tokenizers import SPECIAL_TOKENS, Tokenizer, build_tokenizer, words_tokenizer

TEXTS = [
    "food[Italian] area[city_centre] name[The_Eagle]",
    "area[city_centre] food[French]",
    "food[Italian] priceRange[cheap]",
    "item17 item4 item17 item900",
]
WORD = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
).map(lambda text: "".join(text.split()) or "x")


def test_ids_are_specials_then_words_by_frequency_and_then_by_spelling():
    tokenizer = words_tokenizer(TEXTS)
    vocab = tokenizer.backend.get_vocab()
    assert [vocab[token] for token in SPECIAL_TOKENS] == [0, 1, 2, 3]
    # food[Italian], area[city_centre] and item17 occur twice; then the rest by spelling
    order = sorted(vocab, key=vocab.get)[4:]
    assert order[:3] == ["area[city_centre]", "food[Italian]", "item17"]
    assert order[3:] == sorted(order[3:])
    assert len(order) == len({w for text in TEXTS for w in text.split()})


def test_each_word_is_one_token_and_decodes_with_single_spaces():
    tokenizer = words_tokenizer(TEXTS)
    ids = tokenizer.encode("  food[French]\tname[The_Eagle]\n item4 ")
    assert len(ids) == 3
    assert tokenizer.decode(ids) == "food[French] name[The_Eagle] item4"


@given(words=st.lists(WORD, min_size=1, max_size=12, unique=True), data=st.data())
@settings(max_examples=80, deadline=None)
def test_text_of_known_words_round_trips(words, data):
    tokenizer = words_tokenizer([" ".join(words)])
    picked = data.draw(st.lists(st.sampled_from(words), max_size=20))
    text = " ".join(picked)
    ids = tokenizer.encode(text)
    known = [w for w in picked if w not in SPECIAL_TOKENS]
    if known == picked:
        assert tokenizer.decode(ids) == text
        assert len(ids) == len(picked)
    assert tokenizer.unk_id not in [tokenizer.encode(w)[0] for w in known]


def test_unknown_and_rare_words_are_unk_and_decode_as_unk():
    tokenizer = words_tokenizer(TEXTS, min_frequency=2)
    ids = tokenizer.encode("food[Italian] food[French] never_seen")
    assert ids[1:] == [tokenizer.unk_id, tokenizer.unk_id]
    assert tokenizer.decode(ids) == "food[Italian] <unk> <unk>"


def test_a_word_spelled_like_a_special_token_is_unk_not_the_special():
    tokenizer = words_tokenizer([*TEXTS, "</s> <pad> <s> <2de>"], task_tokens=["<2de>"])
    ids = tokenizer.encode("item4 </s> <pad> <s> <unk> <2de> x</s>")
    assert ids[0] == tokenizer.token_to_id("item4")
    assert ids[1:] == [tokenizer.unk_id] * 6
    assert tokenizer.token_to_id("<2de>") in tokenizer.special_ids


def test_vocab_size_keeps_the_most_frequent_words():
    tokenizer = words_tokenizer(TEXTS, vocab_size=6)
    assert tokenizer.vocab_size == 6
    assert tokenizer.token_to_id("area[city_centre]") == 4
    assert tokenizer.token_to_id("food[Italian]") == 5
    assert tokenizer.encode("item17") == [tokenizer.unk_id]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"min_frequency": 0}, "min_frequency must be >= 1"),
        ({"vocab_size": 4}, "no room for words"),
    ],
)
def test_bad_settings_are_refused(arguments, message):
    with pytest.raises(ConfigError, match=message):
        words_tokenizer(TEXTS, **arguments)


def test_the_registry_builds_it_from_the_config_values(tmp_path: Path):
    tokenizer = build_tokenizer("words", TEXTS, 100, ["<empty>"], None, min_frequency=2)
    assert tokenizer.vocab_size == 4 + 3 + 1  # specials, three words seen twice, the task token
    with pytest.raises(ConfigError, match="built from texts"):
        build_tokenizer("words", None, 100, (), None)
    loaded = Tokenizer.load(tokenizer.save(tmp_path))
    assert loaded.backend.get_vocab() == tokenizer.backend.get_vocab()
    text = "item17 <empty> food[Italian] unknown"
    assert loaded.encode(text) == tokenizer.encode(text)
    assert loaded.decode(loaded.encode(text)) == "item17 <unk> food[Italian] <unk>"
