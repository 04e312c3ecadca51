"""Int8 weights (``--quantize int8``): lossy against float32, lossless among decoders.

The int8 product quantizes each token with its own scale and sums in integers, so a token's
output cannot depend on the other tokens of a pass; the decoders that are lossless in
float32 must then reproduce greedy on the same int8 model."""

from __future__ import annotations

import argparse

import pytest
import torch

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_many
from seqweave.errors import ConfigError
from seqweave.models.quantize import Int8Weight, quantize
from tests.conftest import MODEL_KINDS, random_sources, tiny_model
from tests.lossless import assert_lossless
from tests.shared import require_shared


def test_int8_product_is_close_to_float_and_independent_of_other_rows():
    torch.manual_seed(0)
    weight, bias = torch.randn(24, 40), torch.randn(24)
    x = torch.randn(9, 40) * torch.logspace(-2, 2, 9)[:, None]  # rows of very different scale
    product = Int8Weight(weight, bias)
    together = product(x)
    alone = torch.cat([product(row[None]) for row in x])
    assert torch.equal(together, alone)  # bit for bit, not merely close
    reference = x @ weight.T + bias
    error = (together - reference).norm(dim=1) / reference.norm(dim=1)
    assert error.max() < 0.02
    assert not torch.equal(together, reference)


def test_quantized_model_uses_int8_weights_in_every_path():
    model = tiny_model()
    src = torch.tensor([[5, 6, 7, 8, 2]])
    tgt = torch.tensor([[2, 9, 10, 11]])
    with torch.no_grad():
        before = model(src, torch.tensor([5]), tgt)
        quantize(model)
        after = model(src, torch.tensor([5]), tgt)
    assert not torch.equal(before, after)
    assert torch.allclose(before, after, atol=0.1)
    assert model.quantization == "int8"


def decode(model, sources, decoder, batch_size, draft=None):
    config = DecodeConfig(decoder=decoder, batch_size=batch_size, max_new_tokens=24)
    return [o.tokens for o in decode_many(model, sources, config, draft)]


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("batch_size", [1, 5])
def test_iad_and_speculative_equal_greedy_on_the_int8_model(kind, batch_size, one_torch_thread):
    model = quantize(tiny_model(**MODEL_KINDS[kind]))
    draft = quantize(tiny_model(seed=1, **MODEL_KINDS[kind]))
    sources = random_sources(torch.Generator().manual_seed(3), 10)
    greedy = decode(model, sources, "greedy", 1)
    for decoder, extra in (("iad", None), ("spec", draft), ("greedy", None)):
        other = decode(model, sources, decoder, batch_size, extra)
        for source, ref, got in zip(sources, greedy, other, strict=True):
            assert_lossless(model, source, ref, got)


def test_quantize_refuses_a_model_off_the_cpu():
    model = tiny_model().to("meta")
    with pytest.raises(ConfigError, match="CPU only"):
        quantize(model)
    with pytest.raises(ConfigError, match="valid: int8"):
        quantize(tiny_model(), "int4")


@pytest.mark.slow
def test_iad_equals_greedy_on_int8_bart(tmp_path):
    """The real GEC model, where IAD accepts long drafts: int8 IAD tokens equal int8 greedy
    tokens at batch 1 and 8, and int8 greedy stays close to float32 greedy."""
    import seqweave
    from seqweave.commands.options import load_model
    from seqweave.data.readers import read_examples
    from seqweave.models.hf_import import import_hf

    directory = require_shared("models", "gec-bart-anchor")
    data = require_shared("data", "gec-synth", "train.jsonl")
    converted = import_hf(directory, tmp_path / "model")
    texts = [e.source for e in read_examples(data, require_target=False)][:24]
    float_model = seqweave.load(converted)
    sources = float_model.encode_sources(texts)
    float_greedy = decode(float_model.network, sources, "greedy", 1)
    options = argparse.Namespace(model=converted, device="cpu", quantize="int8", draft_model=None)
    model = load_model(options)  # what generate and evaluate do with --quantize int8
    assert model.network.quantization == "int8"
    greedy = decode(model.network, sources, "greedy", 1)
    for batch_size in (1, 8):
        assert decode(model.network, sources, "iad", batch_size) == greedy
    same = sum(a == b for a, b in zip(greedy, float_greedy, strict=True))
    assert same >= 0.8 * len(sources)
