"""The compiled decoder step (``decode.compile``): the same tokens as the eager model.

Inductor's fused kernels round differently from the eager operators, so compiled logits
are compared by closeness and compiled tokens by ``assert_lossless`` (equal, or a measured
near-tie at the first difference); on an int8 model, compiled IAD must equal compiled
greedy as eager int8 IAD equals eager int8 greedy. Compiling costs tens of seconds on a
CPU, hence the ``slow`` marker.
"""

from __future__ import annotations

import pytest
import torch

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_many
from seqweave.errors import ConfigError
from seqweave.models.compiled import compile_decoder
from seqweave.models.quantize import quantize
from tests.conftest import MODEL_KINDS, random_sources, tiny_model
from tests.lossless import assert_lossless


def decode(model, sources, decoder: str, batch_size: int, compile_step: bool):
    config = DecodeConfig(
        decoder=decoder, batch_size=batch_size, max_new_tokens=24, compile=compile_step
    )
    return [o.tokens for o in decode_many(model, sources, config)]


def test_compile_refuses_a_model_without_the_encoder_decoder_loop():
    with pytest.raises(ConfigError, match=r"decode\.compile covers encoder-decoder"):
        compile_decoder(tiny_model(**MODEL_KINDS["prefix_lm"]))
    with pytest.raises(ConfigError, match="must be true or false"):
        DecodeConfig(compile="yes")


@pytest.mark.slow
def test_compiled_steps_match_eager_steps(one_torch_thread):
    """One token and a draft of 5 per step, batch 1 and a uniform batch of 3: logits close
    to the eager model's, and the same cache afterwards."""
    eager, compiled = tiny_model(), compile_decoder(tiny_model())
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 11, 2, 1], [12, 13, 2, 1, 1]])
    lengths = torch.tensor([5, 4, 3])
    with torch.inference_mode():
        for rows in (1, 3):
            models = (eager, compiled)
            states = [m.start(m.encode(src[:rows], lengths[:rows])) for m in models]
            for tokens in ([[2]], [[14, 15, 16, 17, 18]], [[19]]):
                block = torch.tensor(tokens).expand(rows, -1)
                ref, got = (m.step(s, block) for m, s in zip(models, states, strict=True))
                assert torch.allclose(ref, got, atol=1e-5, rtol=1e-5)
            used = states[0].used()
            for a, b in zip(states[0].keys, states[1].keys, strict=True):
                assert torch.allclose(a[:, :, :used], b[:, :, :used], atol=1e-5)


def encoder_calls(network) -> int:
    """How many kinds of call the compiled encoder's graphs have served."""
    decoder = network.compiled_decoder
    return sum(kind[0] == id(decoder._encoder) for kind in decoder._served)


@pytest.mark.slow
@pytest.mark.parametrize("int8", [False, True])
def test_compiled_encoder_states_match_eager(int8, one_torch_thread):
    """One row, and three rows of ragged source lengths (padding, a mask) or of one length:
    the compiled encoder's states close to the eager encoder's at every real position."""
    eager, compiled = tiny_model(), tiny_model()
    if int8:  # per-token int8 inputs: a rounding apart may move one step of the int8 scale
        eager, compiled = quantize(eager), quantize(compiled)
    compile_decoder(compiled)
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 11, 2, 1], [12, 13, 2, 1, 1]])
    tolerance = 1e-3 if int8 else 1e-5
    with torch.inference_mode():
        for rows, lengths in [(1, [5]), (3, [5, 4, 3]), (3, [5, 5, 5])]:
            source_lengths = torch.tensor(lengths)
            ref, got = (m.encode(src[:rows], source_lengths) for m in (eager, compiled))
            for row, length in enumerate(lengths):
                a, b = ref.states[row, :length], got.states[row, :length]
                assert torch.allclose(a, b, atol=tolerance, rtol=1e-5), (a - b).abs().max()
    assert encoder_calls(compiled) == 2  # one row; several, with a mask (padded or not)


@pytest.mark.slow
@pytest.mark.parametrize("int8", [False, True])
def test_compiled_greedy_and_iad_give_eager_greedy_tokens(int8, one_torch_thread):
    """Compiled encoder and decoder step, batch 1 and ragged batches of 4 (padded sources)."""
    eager, compiled = tiny_model(), tiny_model()
    if int8:
        eager, compiled = quantize(eager), quantize(compiled)
    sources = random_sources(torch.Generator().manual_seed(3), 8)
    reference = decode(eager, sources, "greedy", 1, False)
    greedy = decode(compiled, sources, "greedy", 1, True)
    assert compiled.compiled_decoder is not None
    for decoder, batch_size in [("greedy", 4), ("iad", 1), ("iad", 4)]:
        got = decode(compiled, sources, decoder, batch_size, True)
        for source, ref, out in zip(sources, reference, got, strict=True):
            assert_lossless(eager, source, ref, out)
        if int8:  # per-token int8 products: compiled IAD is compiled greedy, exactly
            assert got == greedy
    for source, ref, got in zip(sources, reference, greedy, strict=True):
        assert_lossless(eager, source, ref, got)
    assert encoder_calls(compiled) >= 2  # one row, and several with a mask


def graphs_built() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@pytest.mark.slow
def test_ragged_and_packed_steps_run_compiled_and_match_eager(one_torch_thread):
    """Rows at different cache lengths (the server's slot rows) and packed drafts of
    different lengths run through compiled graphs too: logits of the real positions close to
    the eager model's, the same cache afterwards."""
    eager, compiled = tiny_model(), compile_decoder(tiny_model())
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 11, 2, 1], [12, 13, 2, 1, 1]])
    lengths = torch.tensor([5, 4, 3])
    steps = [  # tokens per row, real tokens per row
        ([2], (1, 1, 1)),  # the first pass, one slot in use: eager by design
        ([14, 15, 16, 17], (4, 2, 3)),  # unpacked: 9 of 12 positions real
        ([18], (1, 1, 1)),  # rows at three different slots
        ([19, 20, 21, 22], (4, 1, 1)),  # packed: 6 of 12
        ([23, 24], (2, 2, 2)),
    ]
    before = graphs_built()
    with torch.inference_mode():
        states = [m.start(m.encode(src, lengths)) for m in (eager, compiled)]
        for tokens, real in steps:
            block, n_new = torch.tensor(tokens).expand(3, -1), torch.tensor(real)
            ref, got = (
                m.step(s, block, n_new) for m, s in zip((eager, compiled), states, strict=True)
            )
            for row, count in enumerate(real):
                assert torch.allclose(ref[row, :count], got[row, :count], atol=1e-5, rtol=1e-5)
            assert torch.equal(states[0].lengths, states[1].lengths)
        for a, b in zip(states[0].keys, states[1].keys, strict=True):
            for row, length in enumerate(states[0].lengths.tolist()):
                assert torch.allclose(a[row, :, :length], b[row, :, :length], atol=1e-5)
    assert graphs_built() > before


@pytest.mark.slow
def test_a_settled_decoder_runs_a_pass_without_a_graph_eagerly(one_torch_thread):
    """After a warm-up (``settle``) a pass of a shape no graph covers is not compiled in front
    of the requests: it runs the eager layers, which give eager greedy's tokens exactly."""
    eager, compiled = tiny_model(), compile_decoder(tiny_model())
    compiled.compiled_decoder.settle()  # settled before any graph exists: every pass eager
    sources = random_sources(torch.Generator().manual_seed(4), 6)
    before = graphs_built()
    reference = decode(eager, sources, "greedy", 1, False)
    for batch_size in (1, 3):
        assert decode(compiled, sources, "iad", batch_size, True) == reference
    assert graphs_built() == before


@pytest.mark.slow
def test_unguarded_calls_give_eager_greedy_tokens(one_torch_thread):
    """Skipping dynamo's guards on calls of a kind a graph has served: one row, then batches
    of several (ragged, packed) whose first calls of each new kind still go through the
    guards and compile; every output equal to eager greedy (or a measured near-tie)."""
    eager, compiled = tiny_model(), compile_decoder(tiny_model())
    assert compiled.compiled_decoder.unguarded  # the default
    sources = random_sources(torch.Generator().manual_seed(5), 8)
    reference = decode(eager, sources, "greedy", 1, False)
    for decoder, batch_size in [("greedy", 1), ("iad", 1), ("iad", 4), ("greedy", 3), ("iad", 3)]:
        got = decode(compiled, sources, decoder, batch_size, True)
        for source, ref, out in zip(sources, reference, got, strict=True):
            assert_lossless(eager, source, ref, out)
    assert len(compiled.compiled_decoder._served) >= 4  # one row and several, K = 1 and K > 1


@pytest.mark.slow
def test_unguarded_calls_fall_back_to_the_guards_when_no_graph_fits(monkeypatch, one_torch_thread):
    """Kinds that do not tell the graphs apart (here: every call one kind): dynamo refuses
    a call no graph fits, nothing has run, and the decoder goes back to guarded calls."""
    from seqweave.models import compiled as compiled_module

    monkeypatch.setattr(compiled_module, "call_kind", lambda tensors, training: ("one kind",))
    eager, compiled = tiny_model(), compile_decoder(tiny_model())
    compiled.compiled_decoder.unguarded = True
    sources = random_sources(torch.Generator().manual_seed(6), 6)
    reference = decode(eager, sources, "greedy", 1, False)
    for decoder, batch_size in [("greedy", 1), ("iad", 3)]:
        got = decode(compiled, sources, decoder, batch_size, True)
        for source, ref, out in zip(sources, reference, got, strict=True):
            assert_lossless(eager, source, ref, out)
    assert not compiled.compiled_decoder.unguarded
