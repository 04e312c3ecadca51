"""SeqBoat (models/seqboat.py, models/ema.py) against live references: the EMA against its
recurrence run as a loop, compress/attend/extract against full attention masked to the
activated tokens, the causal layer against a changed future, the model's cached decoding
against its teacher-forced pass."""

from __future__ import annotations

import pytest
import torch

from seqweave.architectures import SeqBoatConfig
from seqweave.errors import ConfigError
from seqweave.models.ema import MultiHeadEMA
from seqweave.models.seqboat import (
    SeqBoatBlock,
    SeqBoatLayer,
    chunked_attention,
    compress,
    extract,
    gather_rows,
)
from tests.conftest import tiny_config, tiny_model


def ema_loop(ema: MultiHeadEMA, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The EMA recurrence h_t = alpha*beta*x_t + (1 - alpha*delta) h_{t-1}, one step at a
    time (backwards for the second direction), read out by eta."""
    alpha, delta = torch.sigmoid(ema.alpha), torch.sigmoid(ema.delta)
    x = x * real[..., None]
    B, T, D = x.shape
    out = ema.omega * x
    for direction in range(alpha.shape[0]):
        a, d = alpha[direction], delta[direction]  # (D, heads)
        b, eta = ema.beta[direction], ema.eta[direction]
        h = x.new_zeros(B, D, a.shape[-1])
        steps = range(T) if direction == 0 else reversed(range(T))
        for t in steps:
            h = a * b * x[:, t, :, None] + (1 - a * d) * h
            out[:, t] = out[:, t] + (h * eta).sum(-1)
    return out


@pytest.mark.parametrize("bidirectional", [False, True])
def test_ema_equals_its_recurrence_as_a_loop(bidirectional):
    torch.manual_seed(0)
    ema = MultiHeadEMA(6, heads=3, bidirectional=bidirectional).double()
    x = torch.randn(3, 17, 6, dtype=torch.float64)
    real = torch.arange(17)[None, :] < torch.tensor([17, 11, 1])[:, None]
    expected = ema_loop(ema, x, real)
    got = ema(x, real)
    assert torch.allclose(got[real], expected[real], atol=1e-10, rtol=0)


def test_ema_of_a_padded_row_equals_the_row_alone():
    torch.manual_seed(1)
    ema = MultiHeadEMA(4, heads=2, bidirectional=True).double()
    x = torch.randn(1, 9, 4, dtype=torch.float64)
    padded = torch.cat([x, torch.randn(1, 5, 4, dtype=torch.float64)], dim=1)
    real = torch.arange(14)[None, :] < 9
    assert torch.allclose(ema(padded, real)[:, :9], ema(x), atol=1e-12, rtol=0)


def masked_reference(q, k, v, active, chunk, causal):
    """Full attention over all T positions, each activated token seeing the activated tokens
    of its chunk of the compressed order (and, causally, none after it); zeros elsewhere."""
    T = q.shape[1]
    rank = active.long().cumsum(1) - 1  # index of each activated token in the compressed order
    group = rank // chunk if chunk else torch.zeros_like(rank)
    mask = active[:, :, None] & active[:, None, :] & (group[:, :, None] == group[:, None, :])
    if causal:
        mask = mask & torch.ones(T, T, dtype=torch.bool).tril()
    scores = (q @ k.transpose(1, 2)) * q.shape[-1] ** -0.5
    probs = scores.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
    return (probs @ v) * active[..., None]


@pytest.mark.parametrize("chunk", [0, 1, 3, 64])
@pytest.mark.parametrize("causal", [False, True])
def test_compress_attend_extract_equals_masked_full_attention(chunk, causal):
    generator = torch.Generator().manual_seed(chunk)
    B, T = 4, 23
    q, k = (torch.randn(B, T, 5, dtype=torch.float64, generator=generator) for _ in range(2))
    v = torch.randn(B, T, 7, dtype=torch.float64, generator=generator)
    active = torch.rand(B, T, generator=generator) < 0.4
    active[1] = False  # a row with no activated token
    active[2] = True  # and one with all
    index, valid = compress(active)
    y = chunked_attention(
        gather_rows(q, index), gather_rows(k, index), gather_rows(v, index), valid, chunk, causal
    )
    got = extract(y, index, valid, T)
    expected = masked_reference(q, k, v, active, chunk, causal)
    assert torch.allclose(got, expected, atol=1e-10, rtol=0)
    assert torch.equal(got[1], torch.zeros(T, 7, dtype=torch.float64))


def test_compress_keeps_the_activated_tokens_in_order():
    active = torch.tensor([[False, True, False, True, True], [True, False, False, False, False]])
    index, valid = compress(active)
    assert index[0].tolist() == [1, 3, 4] and valid[0].tolist() == [True] * 3
    assert index[1, 0] == 0 and valid[1].tolist() == [True, False, False]


def seqboat_config(**options):
    return tiny_config(architecture="seqboat", seqboat=SeqBoatConfig(attention_dim=8, **options))


def test_the_router_receives_gradient_through_the_gated_output():
    torch.manual_seed(2)
    block = SeqBoatBlock(seqboat_config(chunk=4), causal=False)
    x = torch.randn(2, 19, 16)
    real = torch.ones(2, 19, dtype=torch.bool)
    block(x, real).pow(2).sum().backward()
    assert block.active.any() and not block.active.all()
    grad = block.router.proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_router_modes_all_and_none():
    torch.manual_seed(3)
    x = torch.randn(2, 11, 16)
    real = torch.arange(11)[None, :] < torch.tensor([11, 6])[:, None]
    every = SeqBoatBlock(seqboat_config(router="all"), causal=False)
    every(x, real)
    assert torch.equal(every.active, real)
    none = SeqBoatBlock(seqboat_config(router="none"), causal=False)
    none.load_state_dict(every.state_dict())
    none(x, real)
    assert not none.active.any()


@pytest.mark.parametrize("router", ["learned", "all"])
def test_the_causal_layer_does_not_look_ahead(router):
    torch.manual_seed(4)
    layer = SeqBoatLayer(seqboat_config(chunk=3, router=router), causal=True).double().eval()
    x = torch.randn(2, 20, 16, dtype=torch.float64)
    changed = x.clone()
    changed[:, 12:] = torch.randn(2, 8, 16, dtype=torch.float64)
    before, after = layer(x, None), layer(changed, None)
    assert torch.allclose(before[:, :12], after[:, :12], atol=1e-12, rtol=0)
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_the_bidirectional_layer_does_look_ahead():
    torch.manual_seed(5)
    layer = SeqBoatLayer(seqboat_config(), causal=False).double().eval()
    x = torch.randn(1, 12, 16, dtype=torch.float64)
    changed = x.clone()
    changed[:, -1] = torch.randn(16, dtype=torch.float64)
    assert (layer(x, None)[:, 0] - layer(changed, None)[:, 0]).abs().max() > 1e-6


def test_padding_does_not_change_the_encoder():
    model = tiny_model(seed=6, architecture="seqboat", seqboat=SeqBoatConfig(chunk=2))
    src = torch.tensor([[5, 6, 7, 8, 9, 2], [10, 11, 2, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    batched = model.encode(src, lengths).states
    alone = model.encode(src[1:, :3], lengths[1:]).states
    assert torch.allclose(batched[1, :3], alone[0], atol=1e-5)


def test_cached_steps_equal_the_teacher_forced_pass():
    model = tiny_model(seed=7, architecture="seqboat", seqboat=SeqBoatConfig(chunk=2))
    src = torch.tensor([[5, 6, 7, 8, 9, 2], [10, 11, 2, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    tgt = torch.tensor([[1, 12, 13, 14], [1, 15, 16, 17]])
    expected = model(src, lengths, tgt)
    state = model.start(model.encode(src, lengths))
    steps = [model.step(state, tgt[:, i : i + 1]) for i in range(tgt.shape[1])]
    assert torch.allclose(torch.cat(steps, dim=1), expected, atol=1e-5)


def test_seqboat_options_on_another_architecture_are_refused():
    with pytest.raises(ConfigError, match=r"model\.seqboat"):
        tiny_config(architecture="transformer", seqboat=SeqBoatConfig(chunk=4))
    with pytest.raises(ConfigError, match="router"):
        SeqBoatConfig(router="sometimes")
