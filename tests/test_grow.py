"""Growing a model: ``widen`` and ``deepen`` give a bigger model with the logits (and so
the greedy outputs) of the one they grew from; what they cannot grow is refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqweave.config import DecodeConfig, ModelConfig
from seqweave.decoding import decode_batch
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.models.grow import deepen, widen

# BART's shape (post-LN, learned positions offset by 2, embedding norm, scaled and tied
# embeddings, a final logits bias), tiny
BART_LIKE = ModelConfig(
    architecture="transformer",
    vocab_size=50,
    d_model=16,
    num_heads=2,
    encoder_layers=2,
    decoder_layers=2,
    ffn_dim=32,
    activation="gelu",
    norm="post",
    position="learned",
    max_positions=32,
    position_offset=2,
    scale_embedding=True,
    embedding_layer_norm=True,
    tie_output=True,
    final_logits_bias=True,
)
VARIANTS = {
    "bart": {},
    "pre-LN, untied, unscaled": {"norm": "pre", "tie_output": False, "scale_embedding": False},
    "rope, relu": {"position": "rope", "activation": "relu", "embedding_layer_norm": False},
}


def random_model(cfg: ModelConfig, seed: int = 0) -> torch.nn.Module:
    """A model whose every parameter is random, norms and biases included, so a wrongly
    grown norm or bias cannot go unnoticed."""
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() == 1:
                base = 1.0 if name.endswith("norm.weight") else 0.0
                parameter.copy_(base + 0.3 * torch.randn_like(parameter))
    return model


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A ragged batch: src (3, 9) with lengths 9, 6, 3, and decoder inputs (3, 7)."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 50, (3, 9), generator=generator)
    tgt = torch.randint(4, 50, (3, 7), generator=generator)
    return src, torch.tensor([9, 6, 3]), tgt


def logits(model, batch) -> torch.Tensor:
    with torch.inference_mode():
        return model(*batch)


@pytest.mark.parametrize("variant", VARIANTS)
def test_widened_model_computes_the_same_logits(variant):
    model = random_model(dataclasses.replace(BART_LIKE, **VARIANTS[variant]))
    wide = widen(model)
    assert (wide.config.d_model, wide.config.num_heads, wide.config.ffn_dim) == (32, 4, 64)
    assert wide.config.d_model // wide.config.num_heads == model.config.d_model // 2  # head_dim
    batch = inputs()
    torch.testing.assert_close(logits(wide, batch), logits(model, batch), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_deepened_model_computes_the_same_logits(variant):
    model = random_model(dataclasses.replace(BART_LIKE, **VARIANTS[variant]))
    deep = deepen(model, 3, 5)
    assert (deep.config.encoder_layers, deep.config.decoder_layers) == (3, 5)
    batch = inputs()
    # post-LN: exact up to the layer norms' eps (an inserted layer re-normalises n)
    torch.testing.assert_close(logits(deep, batch), logits(model, batch), atol=1e-4, rtol=1e-4)


def test_inserted_layers_start_from_the_layer_they_follow():
    model = random_model(BART_LIKE)
    deep = deepen(model, 2, 4, decoder_order=[0, 0, 1, 1])
    old, new = model.decoder_layers, deep.decoder_layers
    for i, source in enumerate([0, 0, 1, 1]):
        assert torch.equal(new[i].attn.qkv.weight, old[source].attn.qkv.weight)
        assert torch.equal(new[i].ffn.fc1.weight, old[source].ffn.fc1.weight)
    for inserted in (new[1], new[3]):  # identities: their branches write zeros
        for linear in (inserted.attn.out, inserted.cross.out, inserted.ffn.fc2):
            assert not linear.weight.any() and not linear.bias.any()
    assert torch.equal(new[3].ffn_res.norm.weight, old[1].ffn_res.norm.weight)


def test_grown_model_decodes_as_the_original():
    """Deepened then widened (as bench/grow_marian.py grows gec-bart-anchor): greedy on the
    grown model writes the original's tokens, through the cached decoding path."""
    model = random_model(BART_LIKE, seed=3)
    grown = widen(deepen(model, 3, 3))
    sources = [[0, *range(5, 5 + n), 2] for n in (2, 6, 9)]
    config = DecodeConfig(max_new_tokens=12)
    expected = decode_batch(model, sources, config)
    got = decode_batch(grown, sources, config)
    assert [g.tokens for g in got] == [e.tokens for e in expected]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"position": "sinusoidal", "position_offset": 0}, "sinusoidal"),
        ({"action_head": True, "skip_id": 3}, "action_head"),
        ({"architecture": "prefix_lm"}, "architecture"),
    ],
)
def test_what_cannot_grow_is_refused(changes, message):
    cfg = dataclasses.replace(BART_LIKE, **changes)
    model = build_model(cfg)
    with pytest.raises(ConfigError, match=message):
        widen(model)
    with pytest.raises(ConfigError, match=message):
        deepen(model, 3, 3)


def test_deepen_refuses_orders_that_drop_or_reorder_layers():
    model = random_model(BART_LIKE)
    with pytest.raises(ConfigError, match="each of the 2 old layers"):
        deepen(model, 3, 2, encoder_order=[0, 0, 0])
    with pytest.raises(ConfigError, match="ascending"):
        deepen(model, 3, 2, encoder_order=[1, 0, 1])
    with pytest.raises(ConfigError, match="cannot go from 2 to 1"):
        deepen(model, 1, 2)
