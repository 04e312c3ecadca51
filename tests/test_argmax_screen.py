"""The screened argmax of the output layer (``decode.screen``): float32's argmax, exactly.

The reference is the full float32 product the model's ``logits`` computes. Properties on
random and adversarial weights (near-equal rows, equal rows, bias, large and tiny states,
outlier coordinates): the screen keeps the reference argmax among its candidates and
returns it. A state aligned with two rows' int8 rounding residuals shows that the bound is
not loose by a factor of two (a halved radius drops the argmax), so these properties
would catch a bound that is wrong. On trained models, screened greedy and IAD give
unscreened greedy's tokens exactly, at batch 1 and batched.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import seqweave
from seqweave.commands.options import add_decode_arguments, decode_overrides
from seqweave.config import DecodeConfig
from seqweave.decoding import decode_many
from seqweave.errors import ConfigError
from seqweave.models.argmax_screen import OutputScreen, ScreenCache, screened_argmax
from seqweave.models.quantize import quantize
from tests.conftest import MODEL_KINDS, random_sources, tiny_model


def reference_argmax(h, weight, bias):
    transposed = weight.t().contiguous()
    logits = h @ transposed if bias is None else torch.addmm(bias, h, transposed)
    return logits.argmax(dim=-1)


def adversarial_case(seed, vocab, width, positions, with_bias, magnitude, ties, gap, outlier):
    """Weights (V, D), bias (V,) or None and states (N, D) with planted near-ties."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(vocab, width, generator=generator)
    weight *= torch.rand(vocab, 1, generator=generator) + 0.1  # rows of different norms
    bias = torch.randn(vocab, generator=generator) * 0.3 if with_bias else None
    for _ in range(ties):  # row b a near copy of row a: logits within ~gap of each other
        a, b = torch.randint(vocab, (2,), generator=generator).tolist()
        noise = torch.randn(width, generator=generator) * gap
        weight[b] = weight[a] * (1 + noise)
        if bias is not None:
            bias[b] = bias[a]
    h = torch.randn(positions, width, generator=generator) * magnitude
    if outlier:  # one large coordinate: coarse int8 steps for the rest of the state
        h[:, 0] *= 100
    h[0] = weight[int(torch.randint(vocab, (1,), generator=generator))] * magnitude
    return weight, bias, h


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    vocab=st.integers(2, 64),
    width=st.integers(1, 48),
    positions=st.integers(1, 6),
    with_bias=st.booleans(),
    magnitude=st.sampled_from([1e-4, 1.0, 1e4]),
    ties=st.integers(0, 4),
    gap=st.sampled_from([0.0, 1e-7, 1e-5, 1e-3, 1e-1]),
    outlier=st.booleans(),
)
def test_screened_argmax_is_the_float32_argmax(
    seed, vocab, width, positions, with_bias, magnitude, ties, gap, outlier
):
    case = (seed, vocab, width, positions, with_bias, magnitude, ties, gap, outlier)
    weight, bias, h = adversarial_case(*case)
    screen = OutputScreen(weight, bias)
    expected = reference_argmax(h, weight, bias)
    candidates = screen.candidates(h)
    assert candidates[torch.arange(positions), expected].all()
    got = screened_argmax(h, screen, weight.t().contiguous(), bias)
    assert torch.equal(got, expected)


def test_equal_rows_give_the_lowest_index_as_argmax_does():
    weight = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))
    weight[7] = weight[3]
    weight[9] = weight[3]
    h = weight[3:4] * 5
    screen = OutputScreen(weight, None)
    assert {3, 7, 9} <= set(screen.candidates(h)[0].nonzero()[:, 0].tolist())
    assert screened_argmax(h, screen, weight.t().contiguous(), None).tolist() == [3]


def aligned_case(width: int = 256):
    """Two rows with the same entries in another order (the same scale and the same
    rounding residuals, so the same bound) and a state exactly representable in int8 (u = 0)
    with the signs of the difference of their residuals: the int8 errors of the two rows
    then pull apart by about 1.15 times the radius. A bias puts row 1's approximate logit
    above row 0's by more than the radius but less than that pull: row 0 is the argmax,
    though its approximation trails. Returns weight, bias, state and the radius."""
    generator = torch.Generator().manual_seed(5)
    row = torch.randn(width, generator=generator)
    weight = torch.stack([row, row[torch.randperm(width, generator=generator)]])
    probe = OutputScreen(weight, None)
    approximate_rows = probe.scale * probe.weight.double()
    residual = weight.double() - approximate_rows  # (2, D)
    h = (127 * (residual[0] - residual[1]).sign()).float()[None]  # (1, D): t = 1, p = h
    approximate = approximate_rows @ h[0].double()
    pull = float((residual[0] - residual[1]) @ h[0].double())  # = 127 ||r_0 - r_1||_1
    radius = float(probe.coefficients[0] * h.norm() + probe.offset)
    assert radius < pull < 2 * radius  # what the construction needs (the bound: pull <= 2r)
    lead = (radius + pull) / 2  # row 1's approximation ahead of row 0's
    bias = torch.tensor([0.0, float(approximate[0] - approximate[1]) + lead])
    return weight, bias, h, radius


def test_the_argmax_survives_a_state_aligned_with_the_rounding_residuals():
    weight, bias, h, _ = aligned_case()
    screen = OutputScreen(weight, bias)
    assert reference_argmax(h, weight, bias).tolist() == [0]
    assert screen.candidates(h)[0, 0]
    assert screened_argmax(h, screen, weight.t().contiguous(), bias).tolist() == [0]


def test_a_halved_bound_would_lose_the_argmax():
    """The property tests can fail: with half the radius the aligned state's argmax is
    screened out, so the bound is within a factor of two of the worst case."""
    weight, bias, h, _ = aligned_case()
    screen = OutputScreen(weight, bias)
    screen.coefficients = screen.coefficients / 2
    screen.offset = screen.offset / 2
    assert not screen.candidates(h)[0, 0]
    assert screened_argmax(h, screen, weight.t().contiguous(), bias).tolist() == [1]


def test_states_that_could_overflow_take_the_full_product():
    weight = torch.randn(10, 4)
    h = torch.full((2, 4), 1e35)
    h[1, 0] = float("nan")
    screen = OutputScreen(weight, None)
    assert screen.survivors(h) is None
    got = screened_argmax(h, screen, weight.t().contiguous(), None)
    assert torch.equal(got, reference_argmax(h, weight, None))


@pytest.mark.parametrize("overrides", [{}, {"tie_output": False, "final_logits_bias": True}])
def test_logits_argmax_follows_weight_changes(overrides):
    model = tiny_model(**overrides)
    x = torch.randn(3, 5, 16)
    with torch.inference_mode():
        assert torch.equal(model.logits_argmax(x), model.logits(x).argmax(-1))
        weight = model.output_tokens.weight if model.output is None else model.output.weight
    with torch.no_grad():
        weight[7] += 50 * x[0, 0] / x[0, 0].norm()  # token 7 wins where x[0, 0] points
        if model.final_logits_bias is not None:
            model.final_logits_bias[3] = 1e3  # then token 3 everywhere
    with torch.inference_mode():
        expected = model.logits(x).argmax(-1)
        assert torch.equal(model.logits_argmax(x), expected)
    assert int(expected[0, 0]) == (3 if model.final_logits_bias is not None else 7)


def run_steps(model, src, lengths, screened: bool):
    """Ragged verification steps (a packed plan among them); the argmax of each."""
    blocks = [([[2], [2], [2]], None), ([[5, 6, 7], [8, 9, 1], [10, 1, 1]], [3, 2, 1])]
    blocks.append(([[11], [12], [13]], None))
    state = model.start(model.encode(src, lengths))
    out = []
    for tokens, n_new in blocks:
        tokens = torch.tensor(tokens)
        n_new = None if n_new is None else torch.tensor(n_new)
        if screened:
            out.append(model.step_argmax(state, tokens, n_new))
        else:
            out.append(model.step(state, tokens, n_new).argmax(-1))
    return out


@pytest.mark.parametrize("int8", [False, True])
def test_step_argmax_equals_the_argmax_of_step(int8):
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 11, 2, 1], [12, 13, 2, 1, 1]])
    lengths = torch.tensor([5, 4, 3])
    model = quantize(tiny_model()) if int8 else tiny_model()
    with torch.inference_mode():
        screened, plain = (run_steps(model, src, lengths, s) for s in (True, False))
    n_real = [[1, 1, 1], [3, 2, 1], [1, 1, 1]]
    for got, expected, counts in zip(screened, plain, n_real, strict=True):
        for row, count in enumerate(counts):  # past n_new[b] the argmax is unspecified
            assert torch.equal(got[row, :count], expected[row, :count])
    assert (model._output_screen.screen is None) == int8  # int8 keeps its own product


def decode(network, sources, decoder: str, batch_size: int, screen: bool):
    config = DecodeConfig(decoder=decoder, batch_size=batch_size, screen=screen)
    return [o.tokens for o in decode_many(network, sources, config)]


def check_screened_decoders(network, sources, batch_sizes=(1, 4)):
    """Screened greedy and IAD equal unscreened greedy, exactly."""
    network._output_screen = ScreenCache()  # other tests may have decoded with this model
    reference = decode(network, sources, "greedy", 1, False)
    assert network._output_screen.screen is None  # the unscreened run never built it
    for batch_size in batch_sizes:
        for decoder in ("greedy", "iad"):
            assert decode(network, sources, decoder, batch_size, True) == reference
    assert network._output_screen.screen is not None
    return reference


def test_screened_decoders_on_a_trained_model(trained, one_torch_thread):
    model = trained["transformer"]
    texts = ["abcdef", "bbaacc", "hgfedcba", "abcabcabcabc", "ddee", "jihgf"] * 3
    check_screened_decoders(model.network, model.encode_sources(texts))


@pytest.mark.parametrize("kind", ["prefix_lm", "action_head"])
def test_models_without_a_screen_decode_as_before(kind, one_torch_thread):
    """A prefix LM has no ``step_argmax`` and the action head no screen: both fall back to
    the argmax of ``step``."""
    overrides = MODEL_KINDS["prefix_lm"] if kind == "prefix_lm" else {}
    if kind == "action_head":
        overrides = dict(action_head=True, skip_id=3)
    network = tiny_model(**overrides)
    sources = random_sources(torch.Generator().manual_seed(4), 6)
    reference = decode(network, sources, "greedy", 1, False)
    for decoder in ("greedy", "iad"):
        assert decode(network, sources, decoder, 3, True) == reference


def test_screen_options():
    with pytest.raises(ConfigError, match=r"decode\.screen must be true or false"):
        DecodeConfig(screen="yes")
    assert DecodeConfig().screen is True
    import argparse

    parser = argparse.ArgumentParser()
    add_decode_arguments(parser)
    args = parser.parse_args(["--model", "m", "--no-screen"])
    assert decode_overrides(args)["screen"] is False
    assert "screen" not in decode_overrides(parser.parse_args(["--model", "m"]))


@pytest.mark.slow
def test_screened_decoders_on_imported_bart(shared, tmp_path, one_torch_thread):
    """gec-bart-anchor (tied output layer, final logits bias): 24 gec-synth sources."""
    from seqweave.models.hf_import import import_hf

    model = seqweave.load(import_hf(shared / "models" / "gec-bart-anchor", tmp_path / "m"))
    with (shared / "data" / "gec-synth" / "train.jsonl").open() as handle:
        texts = [json.loads(next(handle))["source"] for _ in range(24)]
    check_screened_decoders(model.network, model.encode_sources(texts), batch_sizes=(1, 8))


def test_bench_runs_unscreened_decoders_beside_the_screened_ones(trained, one_torch_thread):
    from seqweave.bench import seqweave_systems

    systems = seqweave_systems(trained["transformer"], 24, unscreened=True)
    names = ["greedy", "iad", "greedy_noscreen", "iad_noscreen"]
    assert [s.name for s in systems] == [f"seqweave_{name}" for name in names]
    texts = ["abcdef", "hgfedcba", "ddee"]
    outputs = [system.run(texts, 2).tokens for system in systems]
    assert all(tokens == outputs[0] for tokens in outputs)


def test_reduced_float32_matmul_precision_takes_the_full_product():
    """The bound assumes float32 products; at another precision the screen stands aside."""
    model = tiny_model()
    x = torch.randn(2, 3, 16)
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        with torch.inference_mode():
            assert torch.equal(model.logits_argmax(x), model.logits(x).argmax(-1))
        assert model._output_screen.screen is None
    finally:
        torch.set_float32_matmul_precision(previous)
