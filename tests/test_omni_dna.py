"""Omni-DNA's pieces: vocabulary extension with old logits unchanged, NEFTune noise, and
the DNA scores (bits per base pair, label choice) against step-by-step references."""

from __future__ import annotations

import json
import math

import pytest
import torch

import seqweave
from seqweave.api import Seq2Seq
from seqweave.cli import main
from seqweave.config import (
    DataConfig,
    DecodeConfig,
    ExperimentConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)
from seqweave.data.framing import frame_source
from seqweave.errors import ConfigError
from seqweave.metrics_dna import bits_per_base, choose_labels, read_bits
from seqweave.models.vocab import extend_vocabulary
from seqweave.tokenizers import dna_tokenizer
from seqweave.train import train
from seqweave.train.neftune import add_neftune
from seqweave.train.report import read_metrics
from tests.conftest import tiny_model

KINDS = {
    "prefix_lm": dict(architecture="prefix_lm"),
    "transformer_untied": dict(tie_output=False, final_logits_bias=True),
}
LABELS = ["<EI>", "<IE>", "<N>"]


def _model(kind: str = "prefix_lm", seed: int = 0):
    tokenizer = dna_tokenizer()
    network = tiny_model(seed, vocab_size=tokenizer.vocab_size, **KINDS[kind])
    with torch.no_grad():  # a non-zero bias, so that copying it is tested too
        if network.final_logits_bias is not None:
            network.final_logits_bias.normal_()
    return network, tokenizer


def _logits(network, tokenizer, sources, targets):
    cfg = network.config
    src = [frame_source(tokenizer.encode(s), cfg) for s in sources]
    tgt = [[cfg.decoder_start_id, *tokenizer.encode(t)] for t in targets]
    S, T = max(map(len, src)), max(map(len, tgt))
    pad = lambda rows, n: torch.tensor([r + [cfg.pad_id] * (n - len(r)) for r in rows])
    with torch.no_grad():
        return network(pad(src, S), torch.tensor([len(s) for s in src]), pad(tgt, T))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_extended_model_keeps_the_old_logits(kind):
    network, tokenizer = _model(kind)
    sources, targets = ["ACGTTGCA", "GGA"], ["TTAC", "A"]
    before = _logits(network, tokenizer, sources, targets)
    old_size = tokenizer.vocab_size
    grown, ids = extend_vocabulary(network, tokenizer, ["<splice>", *LABELS])
    assert ids == list(range(old_size, old_size + 4)) and grown.config.vocab_size == old_size + 4
    after = _logits(grown, tokenizer, sources, targets)
    # equal up to float32 rounding: a wider output matmul may sum in another order
    torch.testing.assert_close(after[..., :old_size], before, rtol=0, atol=1e-6)
    assert tokenizer.encode("<splice>ACG") == [ids[0], *tokenizer.encode("ACG")]
    assert tokenizer.decode([ids[1]]) == "<EI>"
    again, same = extend_vocabulary(grown, tokenizer, ["<EI>"])
    assert again is grown and same == [ids[1]]
    with pytest.raises(ConfigError, match="special"):
        extend_vocabulary(grown, tokenizer, ["</s>"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_new_tokens_start_apart_as_typical_tokens(kind):
    """New rows start around the old rows' mean with their spread, never equal to each
    other: label tokens that share one row get one logit for every input, and fine-tuning
    from such rows sat at the label prior (recipes/dna/README.md, section 4)."""
    network, tokenizer = _model(kind)
    old_size = tokenizer.vocab_size
    grown, ids = extend_vocabulary(network, tokenizer, ["<splice>", *LABELS])
    before, after = network.state_dict(), grown.state_dict()
    tables = [name for name, t in after.items() if t.dim() == 2 and t.shape[0] > old_size]
    assert tables  # the token embedding, and the output layer where it is not tied
    for name in tables:
        new, old = after[name][ids], before[name]
        assert torch.cdist(new, new)[~torch.eye(len(ids), dtype=torch.bool)].min() > 0.1
        spread = old.std(dim=0).norm()
        assert 0.5 * spread < (new - old.mean(dim=0)).norm(dim=-1).mean() < 2 * spread
    again = extend_vocabulary(network, dna_tokenizer(), ["<splice>", *LABELS])[0].state_dict()
    assert all(torch.equal(again[name], after[name]) for name in tables)  # seeded


def test_extend_vocab_command(tmp_path):
    network, tokenizer = _model()
    Seq2Seq(network, tokenizer, DecodeConfig()).save(tmp_path / "base")
    paths = ["--model", str(tmp_path / "base"), "--output", str(tmp_path / "big")]
    code = main(["extend-vocab", *paths, "--tokens", "<splice>", *LABELS])
    assert code == 0
    big, base = seqweave.load(tmp_path / "big"), seqweave.load(tmp_path / "base")
    old = base.config.vocab_size
    assert big.config.vocab_size == old + 4 and big.tokenizer.token_to_id("<N>") == old + 3
    before = _logits(base.network, base.tokenizer, ["ACGT"], ["GG"])
    after = _logits(big.network, big.tokenizer, ["ACGT"], ["GG"])
    torch.testing.assert_close(after[..., :old], before, rtol=0, atol=1e-6)


def test_neftune_noise_in_training_only_at_its_scale():
    network, _ = _model()
    tokens = torch.randint(4, 9, (3, 10))
    positions = torch.arange(10).expand(3, 10)
    clean = network.embed(tokens, positions)
    add_neftune(network, alpha=5.0)
    network.train()
    noise = network.embed(tokens, positions) - clean
    bound = 5.0 / math.sqrt(10 * network.config.d_model)
    assert noise.abs().max() <= bound and noise.abs().max() > 0.5 * bound
    network.eval()
    assert torch.equal(network.embed(tokens, positions), clean)
    with pytest.raises(ConfigError, match="neftune"):
        add_neftune(network, alpha=-1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_neftune_reaches_the_models_forward_in_training_only(kind):
    """The models call ``embed.forward`` directly; the noise must still reach their logits
    in training (a forward hook did not: NEFTune runs trained exactly like plain ones)."""
    network, tokenizer = _model(kind)
    clean = _logits(network, tokenizer, ["ACGTACGT", "GGA"], ["TT", "A"])
    undo = add_neftune(network, alpha=5.0)
    assert torch.equal(_logits(network, tokenizer, ["ACGTACGT", "GGA"], ["TT", "A"]), clean)
    network.train()
    noisy = _logits(network, tokenizer, ["ACGTACGT", "GGA"], ["TT", "A"])
    network.eval()
    assert not torch.allclose(noisy, clean, atol=1e-4)
    for remove in undo:
        remove()
    network.train()
    assert torch.equal(_logits(network, tokenizer, ["ACGTACGT", "GGA"], ["TT", "A"]), clean)


def _step_bits(network, tokenizer, read: str) -> float:
    """Reference: -log2 p(read) token by token through encode/start/step."""
    cfg = network.config
    src = torch.tensor([frame_source([], cfg)])
    state = network.start(network.encode(src, torch.tensor([src.shape[1]])))
    previous, bits = cfg.decoder_start_id, 0.0
    for token in tokenizer.encode(read):
        logits = network.step(state, torch.tensor([[previous]]))[0, -1]
        bits -= float(torch.log_softmax(logits, -1)[token]) / math.log(2)
        previous = token
    return bits


def test_bits_per_base_matches_step_by_step_decoding():
    network, tokenizer = _model(seed=3)
    reads = ["ACGTAC", "GG", "TTTACGNA"]
    with torch.no_grad():
        reference = [_step_bits(network, tokenizer, read) for read in reads]
    total, bases = read_bits(network, tokenizer, reads, batch_size=2)
    assert bases == 16
    assert total == pytest.approx(sum(reference), rel=1e-5)
    assert bits_per_base(network, tokenizer, reads) == pytest.approx(sum(reference) / 16, rel=1e-5)


def test_choose_labels_is_the_argmax_among_label_tokens():
    network, tokenizer = _model(seed=5)
    network, ids = extend_vocabulary(network, tokenizer, ["<splice>", *LABELS])
    sources = ["<splice>ACGTAGG", "<splice>TTGACA", "<splice>A"]
    logits = _logits(network, tokenizer, sources, ["", "", ""])[:, 0, ids[1:]]
    expected = [LABELS[int(i)] for i in logits.argmax(-1)]
    assert choose_labels(network, tokenizer, sources, LABELS, batch_size=2) == expected
    with pytest.raises(ValueError, match="one token"):
        choose_labels(network, tokenizer, sources, ["ACG"])


def _finetune_config(tmp_path, extended, **train):
    """The recipe's fine-tuning path in miniature: tokenizer and weights from ``extended``."""
    rows = [
        {"source": f"<splice>{'ACGT'[i % 4] * 5}GT", "target": LABELS[i % 3]} for i in range(12)
    ]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = dict(d_model=16, num_heads=2, decoder_layers=2, ffn_dim=32, max_positions=128)
    settings = dict(max_steps=2, validate_every=2, warmup_steps=4, log_every=1, lr=1e-3)
    settings.update(train, out_dir=str(tmp_path / "run"), metric="none", progress=False)
    return ExperimentConfig(
        model=ModelConfig(architecture="prefix_lm", dropout=0.0, **model),
        tokenizer=TokenizerConfig(path=str(extended)),
        data=DataConfig(train=str(tmp_path / "tasks.jsonl"), max_tokens=64),
        train=TrainConfig(init_from=str(extended), **settings),
    )


def test_fine_tuning_starts_from_the_extended_model_with_a_fresh_schedule(tmp_path):
    """``train.init_from`` an extended model: at lr 0 the trained model *is* the extended
    one (every logit, new tokens included); with lr > 0 the schedule starts at its first
    warmup step, not where the pretraining run left its counters."""
    network, tokenizer = _model(seed=7)
    Seq2Seq(network, tokenizer, DecodeConfig()).save(tmp_path / "base")
    paths = ["--model", str(tmp_path / "base"), "--output", str(tmp_path / "big")]
    assert main(["extend-vocab", *paths, "--tokens", "<splice>", *LABELS]) == 0
    big = seqweave.load(tmp_path / "big")
    still = seqweave.load(train(_finetune_config(tmp_path, tmp_path / "big", lr=0.0)))
    sources, targets = ["<splice>ACGTAGG", "<splice>TTG"], ["<EI>", "<N>"]
    expected = _logits(big.network, big.tokenizer, sources, targets)
    assert torch.equal(_logits(still.network, still.tokenizer, sources, targets), expected)
    (tmp_path / "again").mkdir()
    train(_finetune_config(tmp_path / "again", tmp_path / "big", lr=1e-3))
    log = read_metrics(tmp_path / "again" / "run" / "metrics.jsonl")
    assert [r["lr"] for r in log if r["kind"] == "train"] == pytest.approx([2.5e-4, 5e-4])
