"""Greedy, beam search and sampling over the decoder-state API."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_batch, decode_many
from seqweave.decoding.sampling import filter_logits
from seqweave.errors import ConfigError
from tests.conftest import MODEL_KINDS, edit_task_pair, random_sources, tiny_model
from tests.lossless import assert_lossless

ARCHITECTURES = ["transformer", "prefix_lm"]


def greedy(model, sources, **kw):
    cfg = DecodeConfig(decoder="greedy", max_new_tokens=kw.pop("max_new_tokens", 12), **kw)
    return [g.tokens for g in decode_batch(model, sources, cfg)]


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_batched_greedy_equals_one_by_one_random_model(kind):
    model = tiny_model(**MODEL_KINDS[kind])
    sources = random_sources(torch.Generator().manual_seed(0), 16)
    batched = greedy(model, sources, max_new_tokens=20)
    for source, tokens in zip(sources, batched, strict=True):
        (alone,) = greedy(model, [source], max_new_tokens=20)
        assert_lossless(model, source, alone, tokens)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_batched_greedy_equals_one_by_one_trained_model(trained, architecture):
    """A trained model ends rows at different steps, so rows leave the batch mid-way."""
    model = trained[architecture]
    rng = random.Random(1)
    sources = model.encode_sources([edit_task_pair(rng)["source"] for _ in range(24)])
    batched = greedy(model.network, sources, max_new_tokens=40)
    assert len({len(t) for t in batched}) > 5, "rows should finish at different lengths"
    for source, tokens in zip(sources, batched, strict=True):
        (alone,) = greedy(model.network, [source], max_new_tokens=40)
        assert_lossless(model.network, source, alone, tokens)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_greedy_matches_uncached_argmax(kind):
    model = tiny_model(**MODEL_KINDS[kind])
    (source,) = random_sources(torch.Generator().manual_seed(1), 1)
    (tokens,) = greedy(model, [source], max_new_tokens=10)
    prefix = []
    with torch.no_grad():
        for _ in range(10):
            tgt = torch.tensor([[model.config.decoder_start_id, *prefix]])
            logits = model(torch.tensor([source]), torch.tensor([len(source)]), tgt)
            prefix.append(int(logits[0, -1].argmax()))
    assert tokens == prefix


def test_max_new_tokens_and_end_token():
    model = tiny_model(final_logits_bias=True)
    sources = random_sources(torch.Generator().manual_seed(2), 4)
    outputs = decode_batch(model, sources, DecodeConfig(max_new_tokens=5))
    assert all(len(o.tokens) == 5 and not o.finished for o in outputs)
    model.final_logits_bias[2] = 100.0  # the end token always wins
    outputs = decode_batch(model, sources, DecodeConfig(max_new_tokens=5))
    assert all(o.tokens == [] and o.finished for o in outputs)
    assert all(o.stats.passes == 1 for o in outputs)


def test_decode_many_keeps_input_order():
    model = tiny_model()
    sources = random_sources(torch.Generator().manual_seed(3), 9)
    cfg = DecodeConfig(max_new_tokens=6, batch_size=4)
    many = [g.tokens for g in decode_many(model, sources, cfg)]
    for source, tokens in zip(sources, many, strict=True):
        assert_lossless(model, source, greedy(model, [source], max_new_tokens=6)[0], tokens)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_beam_of_width_one_equals_greedy(kind):
    model = tiny_model(**MODEL_KINDS[kind], final_logits_bias=True)
    model.final_logits_bias[2] = 1.5
    sources = random_sources(torch.Generator().manual_seed(4), 8)
    beam = decode_batch(
        model, sources, DecodeConfig(decoder="beam", beam_size=1, max_new_tokens=15)
    )
    for source, output in zip(sources, beam, strict=True):
        (alone,) = greedy(model, [source], max_new_tokens=15)
        assert_lossless(model, source, alone, output.tokens)


def test_batched_beam_equals_beam_one_by_one():
    model = tiny_model(final_logits_bias=True)
    model.final_logits_bias[2] = 1.0
    sources = random_sources(torch.Generator().manual_seed(5), 6)
    cfg = DecodeConfig(decoder="beam", beam_size=3, max_new_tokens=10)
    batched = decode_batch(model, sources, cfg)
    for source, output in zip(sources, batched, strict=True):
        (alone,) = decode_batch(model, [source], cfg)
        assert alone.tokens == output.tokens
        assert math.isclose(alone.score, output.score, abs_tol=1e-4)


def reference_beam(model, source, width, budget, length_penalty, early_stopping):
    """Beam search for one source, written plainly: hypotheses are token lists, and every
    step runs the whole uncached model on each of them. Returns (tokens, score, steps)."""
    eos, start = model.config.eos_id, model.config.decoder_start_id
    live, finished = [(0.0, [])], []  # (log-probability, tokens); finished: (normalised, tokens)
    for step in range(1, budget + 1):
        candidates = []
        for score, tokens in live:
            tgt = torch.tensor([[start, *tokens]])
            logits = model(torch.tensor([source]), torch.tensor([len(source)]), tgt)[0, -1]
            logp = torch.log_softmax(logits.float(), dim=-1).tolist()
            candidates += [(score + lp, tokens, token) for token, lp in enumerate(logp)]
        candidates.sort(key=lambda c: -c[0])
        ended = [
            (s / step**length_penalty, tokens) for s, tokens, t in candidates[:width] if t == eos
        ]
        finished = sorted(finished + ended, key=lambda h: -h[0])[:width]
        live = [(s, [*tokens, t]) for s, tokens, t in candidates if t != eos][:width]
        if step == budget:  # the length limit: live beams count as unended hypotheses
            break
        if len(finished) == width and (
            early_stopping or finished[-1][0] >= live[0][0] / step**length_penalty
        ):
            return finished[0][1], finished[0][0], step
    ends = [(s / budget**length_penalty, tokens) for s, tokens in live]
    finished = sorted(finished + ends, key=lambda h: -h[0])[:width]
    return finished[0][1], finished[0][0], budget


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize(
    ("length_penalty", "early_stopping"), [(1.0, False), (0.0, True), (2.0, False)]
)
def test_beam_equals_a_plain_uncached_reference(
    trained, architecture, length_penalty, early_stopping
):
    """Cached, batched beam search with beams reordered and finished items dropped returns
    what the plain definition returns, for items that end and items the length limit cuts."""
    model = trained[architecture].network
    rng = random.Random(2)
    sources = trained[architecture].encode_sources(
        [edit_task_pair(rng)["source"] for _ in range(6)]
    )
    cfg = DecodeConfig(
        decoder="beam",
        beam_size=3,
        max_new_tokens=10,
        length_penalty=length_penalty,
        early_stopping=early_stopping,
    )
    outputs = decode_batch(model, sources, cfg)
    assert any(o.finished for o in outputs) and not all(o.finished for o in outputs)
    with torch.no_grad():
        for source, output in zip(sources, outputs, strict=True):
            tokens, score, steps = reference_beam(
                model, source, 3, 10, length_penalty, early_stopping
            )
            assert output.tokens == tokens
            assert math.isclose(output.score, score, abs_tol=1e-4)
            assert output.stats.passes == steps  # when it stopped


def test_beam_with_no_room_to_generate_returns_nothing_like_greedy():
    model = tiny_model()
    sources = random_sources(torch.Generator().manual_seed(8), 3)
    for decoder in ("greedy", "beam"):
        outputs = decode_batch(model, sources, DecodeConfig(decoder=decoder, max_new_tokens=0))
        assert [(o.tokens, o.finished, o.stats.passes) for o in outputs] == [([], False, 0)] * 3


def test_unknown_decoder_is_an_error():
    with pytest.raises(ConfigError, match="unknown decoder"):
        decode_batch(tiny_model(), [[5, 2]], DecodeConfig(decoder="magic"))


def test_sampling_is_seeded_and_degenerates_to_greedy():
    model = tiny_model()
    sources = random_sources(torch.Generator().manual_seed(6), 4)
    cfg = DecodeConfig(decoder="sample", max_new_tokens=8, seed=7)
    first = [g.tokens for g in decode_batch(model, sources, cfg)]
    again = [g.tokens for g in decode_batch(model, sources, cfg)]
    other = [
        g.tokens
        for g in decode_batch(
            model, sources, DecodeConfig(decoder="sample", max_new_tokens=8, seed=8)
        )
    ]
    assert first == again
    assert first != other
    reference = greedy(model, sources, max_new_tokens=8)
    for settings_ in (dict(top_k=1), dict(temperature=0.0), dict(top_p=1e-6)):
        cfg = DecodeConfig(decoder="sample", max_new_tokens=8, seed=1, **settings_)
        assert [g.tokens for g in decode_batch(model, sources, cfg)] == reference, settings_


@settings(max_examples=50, deadline=None)
@given(
    logits=st.lists(st.floats(-20, 20), min_size=2, max_size=30),
    top_k=st.integers(0, 40),
    top_p=st.floats(0.01, 1.0),
)
def test_filter_logits_keeps_the_best_and_the_nucleus(logits, top_k, top_p):
    x = torch.tensor([logits])
    kept = torch.isfinite(filter_logits(x, top_k, top_p))[0]
    assert kept[int(x.argmax())]
    if top_k:
        # ties are judged in float32, where e.g. 0.0 and 2.5e-96 are the same logit
        distinct = len(set(x[0].tolist())) == len(logits)
        assert int(kept.sum()) <= max(top_k, 1) or not distinct
    if top_k == 0 and top_p < 1.0:
        probs = x.softmax(-1)[0]
        assert float(probs[kept].sum()) >= min(top_p, 1.0) - 1e-5
