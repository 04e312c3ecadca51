"""Tokenizer round trips, special-token safety, save/load, and agreement with Hugging Face."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tokenizers
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.errors import CheckpointError, ConfigError
from seqweave.tokenizers import (
    DNA_ALPHABET,
    NUMBER_ALPHABET,
    PROTEIN_ALPHABET,
    SPECIAL_TOKENS,
    TOKENIZERS,
    Tokenizer,
    alphabet_tokenizer,
    build_tokenizer,
    dna_tokenizer,
    number_tokenizer,
    protein_tokenizer,
    train_bpe,
)
from tests.shared import SHARED, require_shared

BART_PARTS = ("models", "gec-bart-anchor", "tokenizer.json")
BART_TOKENIZER = SHARED.joinpath(*BART_PARTS)  # read by the tests that took the bart fixture

CORPUS = [
    "A dog runs in the park.",
    "Two men are working on their laptops.",
    "A woman in a red dress sings on a stage.",
    "Ein Hund läuft im Park. 日本語のテキスト 😀",
    "def main():\n\treturn 0\n",
] * 20
TRICKY = [
    "",
    " ",
    "  leading and trailing  ",
    "tabs\tand\nnewlines\r\n",
    "emoji 😀👩‍👩‍👧 and 日本語",
    "multiple    spaces",
    "\x00 nul and \u200b zero width",
]
SPECIAL_STRINGS = ["</s>", "<pad>", "<s>", "<unk>", "<2de>", "stop here </s> and <pad><pad> go on"]


@pytest.fixture(scope="module")
def bpe() -> Tokenizer:
    return train_bpe(CORPUS, vocab_size=300, min_frequency=2, task_tokens=["<2de>", "<fix>"])


@pytest.fixture(scope="module")
def bart() -> Tokenizer:
    return Tokenizer.load(require_shared(*BART_PARTS))


# --- built tokenizers: layout -------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_built_tokenizers_number_specials_0_to_3(kind: str) -> None:
    tokenizer = build_tokenizer(
        kind,
        CORPUS,
        vocab_size=300,
        task_tokens=["<t>"],
        alphabet="ab" if kind == "alphabet" else None,
    )
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    assert tokenizer.token_to_id("<t>") == tokenizer.vocab_size - 1


def test_bpe_vocab_size_counts_learned_tokens_and_task_tokens_come_on_top(bpe: Tokenizer) -> None:
    assert bpe.vocab_size == 300 + 2
    assert [bpe.token_to_id("<2de>"), bpe.token_to_id("<fix>")] == [300, 301]


def test_bpe_rejects_a_vocab_too_small_for_the_bytes() -> None:
    with pytest.raises(ConfigError, match="at least 260"):
        train_bpe(CORPUS, vocab_size=100)


# --- byte-level BPE round trip ------------------------------------------------------------


@pytest.mark.parametrize("text", TRICKY + SPECIAL_STRINGS)
def test_bpe_round_trips_tricky_text(bpe: Tokenizer, text: str) -> None:
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_bpe_round_trips_any_string(bpe: Tokenizer, text: str) -> None:
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert bpe.unk_id not in ids


@settings(max_examples=100, deadline=None)
@given(text=st.lists(st.one_of(st.text(max_size=5), st.sampled_from(SPECIAL_STRINGS))).map("".join))
def test_text_containing_special_strings_is_plain_text(bpe: Tokenizer, text: str) -> None:
    ids = bpe.encode(text)
    specials = {bpe.pad_id, bpe.bos_id, bpe.eos_id, bpe.unk_id, bpe.token_to_id("<2de>")}
    assert specials.isdisjoint(ids)
    assert bpe.decode(ids) == text


def test_end_of_sequence_in_user_text_is_not_eos(bpe: Tokenizer) -> None:
    ids = bpe.encode("a</s>b")
    assert bpe.eos_id not in ids
    assert len(ids) > 3


def test_encode_batch_matches_encode(bpe: Tokenizer) -> None:
    texts = TRICKY + SPECIAL_STRINGS + CORPUS[:5]
    assert bpe.encode_batch(texts) == [bpe.encode(t) for t in texts]
    assert bpe.decode_batch(bpe.encode_batch(texts)) == texts


def test_encode_batch_refuses_a_single_string(bpe: Tokenizer) -> None:
    with pytest.raises(TypeError):
        bpe.encode_batch("one text")


# --- decode -------------------------------------------------------------------------------


def test_decode_skips_pad_bos_eos_and_task_tokens_but_keeps_unk(bpe: Tokenizer) -> None:
    body = bpe.encode("hello")
    task = bpe.token_to_id("<2de>")
    ids = [task, bpe.bos_id, *body, bpe.unk_id, bpe.eos_id, bpe.pad_id, bpe.pad_id]
    assert bpe.decode(ids) == "hello<unk>"
    assert bpe.decode(ids, skip_special_tokens=False) == "<2de><s>hello<unk></s><pad><pad>"


def test_decode_accepts_tensors(bpe: Tokenizer) -> None:
    torch = pytest.importorskip("torch")
    rows = [[*bpe.encode(text), bpe.eos_id] for text in ("dog", "a cat")]
    width = max(len(row) for row in rows)
    batch = torch.tensor([row + [bpe.pad_id] * (width - len(row)) for row in rows])  # (B, T)
    assert bpe.decode(batch[0]) == "dog"
    assert bpe.decode_batch(batch) == ["dog", "a cat"]


@pytest.mark.parametrize("bad", [-100, 302, 10**6])
def test_decode_rejects_ids_outside_the_vocabulary(bpe: Tokenizer, bad: int) -> None:
    with pytest.raises(ValueError, match=f"token id {bad}"):
        bpe.decode([5, bad])


# --- task tokens ----------------------------------------------------------------------------


def test_task_tokens_are_never_split_and_adding_again_returns_the_same_id() -> None:
    tokenizer = dna_tokenizer()
    first = tokenizer.add_task_tokens(["<splice>", "<promoter>"])
    assert tokenizer.add_task_tokens(["<promoter>"]) == first[1:]
    assert tokenizer.id_to_token(first[0]) == "<splice>"
    assert first[0] not in tokenizer.encode("<splice>ACGT")


@pytest.mark.parametrize("tokens", [[""], ["</s>"], ["<pad>"], ["A"], "<fix>"])
def test_task_tokens_that_would_clash_are_refused(tokens: list[str]) -> None:
    with pytest.raises(ConfigError):
        protein_tokenizer().add_task_tokens(tokens)


def test_a_task_token_that_is_an_ordinary_bpe_token_is_refused(bpe: Tokenizer) -> None:
    ordinary = bpe.backend.id_to_token(bpe.encode("the")[0])
    with pytest.raises(ConfigError, match="ordinary token"):
        bpe.add_task_tokens([ordinary])


# --- alphabet tokenizers --------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize(
    ("build", "alphabet"),
    [
        (protein_tokenizer, PROTEIN_ALPHABET),
        (dna_tokenizer, DNA_ALPHABET),
        (number_tokenizer, NUMBER_ALPHABET),
    ],
)
def test_alphabet_tokenizers_round_trip_their_alphabet(build, alphabet: str, data) -> None:
    tokenizer = build()
    text = data.draw(st.text(alphabet=alphabet))
    ids = tokenizer.encode(text)
    assert len(ids) == len(text)
    assert tokenizer.unk_id not in ids
    assert tokenizer.decode(ids) == text


def test_number_lists_round_trip() -> None:
    tokenizer = number_tokenizer()
    text = "1.5e-3, -2; +40 7E10 0.25"
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_characters_outside_the_alphabet_are_one_unk_each() -> None:
    tokenizer = protein_tokenizer()
    ids = tokenizer.encode("AC*ZB-D")
    assert ids.count(tokenizer.unk_id) == 4
    assert len(ids) == 7
    assert tokenizer.decode(ids) == "AC<unk><unk><unk><unk>D"


def test_protein_and_dna_fold_lower_case_to_upper_case() -> None:
    assert dna_tokenizer().decode(dna_tokenizer().encode("acgTn")) == "ACGTN"
    protein = protein_tokenizer()
    assert protein.encode("mkvl") == protein.encode("MKVL")


def test_plain_alphabets_keep_case() -> None:
    tokenizer = alphabet_tokenizer("ab")
    assert tokenizer.encode("A") == [tokenizer.unk_id]


def test_special_strings_in_alphabet_text_are_plain_text() -> None:
    tokenizer = alphabet_tokenizer("<>/spadeunk")
    for text in SPECIAL_STRINGS[:4]:
        ids = tokenizer.encode(text)
        assert len(ids) == len(text)
        assert tokenizer.decode(ids) == text


@pytest.mark.parametrize("alphabet", ["", "aba", ["ab", "c"]])
def test_bad_alphabets_are_refused(alphabet) -> None:
    with pytest.raises(ConfigError):
        alphabet_tokenizer(alphabet)


# --- build_tokenizer ------------------------------------------------------------------------


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"alphabet.*bpe.*dna.*numbers.*protein"):
        build_tokenizer("wordpiece", None, 100, (), None)


@pytest.mark.parametrize(
    ("kind", "texts", "alphabet", "message"),
    [
        ("bpe", None, None, "kind 'bpe' is built from texts"),
        ("words", None, None, "kind 'words' is built from texts"),
        ("alphabet", None, None, "needs an alphabet"),
        ("dna", None, "ACGT", "only used by tokenizer kind 'alphabet'"),
    ],
)
def test_missing_or_misplaced_arguments_are_refused(kind, texts, alphabet, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build_tokenizer(kind, texts, 300, (), alphabet)


# --- save / load ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_save_load_round_trip_preserves_everything(kind: str, tmp_path: Path) -> None:
    alphabet = "abc " if kind == "alphabet" else None
    tokenizer = build_tokenizer(kind, CORPUS, 300, ["<2de>", "<fix>"], alphabet)
    path = tokenizer.save(tmp_path / "model")
    assert path == tmp_path / "model" / "tokenizer.json"
    loaded = Tokenizer.load(tmp_path / "model")

    assert loaded.backend.get_vocab() == tokenizer.backend.get_vocab()
    for name in ("pad_id", "bos_id", "eos_id", "unk_id", "vocab_size"):
        assert getattr(loaded, name) == getattr(tokenizer, name)
    texts = [*CORPUS[:5], "acgt 1.5", "<2de> </s> <fix>"]
    assert loaded.encode_batch(texts) == tokenizer.encode_batch(texts)
    task = loaded.token_to_id("<2de>")
    assert task == tokenizer.token_to_id("<2de>")
    assert loaded.add_task_tokens(["<2de>"]) == [task]
    assert task not in loaded.encode("<2de>")
    assert loaded.decode([task, *loaded.encode("abc")]) == tokenizer.decode(tokenizer.encode("abc"))


# Saved by seqweave before tokenizers.py became a package: train_bpe(CORPUS, 300,
# task_tokens=["<2de>", "<fix>"]) and protein_tokenizer(["<2de>", "<fix>"]).
EARLIER_FILES = Path(__file__).parent / "data" / "tokenizers"


@pytest.mark.parametrize("kind", ["bpe", "protein"])
def test_files_saved_by_earlier_versions_load_as_a_fresh_build(kind: str) -> None:
    old = Tokenizer.load(EARLIER_FILES / kind)
    fresh = build_tokenizer(kind, CORPUS, 300, ["<2de>", "<fix>"], None)

    assert old.backend.get_vocab() == fresh.backend.get_vocab()
    assert (old.pad_id, old.bos_id, old.eos_id, old.unk_id) == (0, 1, 2, 3)
    assert old.special_ids == fresh.special_ids
    texts = [*CORPUS[:5], *TRICKY, *SPECIAL_STRINGS, "mkvlAcgtBZ <fix>"]
    assert old.encode_batch(texts) == fresh.encode_batch(texts)
    task = old.token_to_id("<fix>")
    ids = [old.bos_id, task, *old.encode("mkvl dog"), old.eos_id]
    assert old.decode(ids) == fresh.decode(ids)


def test_load_accepts_the_file_itself(bpe: Tokenizer, tmp_path: Path) -> None:
    path = bpe.save(tmp_path)
    assert Tokenizer.load(path).encode("dog") == bpe.encode("dog")


def test_load_of_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no tokenizer file at .*tokenizer\.json"):
        Tokenizer.load(tmp_path)


@pytest.mark.parametrize("content", ["{not json", '{"version": "1.0"}', ""])
def test_load_of_a_corrupt_file_is_a_checkpoint_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "tokenizer.json").write_text(content)
    with pytest.raises(CheckpointError, match=r"not a valid tokenizer\.json"):
        Tokenizer.load(tmp_path)


def test_load_of_a_file_without_our_specials_names_the_missing_one(tmp_path: Path) -> None:
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel({"<pad>": 0, "x": 1}, "x"))
    backend.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(CheckpointError, match="no bos token '<s>'; pass bos="):
        Tokenizer.load(tmp_path)
    loaded = Tokenizer.load(tmp_path, bos="x", eos="x", unk="x")
    assert (loaded.pad_id, loaded.bos_id) == (0, 1)


# --- a Hugging Face BART tokenizer.json -----------------------------------------------------


def test_bart_specials_are_looked_up_by_name(bart: Tokenizer) -> None:
    assert (bart.bos_id, bart.pad_id, bart.eos_id, bart.unk_id) == (0, 1, 2, 3)
    assert bart.vocab_size == 8000


def test_bart_encode_adds_no_specials_unless_asked(bart: Tokenizer) -> None:
    text = "A dog run in a the park"
    reference = tokenizers.Tokenizer.from_file(str(BART_TOKENIZER))
    assert bart.encode(text, add_special_tokens=True) == reference.encode(text).ids
    assert bart.encode(text, add_special_tokens=True) == [0, *bart.encode(text), 2]
    assert bart.encode_batch([text], add_special_tokens=True) == [reference.encode(text).ids]


def test_bart_matches_transformers(bart: Tokenizer) -> None:
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoTokenizer.from_pretrained(str(BART_TOKENIZER.parent))
    texts = ["A dog run in a the park", "Two men working on there apple laptops", " x  y "]
    assert [bart.encode(t, add_special_tokens=True) for t in texts] == reference(texts)["input_ids"]
    ids = bart.encode(texts[0], add_special_tokens=True)
    assert bart.decode(ids) == reference.decode(ids, skip_special_tokens=True)


def test_bart_file_truncation_is_removed(bart: Tokenizer) -> None:
    settings_in_file = json.loads(BART_TOKENIZER.read_text())["truncation"]
    assert settings_in_file["max_length"] == 128
    assert len(bart.encode("word " * 300)) > 128


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_bart_round_trips_any_string(bart: Tokenizer, text: str) -> None:
    assert bart.decode(bart.encode(text)) == text
