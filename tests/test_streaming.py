"""Re-translation (seqweave.streaming), its measures, and the NAR editor of FReTNA."""

from __future__ import annotations

import json
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.api import Seq2Seq
from seqweave.cli import main
from seqweave.config import DecodeConfig
from seqweave.decoding.common import pad_batch
from seqweave.errors import ConfigError
from seqweave.models.base import require_step
from seqweave.streaming import (
    Update,
    average_lagging,
    delays,
    retranslate,
    stream_metrics,
)
from seqweave.tokenizers import alphabet_tokenizer
from tests.conftest import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LETTERS = "abcdefgh "  # the space makes words


def _tiny(architecture: str, seed: int = 0) -> Seq2Seq:
    tokenizer = alphabet_tokenizer(LETTERS)
    network = tiny_model(seed, architecture=architecture, vocab_size=tokenizer.vocab_size)
    return Seq2Seq(network, tokenizer, DecodeConfig(max_new_tokens=12))


def _updates(*outputs: list[int]) -> list[Update]:
    result, previous = [], []
    for n, tokens in enumerate(outputs, start=1):
        erased = len(previous) - next(
            (i for i, (a, b) in enumerate(zip(previous, tokens, strict=False)) if a != b),
            min(len(previous), len(tokens)),
        )
        result.append(Update(n, list(tokens), 1, erased, 0.0))
        previous = tokens
    return result


# -- measures --------------------------------------------------------------------------------


def test_erasure_delays_and_lag_of_a_hand_worked_stream():
    updates = _updates([5], [5, 6], [5, 7, 8])
    assert [u.erased for u in updates] == [0, 0, 1]  # 6 was taken back
    assert delays(updates) == [1, 3, 3]  # 5 stood from word 1; 7 and 8 came with word 3
    # 3 words, 3 tokens (rate 1): AL = ((1 - 0) + (3 - 1)) / 2, cut at the first delay of 3
    assert average_lagging(delays(updates), 3) == pytest.approx(1.5)
    metrics = stream_metrics([updates])
    assert metrics["normalized_erasure"] == pytest.approx(1 / 3)
    assert metrics["updates"] == 3


@given(n=st.integers(2, 30), k=st.integers(1, 30))
@settings(max_examples=50, deadline=None)
def test_a_wait_k_stream_lags_k_words(n, k):
    """Wait-k (Ma et al. 2019) with equal lengths emits token i after word min(i + k, n):
    its average lagging is k (while k < n)."""
    k = min(k, n - 1)
    outputs = [list(range(max(0, min(w - k + 1, n)))) for w in range(1, n + 1)]
    outputs[-1] = list(range(n))  # the whole source read: the rest of the output
    updates = _updates(*outputs)
    assert all(u.erased == 0 for u in updates)
    assert average_lagging(delays(updates), n) == pytest.approx(k)


def test_stream_metrics_rejects_empty_streams():
    with pytest.raises(ValueError, match="at least one update"):
        stream_metrics([[]])


# -- re-translation from scratch -------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["transformer", "prefix_lm"])
def test_each_update_is_the_models_translation_of_the_prefix(architecture):
    model = _tiny(architecture, seed=3)
    words = ["abc", "de", "fgh", "a", "bb"]
    updates = list(retranslate(model, words))
    assert [u.source_words for u in updates] == [1, 2, 3, 4, 5]
    previous: list[int] = []
    for n, update in enumerate(updates, start=1):
        (expected,) = model.generate_tokens([" ".join(words[:n])])
        assert update.tokens == expected.tokens
        assert update.passes == expected.stats.passes
        kept = 0
        while kept < min(len(previous), len(update.tokens)) and (
            previous[kept] == update.tokens[kept]
        ):
            kept += 1
        assert update.erased == len(previous) - kept
        previous = update.tokens


# -- the NAR editor --------------------------------------------------------------------------


def _editor(seed: int = 0, **overrides):
    return tiny_model(seed, architecture="nar_editor", **overrides)


def test_editor_training_pass_aligns_with_the_targets_and_is_repeatable_in_eval():
    editor = _editor()
    src = torch.tensor([[5, 6, 7, 2], [8, 9, 2, 0]])
    tgt_in = torch.tensor([[1, 10, 11, 12], [1, 13, 0, 0]])
    logits, length_logits = editor(src, torch.tensor([4, 3]), tgt_in, with_length=True)
    assert logits.shape == (2, 4, 50)
    assert length_logits.shape == (2, editor.config.max_positions)
    again = editor(src, torch.tensor([4, 3]), tgt_in)
    assert torch.equal(logits, again)  # eval mode: the corruption is seeded


@given(seed=st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_corruption_masks_or_keeps_real_positions_only(seed):
    editor = _editor()
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(4, 50, (6, 9), generator=generator)
    lengths = torch.randint(1, 10, (6,), generator=generator)
    real = torch.arange(9)[None, :] < lengths[:, None]
    targets = targets.masked_fill(~real, 0)
    canvas, masked = editor.corrupt(targets, lengths, generator)
    assert not (masked & ~real).any()
    changed = (canvas != targets) & real & ~masked
    assert (canvas[changed] >= 4).all()  # replacements are ordinary tokens
    assert changed.sum() <= (real & ~masked).sum()


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_editing_a_batch_equals_editing_each_row(passes):
    editor = _editor(seed=2)
    rng = random.Random(passes)
    sources = [[rng.randrange(4, 50) for _ in range(rng.randint(1, 9))] + [2] for _ in range(5)]
    previous = [[rng.randrange(4, 50) for _ in range(rng.randint(0, 7))] for _ in range(5)]
    src, lengths = pad_batch(sources, 0)
    batched = editor.edit(src, lengths, previous, passes)
    for source, prev, out in zip(sources, previous, batched, strict=True):
        one_src, one_len = pad_batch([source], 0)
        assert editor.edit(one_src, one_len, [prev], passes) == [out]
        assert all(t >= 3 for t in out)  # no pad, start or end token inside an output


def test_the_editor_does_not_decode_token_by_token_and_needs_a_pass():
    editor = _editor()
    src, lengths = pad_batch([[5, 2]], 0)
    assert not hasattr(editor, "step")  # it has its own protocol, not a step that raises
    with pytest.raises(ConfigError, match="does not decode token by token"):
        require_step(editor)
    with pytest.raises(ConfigError, match="at least one pass"):
        editor.edit(src, lengths, [[]], 0)


def test_streaming_with_an_editor_takes_its_fixed_passes_per_update():
    model = _tiny("transformer", seed=1)
    tokenizer = model.tokenizer
    editor = Seq2Seq(
        _editor(seed=4, vocab_size=tokenizer.vocab_size), tokenizer, DecodeConfig(max_new_tokens=12)
    )
    updates = list(retranslate(model, ["ab", "cd", "ef"], editor, edit_passes=3))
    assert [u.passes for u in updates] == [3, 3, 3]
    src, lengths = pad_batch(editor.encode_sources(["ab cd"]), 0)
    expected = editor.network.edit(src, lengths, [updates[0].tokens], 3)[0]
    assert updates[1].tokens == expected  # the second update edits the first one's output
    with pytest.raises(ConfigError, match="needs a nar_editor"):
        list(retranslate(model, ["ab"], model))


# -- training and the command line -----------------------------------------------------------


def _write_pairs(path, count, seed):
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            words = ["".join(rng.choices("abcdefgh", k=rng.randint(1, 3))) for _ in range(3)]
            source = " ".join(words)
            handle.write(json.dumps({"source": source, "target": source[::-1]}) + "\n")


def test_an_editor_trains_with_its_length_loss_and_streams_from_the_command_line(tmp_path, capsys):
    from seqweave.config import (
        DataConfig,
        ExperimentConfig,
        ModelConfig,
        TokenizerConfig,
        TrainConfig,
    )
    from seqweave.train import train

    _write_pairs(tmp_path / "train.jsonl", 300, 0)
    _write_pairs(tmp_path / "valid.jsonl", 20, 1)

    def config(architecture, out):
        return ExperimentConfig(
            model=ModelConfig(
                architecture=architecture,
                d_model=32,
                num_heads=2,
                encoder_layers=1,
                decoder_layers=1,
                ffn_dim=64,
                dropout=0.0,
                max_positions=64,
            ),
            tokenizer=TokenizerConfig(kind="alphabet", alphabet=LETTERS),
            data=DataConfig(
                train=str(tmp_path / "train.jsonl"),
                valid=str(tmp_path / "valid.jsonl"),
                max_tokens=512,
            ),
            train=TrainConfig(
                out_dir=str(tmp_path / out),
                max_steps=30,
                validate_every=30,
                warmup_steps=5,
                lr=3e-3,
                metric="exact",
                progress=False,
                log_every=10,
            ),
        )

    model_dir = train(config("transformer", "model"))
    editor_dir = train(config("nar_editor", "editor"))
    log = [json.loads(line) for line in (tmp_path / "editor" / "metrics.jsonl").open()]
    losses = [r["loss"] for r in log if r["kind"] == "train"]
    assert losses[-1] < losses[0]
    inputs = tmp_path / "in.txt"
    inputs.write_text("abc de fg\nh a\n")
    out = tmp_path / "updates.jsonl"
    argv = ["generate", "--model", str(model_dir), "--input", str(inputs), "--output", str(out)]
    assert main([*argv, "--stream-source", "--editor", str(editor_dir), "--stats"]) == 0
    records = [json.loads(line) for line in out.open()]
    assert [(r["input"], r["source_words"]) for r in records] == [
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 1),
        (1, 2),
    ]
    assert all(r["passes"] == 2 for r in records)
    assert "normalized erasure" in capsys.readouterr().err
    assert main([*argv, "--editor", str(editor_dir)]) == 2  # only with --stream-source
    assert "--stream-source" in capsys.readouterr().err
    assert main([*argv, "--stream-source", "--editor", str(model_dir)]) == 2
    assert "needs a nar_editor" in capsys.readouterr().err
