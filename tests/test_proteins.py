"""Protein input: the documented mapping or a clear error, never a silent prediction; FASTA
input to ``seqweave generate`` with record names carried to the output."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seqweave
from seqweave.checkpoint import save_model_dir
from seqweave.cli import main
from seqweave.config import DecodeConfig
from seqweave.data.proteins import clean_protein, is_protein_vocabulary
from seqweave.errors import ConfigError, DataError
from seqweave.tokenizers import (
    dna_tokenizer,
    protein_task_tokenizer,
    protein_tokenizer,
    train_bpe,
    words_tokenizer,
)
from tests.conftest import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TASKS = ("<task=ss>", "<task=fitness>", "<task=helix_starts>")


@pytest.mark.parametrize(
    "text, cleaned",
    [
        ("mkvLA", "MKVLA"),
        ("MKVB", "MKVX"),
        ("zjuoX", "XXXXX"),
        ("MKV*", "MKV"),
        ("<task=ss>mkv*", "<task=ss>MKV"),
    ],
)
def test_documented_mapping(text, cleaned):
    assert clean_protein(text) == cleaned


@pytest.mark.parametrize(
    "text, words",
    [
        ("MK7V", "position 3: '7'"),
        ("MK V", "position 3: whitespace"),
        ("MK*V", "position 3: a stop"),
        ("MK-V", "position 3: '-'"),
        ("MK.V", "position 3: '.'"),
        ("", "no residues"),
        ("*", "no residues"),
        ("<task=ss>", "no residues"),
    ],
)
def test_characters_outside_the_alphabet_are_errors(text, words):
    with pytest.raises(DataError, match=words) as caught:
        clean_protein(text, "record 'p1'", path="in.fasta", line=4)
    assert str(caught.value).startswith("in.fasta:4: record 'p1'")


def test_which_vocabularies_read_proteins():
    assert is_protein_vocabulary(protein_tokenizer())
    assert is_protein_vocabulary(protein_task_tokenizer(TASKS))
    assert not is_protein_vocabulary(dna_tokenizer())
    assert not is_protein_vocabulary(words_tokenizer(["MKV LLA"] * 3, 100, 1, ()))
    assert not is_protein_vocabulary(train_bpe(["MKVLLAACDEFGHIKLMNPQRSTVWYX" * 5] * 20, 300))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(("", *TASKS)), st.text(st.sampled_from("ACDEFGHIKLMNPQRSTVWYX"), max_size=40)
)
def test_protein_task_tokens_are_read_from_text_and_round_trip(task, sequence):
    tokenizer = protein_task_tokenizer(TASKS)
    ids = tokenizer.encode(task + sequence)
    assert len(ids) == len(sequence) + bool(task)
    if task:
        assert ids[0] == tokenizer.token_to_id(task)
    assert tokenizer.decode(ids) == task + sequence
    assert tokenizer.encode(task + sequence.lower()) == ids


def test_task_tokens_must_be_bracketed():
    with pytest.raises(ConfigError, match="<task=NAME>"):
        protein_task_tokenizer(["ss"])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tokenizer = protein_task_tokenizer(TASKS)
    network = tiny_model(seed=1, vocab_size=tokenizer.vocab_size)
    path = tmp_path_factory.mktemp("protein") / "model"
    return save_model_dir(path, network, tokenizer, DecodeConfig(max_new_tokens=30))


def test_the_api_maps_or_refuses_like_the_docstring(model_dir):
    model = seqweave.load(model_dir)
    assert model.generate(["mkvB*"]) == model.generate(["MKVX"])
    with pytest.raises(DataError, match="input 1: position 2: '7'"):
        model.generate(["MKV", "M7"])


def run_generate(tmp_path, capsys, *args):
    code = main(["generate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


FASTA = ">sp|P1|ONE first protein\nMKVLA\nHHEEC\n>two\nmkvb*\n"


def test_generate_reads_fasta_and_carries_record_names(model_dir, tmp_path, capsys):
    path = tmp_path / "proteins.fasta"
    path.write_text(FASTA)
    code, out, err = run_generate(
        tmp_path, capsys, "--model", model_dir, "--input", path, "--prefix", "<task=ss>",
        "--constraint", "tasks",
    )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["name"], r["description"], r["source"]) for r in rows] == [
        ("sp|P1|ONE", "first protein", "MKVLAHHEEC"),
        ("two", "", "mkvb*"),
    ]
    assert [len(r["output"]) for r in rows] == [10, 4]  # one label per residue (B read as X)
    assert all(set(r["output"]) <= set("HEC") for r in rows)
    model = seqweave.load(model_dir)
    expected = model.generate(["<task=ss>MKVLAHHEEC", "<task=ss>MKVX"], constraint="tasks")
    assert [r["output"] for r in rows] == expected


def test_generate_takes_the_format_from_the_option(model_dir, tmp_path, capsys):
    path = tmp_path / "proteins.txt"
    path.write_text(FASTA)
    code, out, _ = run_generate(
        tmp_path, capsys, "--model", model_dir, "--input", path, "--input-format", "fasta"
    )
    assert code == 0 and [json.loads(line)["name"] for line in out.splitlines()] == [
        "sp|P1|ONE",
        "two",
    ]


@pytest.mark.parametrize(
    "content, words",
    [
        (">a\nMKV\n>b\nMK7V\n", "proteins.fasta:3: record 'b': position 3: '7'"),
        (">a\nMKV\n>b\nMK*V\n", "record 'b': position 3: a stop"),
        (">a\nMKV\n>b\n>c\nMK\n", "proteins.fasta:3: record 'b' has no sequence"),
    ],
)
def test_generate_names_the_bad_record(model_dir, tmp_path, capsys, content, words):
    path = tmp_path / "proteins.fasta"
    path.write_text(content)
    code, out, err = run_generate(tmp_path, capsys, "--model", model_dir, "--input", path)
    assert code == 2 and out == ""
    assert words in err


def test_generate_refuses_bad_residues_in_text_input_by_line(model_dir, tmp_path, capsys):
    path = tmp_path / "proteins.txt"
    path.write_text("MKV\nMK V\n")
    code, _, err = run_generate(tmp_path, capsys, "--model", model_dir, "--input", path)
    assert code == 2 and "proteins.txt:2: input: position 3: whitespace" in err


def test_generate_reads_fastq_too(model_dir, tmp_path, capsys):
    path = tmp_path / "reads.fq"
    path.write_text("@r1 first\nMKV\n+\n!!!\n@r2\nLLA\n+r2\n###\n")
    code, out, err = run_generate(tmp_path, capsys, "--model", model_dir, "--input", path)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["name"], r["source"]) for r in rows] == [("r1", "MKV"), ("r2", "LLA")]


def test_a_constraint_saved_with_the_model_is_its_default(tmp_path):
    tokenizer = protein_task_tokenizer(TASKS)
    network = tiny_model(seed=2, vocab_size=tokenizer.vocab_size)
    settings = DecodeConfig(max_new_tokens=30, constraint="tasks")
    model = seqweave.load(save_model_dir(tmp_path / "model", network, tokenizer, settings))
    outputs = model.generate(["<task=ss>MKVLA", "<task=fitness>MKV"])
    assert len(outputs[0]) == 5 and set(outputs[0]) <= set("HEC")
    float(outputs[1])  # a number
    assert model.generate(["<task=ss>MKVLA"], constraint="") != outputs[:1]
