"""Packed rows: each packed sequence gets the logits it gets alone; no read sees another."""

from __future__ import annotations

import json

import pytest
import torch

from seqweave.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)
from seqweave.data.packing import collate_packed, pack_rows, packed_batches
from seqweave.data.tokenized import collate
from seqweave.errors import ConfigError
from seqweave.objectives.registry import build_training_loss
from seqweave.tokenizers import dna_tokenizer
from seqweave.train import train
from seqweave.train.report import read_metrics
from tests.conftest import VOCAB, tiny_config, tiny_model

PREFIX_KINDS = {
    "prefix_lm": dict(architecture="prefix_lm"),
    "palm": dict(architecture="prefix_lm", partial_attention=True),
}


def _targets(seed: int, count: int = 7) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 12, (count,), generator=generator).tolist()
    return [torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in lengths]


@pytest.mark.parametrize("kind", sorted(PREFIX_KINDS))
def test_each_packed_sequence_gets_its_logits_alone(kind):
    model = tiny_model(**PREFIX_KINDS[kind])
    cfg, targets = model.config, _targets(1)
    source = [cfg.eos_id]
    packed = collate_packed([source] * len(targets), targets, cfg, row_tokens=30)
    assert packed.src.shape[0] < len(targets)  # several sequences share a row
    alone = collate([source] * len(targets), targets, cfg)
    with torch.no_grad():
        packed_logits = model(packed.src, packed.src_lengths, packed.tgt_in, packed.segments)
        alone_logits = model(alone.src, alone.src_lengths, alone.tgt_in)
    for row, members in enumerate(pack_rows([len(t) + 1 for t in targets], 30)):
        at = 0
        for i in members:
            n = len(targets[i]) + 1
            torch.testing.assert_close(
                packed_logits[row, at : at + n], alone_logits[i, :n], rtol=1e-5, atol=1e-5
            )
            assert torch.equal(packed.tgt_out[row, at : at + n], alone.tgt_out[i, :n])
            at += n


@pytest.mark.parametrize("kind", sorted(PREFIX_KINDS))
def test_changing_one_read_leaves_the_others_unchanged(kind):
    model = tiny_model(**PREFIX_KINDS[kind])
    cfg, targets = model.config, _targets(2, count=4)
    changed = [list(t) for t in targets]
    changed[1] = [4 + (token - 3) % (VOCAB - 4) for token in changed[1]]
    rows = [collate_packed([[cfg.eos_id]] * 4, t, cfg, 200) for t in (targets, changed)]
    assert rows[0].src.shape[0] == 1 and rows[0].tgt_in.shape == rows[1].tgt_in.shape
    with torch.no_grad():
        first, second = (model(b.src, b.src_lengths, b.tgt_in, b.segments) for b in rows)
    segments = rows[0].segments[0]
    assert not torch.equal(first[0, segments == 1], second[0, segments == 1])
    others = (segments != 1) & (segments >= 0)
    assert torch.equal(first[0, others], second[0, others])


def test_rows_and_batches():
    assert pack_rows([3, 4, 2, 5, 1], 6) == [[0], [1, 2], [3, 4]]
    lengths = [3, 9, 4, 4, 7, 2, 8]
    batches = packed_batches(lengths, 12, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 12 for b in batches)
    assert batches == packed_batches(lengths, 12, seed=1) != packed_batches(lengths, 12, seed=2)


def test_packed_loss_equals_the_padded_loss():
    """The training loss of a packed batch is the loss of the same examples padded."""
    config = ExperimentConfig(model=tiny_config(architecture="prefix_lm"))
    model = tiny_model(architecture="prefix_lm")
    targets, source = _targets(3), [model.config.eos_id]
    loss = build_training_loss(config)
    with torch.no_grad():
        packed = loss(model, model, collate_packed([source] * 7, targets, model.config, 40))
        padded = loss(model, model, collate([source] * 7, targets, model.config))
    torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-5)


def test_per_base_reads_pack_as_in_the_dna_recipe():
    """The recipe's one-token-per-base decoder: 100 bp reads (101 tokens with the end) two to
    a row of 256 tokens; each read's loss packed equals its loss alone, at every position."""
    tokenizer = dna_tokenizer()
    model = tiny_model(architecture="prefix_lm", vocab_size=tokenizer.vocab_size, max_positions=256)
    generator = torch.Generator().manual_seed(4)
    reads = ["".join("ACGT"[int(i)] for i in torch.randint(0, 4, (100,), generator=generator))]
    reads += [read[::-1] for read in reads] + [read[50:] + read[:50] for read in reads]
    targets, source = tokenizer.encode_batch(reads), [model.config.eos_id]
    packed = collate_packed([source] * 3, targets, model.config, row_tokens=256)
    alone = collate([source] * 3, targets, model.config)
    assert packed.tgt_in.shape == (2, 202)
    with torch.no_grad():
        packed_logits = model(packed.src, packed.src_lengths, packed.tgt_in, packed.segments)
        alone_logits = model(alone.src, alone.src_lengths, alone.tgt_in)
    torch.testing.assert_close(packed_logits[0, 101:], alone_logits[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed_logits[1, :101], alone_logits[2], rtol=1e-5, atol=1e-5)
    assert torch.equal(packed.tgt_out[0, 101:], alone.tgt_out[1])


def test_packing_is_refused_where_it_cannot_work():
    with pytest.raises(ConfigError, match="pack_sequences"):
        ExperimentConfig(model=ModelConfig(), data=DataConfig(pack_sequences=True))
    with pytest.raises(ValueError, match="sources differ"):
        collate_packed([[2], [5, 2]], [[4], [5]], tiny_config(), 10)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_training_on_packed_reads(tmp_path):
    """seqweave.train with data.pack_sequences learns, and differing sources are refused."""
    reads = ["".join("ACGT"[(i * 7 + j * j) % 4] for j in range(8 + i % 9)) for i in range(60)]
    _write(tmp_path / "train.jsonl", [{"source": "", "target": r} for r in reads])
    _write(tmp_path / "valid.jsonl", [{"source": "", "target": r} for r in reads[:8]])
    model = dict(d_model=16, num_heads=2, decoder_layers=1, ffn_dim=32, max_positions=64)
    train_cfg = dict(max_steps=30, validate_every=30, warmup_steps=2, log_every=1, lr=3e-3)
    train_cfg.update(out_dir=str(tmp_path / "run"), metric="none", progress=False)
    cfg = ExperimentConfig(
        model=ModelConfig(architecture="prefix_lm", **model),
        tokenizer=TokenizerConfig(kind="dna"),
        data=DataConfig(
            train=str(tmp_path / "train.jsonl"),
            valid=str(tmp_path / "valid.jsonl"),
            max_target_len=48,
            max_tokens=96,
            pack_sequences=True,
        ),
        train=TrainConfig(**train_cfg),
    )
    train(cfg)
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "loss" in r]
    assert losses[-1] < 0.8 * losses[0]
    _write(tmp_path / "train.jsonl", [{"source": r[:3], "target": r} for r in reads])
    with pytest.raises(ConfigError, match="sources differ"):
        train(cfg)
