"""Model directories: save/load round trip, atomic writes, and every way loading must refuse."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import seqweave
from seqweave.api import Seq2Seq
from seqweave.checkpoint import (
    atomic_write,
    load_tensors,
    save_model_dir,
    save_tensors,
    write_json,
)
from seqweave.config import DecodeConfig
from seqweave.errors import CheckpointError
from seqweave.tokenizers import alphabet_tokenizer
from tests.conftest import tiny_model

ALPHABET = "abcdefghij"
FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tokenizer():
    return alphabet_tokenizer(ALPHABET)


def build(seed: int = 0, **overrides):
    """A tiny model whose vocabulary and special ids fit the alphabet tokenizer."""
    tok = tokenizer()
    model = tiny_model(
        seed,
        pad_id=tok.pad_id,
        bos_id=tok.bos_id,
        eos_id=tok.eos_id,
        decoder_start_id=tok.bos_id,
        **overrides,
    )
    assert model.config.vocab_size >= tok.vocab_size
    return model, tok


def batch():
    """A fixed batch of two sources and teacher-forced decoder inputs (ids within the alphabet)."""
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 4, 2, 0, 0]])
    src_lengths = torch.tensor([5, 3])
    tgt_in = torch.tensor([[1, 5, 6, 7], [1, 9, 4, 13]])
    return src, src_lengths, tgt_in


@torch.no_grad()
def logits(network) -> torch.Tensor:
    return network.eval()(*batch())


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A complete model directory; tests that break it work on a copy (see ``broken``)."""
    model, tok = build()
    return save_model_dir(tmp_path_factory.mktemp("model") / "model", model, tok)


@pytest.fixture
def broken(saved, tmp_path) -> Path:
    directory = tmp_path / "model"
    shutil.copytree(saved, directory)
    return directory


@pytest.fixture
def no_unpickling(monkeypatch) -> list[str]:
    """Make every unpickling entry point fail loudly and record that it was called."""
    calls: list[str] = []

    def forbid(name):
        def forbidden(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called: the loader unpickled a file")

        return forbidden

    for module, name in (
        (pickle, "load"),
        (pickle, "loads"),
        (torch, "load"),
        (torch.serialization, "load"),
    ):
        monkeypatch.setattr(module, name, forbid(f"{module.__name__}.{name}"))
    return calls


def edit_json(path: Path, **changes) -> None:
    values = json.loads(path.read_text())
    values.update(changes)
    path.write_text(json.dumps(values))


def load_error(directory: Path) -> str:
    with pytest.raises(CheckpointError) as error:
        seqweave.load(directory)
    return str(error.value)


# -- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tie_output": False, "share_embeddings": False, "final_logits_bias": True},
        {"position": "learned", "norm": "post", "embedding_layer_norm": True},
        {"architecture": "prefix_lm", "position": "rope"},
    ],
    ids=["tied", "untied", "learned-post", "prefix_lm"],
)
def test_save_then_load_gives_identical_logits(tmp_path, overrides):
    model, tok = build(seed=3, **overrides)
    if model.config.final_logits_bias:
        with torch.no_grad():  # a zero bias would also survive a failure to save it
            model.final_logits_bias.normal_()
    directory = save_model_dir(tmp_path / "m", model, tok)
    loaded = seqweave.load(directory)
    assert loaded.config == model.config
    torch.testing.assert_close(logits(loaded.network), logits(model), atol=0, rtol=0)
    # The comparison can fail: a model with other weights gives other logits.
    other, _ = build(seed=4, **overrides)
    assert not torch.equal(logits(other), logits(model))
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], tensor), name


def test_round_trip_keeps_tokenizer_and_generation_config(tmp_path):
    model, tok = build()
    decode = DecodeConfig(decoder="beam", beam_size=3, max_new_tokens=7)
    loaded = seqweave.load(save_model_dir(tmp_path / "m", model, tok, decode))
    assert loaded.decode_config == decode
    assert loaded.tokenizer.vocab_size == tok.vocab_size
    assert loaded.tokenizer.encode("jihgfedcba") == tok.encode("jihgfedcba")
    assert loaded.tokenizer.decode(tok.encode("cabbage")) == "cabbage"
    original = Seq2Seq(model, tok, decode)
    texts = ["abc", "jihgf", ""]
    assert loaded.generate(texts, decoder="greedy") == original.generate(texts, decoder="greedy")


def test_model_dir_holds_exactly_the_four_files(saved):
    assert sorted(p.name for p in saved.iterdir()) == FILES
    # only settings that differ from the defaults are pinned; the rest follow the library
    assert json.loads((saved / "generation_config.json").read_text()) == {}


def test_generation_config_pins_changed_settings_only(tmp_path):
    model, tok = build(seed=0)
    decode = DecodeConfig(decoder="beam", beam_size=5)
    directory = save_model_dir(tmp_path / "m", model, tok, decode)
    pinned = json.loads((directory / "generation_config.json").read_text())
    assert pinned == {"decoder": "beam", "beam_size": 5}
    assert seqweave.load(directory).decode_config == decode


def test_saving_again_overwrites_in_place(tmp_path):
    first, tok = build(seed=0)
    second, _ = build(seed=1)
    directory = save_model_dir(tmp_path / "m", first, tok)
    save_model_dir(directory, second, tok)
    assert sorted(p.name for p in directory.iterdir()) == FILES  # no temporary left over
    loaded = logits(seqweave.load(directory).network)
    torch.testing.assert_close(loaded, logits(second), atol=0, rtol=0)


def test_loading_never_unpickles(saved, no_unpickling):
    seqweave.load(saved)
    assert no_unpickling == []


# -- missing pieces ----------------------------------------------------------------------------


def test_missing_directory(tmp_path):
    missing = tmp_path / "no-such-model"
    assert load_error(missing) == f"model directory {missing} does not exist"


def test_a_file_is_not_a_model_directory(saved):
    assert "does not exist" in load_error(saved / "config.json")


def test_missing_weights(broken):
    (broken / "model.safetensors").unlink()
    assert load_error(broken) == f"{broken / 'model.safetensors'} is missing"


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.ckpt", "model.pth"])
def test_pickled_weights_are_refused_not_unpickled(broken, no_unpickling, name):
    (broken / "model.safetensors").unlink()
    # A real pickle that would run code on load.
    (broken / name).write_bytes(pickle.dumps({"weights": [1.0, 2.0]}) + b"\x00" * 64)
    message = load_error(broken)
    assert f"no model.safetensors, only {name}" in message
    assert "never unpickles" in message
    assert no_unpickling == []


def test_pickle_refusal_lists_every_pickle(broken, no_unpickling):
    (broken / "model.safetensors").unlink()
    for name in ("training_args.bin", "pytorch_model.bin", "optimizer.pt"):
        (broken / name).write_bytes(b"\x80\x04K\x01.")
    assert "only optimizer.pt, pytorch_model.bin, training_args.bin;" in load_error(broken)
    assert no_unpickling == []


def test_directory_with_only_a_pickle_is_refused_without_unpickling(tmp_path, no_unpickling):
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps([1, 2, 3]))
    load_error(tmp_path)
    assert no_unpickling == []


def test_directory_with_only_a_pickle_says_it_will_not_unpickle(tmp_path, no_unpickling):
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps([1, 2, 3]))
    message = load_error(tmp_path)
    assert "pytorch_model.bin" in message
    assert "unpickle" in message


def test_missing_config(broken):
    (broken / "config.json").unlink()
    assert load_error(broken) == f"{broken / 'config.json'} is missing"


@pytest.mark.parametrize("corrupt", [None, b"", b"{not json", b"\xff\xfe\x00{}"])
def test_missing_or_corrupt_tokenizer(broken, corrupt):
    path = broken / "tokenizer.json"
    if corrupt is None:
        path.unlink()
        assert load_error(broken) == f"no tokenizer file at {path}"
    else:
        path.write_bytes(corrupt)
        assert load_error(broken).startswith(f"{path}: not a valid tokenizer.json (")


def test_tokenizer_json_that_is_json_but_not_a_tokenizer(broken):
    path = broken / "tokenizer.json"
    path.write_text(json.dumps({"version": "1.0", "model": {"type": "Nonsense"}}))
    assert load_error(broken).startswith(f"{path}: not a valid tokenizer.json")


def test_tokenizer_larger_than_the_model_vocabulary(broken):
    edit_json(broken / "config.json", vocab_size=10)
    message = load_error(broken)
    assert message == f"{broken}: tokenizer has 14 tokens but the model only 10"


def test_missing_generation_config_falls_back_to_defaults(broken):
    (broken / "generation_config.json").unlink()
    assert seqweave.load(broken).decode_config == DecodeConfig()


def test_unknown_key_in_generation_config(broken):
    edit_json(broken / "generation_config.json", beams=3)
    message = load_error(broken)
    assert message.startswith(f"{broken / 'generation_config.json'}: unknown key 'beams'")
    assert "beam_size" in message


# -- corrupt weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 5, 50, 0.5, -1], ids=["empty", "5B", "50B", "half", "-1B"])
def test_truncated_weights(broken, keep):
    path = broken / "model.safetensors"
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path.write_bytes(data[:cut])
    assert load_error(broken).startswith(f"{path} is corrupt or unreadable: ")


def test_garbage_weights(broken):
    path = broken / "model.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"not a json header at all" * 10)
    assert load_error(broken).startswith(f"{path} is corrupt or unreadable: ")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"d_model": 32}, "does not fit the model in config.json: "),
        ({"ffn_dim": 64}, "does not fit the model in config.json: "),
        ({"vocab_size": 60}, "does not fit the model in config.json: "),
        ({"encoder_layers": 3}, "does not match config.json: missing ['encoder_layers.2."),
        ({"decoder_layers": 1}, "does not match config.json: missing [], unexpected ['decoder"),
        ({"tie_output": False}, "does not match config.json: missing ['output.weight']"),
        ({"position": "learned"}, "does not match config.json: missing ['decoder_embed.pos"),
    ],
)
def test_weights_that_do_not_fit_config(broken, change, expected):
    edit_json(broken / "config.json", **change)
    message = load_error(broken)
    assert message.startswith(f"{broken / 'model.safetensors'} {expected}")
    if "fit" in expected:
        assert "size mismatch" in message


def test_extra_tensor_in_weights(broken):
    path = broken / "model.safetensors"
    tensors = load_file(str(path))
    tensors["stowaway.weight"] = torch.zeros(3)
    save_file(tensors, str(path))
    assert "unexpected ['stowaway.weight']" in load_error(broken)


# -- bad config.json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not valid JSON: "),
        ("", "is not valid JSON: "),
        (b"\xff\xfe{}", "is not valid JSON: "),
        ("[1, 2]", "must hold a JSON object"),
        ('{"d_model": 16, "n_layer": 4}', "unknown key 'n_layer'; valid keys: "),
        ('{"d_model": "16"}', "d_model must be int, got '16'"),
        ('{"position": "alibi"}', "model.position='alibi' is not one of"),
        ('{"d_model": 15, "num_heads": 2}', "not divisible"),
    ],
)
def test_bad_config_json(broken, text, expected):
    path = broken / "config.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    message = load_error(broken)
    assert message.startswith(str(path))
    assert expected in message


def test_unknown_config_key_lists_the_valid_ones(broken):
    edit_json(broken / "config.json", hidden_size=16)
    message = load_error(broken)
    assert "unknown key 'hidden_size'" in message
    for key in ("d_model", "num_heads", "vocab_size", "architecture"):
        assert key in message


# -- atomic writes -----------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old and complete")
    seen = []

    def half_write(tmp: Path) -> None:
        seen.append(tmp)
        with tmp.open("w") as handle:
            handle.write("new but ")
            handle.flush()
        assert tmp.read_text() == "new but "  # partial content is really on disk
        raise Boom("writer died midway")

    with pytest.raises(Boom):
        atomic_write(path, half_write)
    assert path.read_text() == "old and complete"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert seen and seen[0].parent == tmp_path and seen[0] != path
    assert not seen[0].exists()


def test_atomic_write_leaves_nothing_when_there_was_no_old_file(tmp_path):
    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(tmp_path / "new.bin", fail)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_before_the_temp_file_exists(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("keep")

    def fail(tmp: Path) -> None:
        raise Boom

    with pytest.raises(Boom):
        atomic_write(path, fail)
    assert path.read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_atomic_write_replaces_on_success(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    atomic_write(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_write_json_round_trips(tmp_path):
    value = {"step": 3, "betas": [0.9, 0.98], "name": "ünïcode"}
    write_json(tmp_path / "v.json", value)
    assert json.loads((tmp_path / "v.json").read_text()) == value


def test_save_and_load_tensors(tmp_path):
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    save_tensors(tmp_path / "t.safetensors", tensors)
    loaded = load_tensors(tmp_path / "t.safetensors")
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert torch.equal(loaded[name], tensor)


def test_load_tensors_errors(tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(CheckpointError, match=re.escape(f"{missing} is missing")):
        load_tensors(missing)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError, match=re.escape(f"{corrupt} is corrupt or unreadable")):
        load_tensors(corrupt)
