"""Lossless accelerated decoding: IAD, speculative decoding and any drafter equal greedy."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_batch, decode_many
from seqweave.decoding.aggressive import SourceDrafter
from seqweave.decoding.common import RowStats, length_budget, pad_batch
from seqweave.decoding.loop import collect, draft_verify
from seqweave.errors import ConfigError
from tests.conftest import MODEL_KINDS, VOCAB, edit_task_pair, random_sources, tiny_model
from tests.lossless import assert_lossless

ARCHITECTURES = ["transformer", "prefix_lm"]


def tokens(outputs):
    return [o.tokens for o in outputs]


def check_lossless(model, sources, reference, other) -> None:
    for source, ref, got in zip(sources, reference, other, strict=True):
        assert_lossless(model, source, ref, got)


class PerturbedDrafter:
    """Proposes the true greedy continuation with a random token changed at a random
    place (or not at all), and random lengths: ragged acceptance in every pass."""

    def __init__(self, sources, greedy_outputs, eos_id, seed):
        self.truth = {b: [*t, eos_id] for b, t in enumerate(greedy_outputs)}
        self.rng = random.Random(seed)

    def propose(self, rows, generated, room):
        drafts = []
        for b, done, space in zip(rows, generated, room, strict=True):
            draft = self.truth[b][len(done) : len(done) + self.rng.randint(0, max(space, 0))]
            if draft and self.rng.random() < 0.6:
                draft[self.rng.randrange(len(draft))] = self.rng.randrange(4, VOCAB)
            drafts.append(draft)
        return drafts

    def observe(self, accepted, next_tokens):
        pass

    def select(self, index):
        pass


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_any_draft_gives_greedy_tokens_with_ragged_acceptance(kind):
    model = tiny_model(**MODEL_KINDS[kind])
    sources = random_sources(torch.Generator().manual_seed(0), 12)
    cfg = DecodeConfig(max_new_tokens=16)
    reference = tokens(decode_batch(model, sources, cfg))
    src, lengths = pad_batch(sources, 0)
    with torch.inference_mode():
        memory = model.encode(src, lengths)
        stats = [RowStats() for _ in sources]
        drafter = PerturbedDrafter(sources, reference, model.config.eos_id, seed=1)
        budgets = length_budget(model, lengths, 16)
        outputs = collect(draft_verify(model, memory, budgets, stats, drafter), stats)
    check_lossless(model, sources, reference, tokens(outputs))
    accepted = [s.accepted for s in stats]
    assert len(set(accepted)) > 3, "rows should accept different numbers of draft tokens"
    assert all(s.accepted <= s.drafted for s in stats)
    assert sum(s.passes for s in stats) < sum(len(t) + 1 for t in reference)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    batch=st.integers(1, 6),
    draft_len=st.integers(1, 20),
    ngram=st.integers(1, 3),
    kind=st.sampled_from(sorted(MODEL_KINDS)),
    adaptive=st.booleans(),
)
def test_iad_equals_greedy_on_random_models(seed, batch, draft_len, ngram, kind, adaptive):
    model = tiny_model(seed=seed % 4, **MODEL_KINDS[kind])
    sources = random_sources(torch.Generator().manual_seed(seed), batch, high=16)
    reference = tokens(decode_batch(model, sources, DecodeConfig(max_new_tokens=20)))
    cfg = DecodeConfig(
        decoder="iad",
        max_new_tokens=20,
        draft_len=draft_len,
        ngram=ngram,
        adaptive_draft=adaptive,
    )
    check_lossless(model, sources, reference, tokens(decode_batch(model, sources, cfg)))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_iad_equals_greedy_on_trained_models(trained, architecture, batch_size):
    model = trained[architecture]
    rng = random.Random(2)
    sources = model.encode_sources([edit_task_pair(rng)["source"] for _ in range(32)])
    greedy = DecodeConfig(max_new_tokens=40, batch_size=1)
    iad = DecodeConfig(decoder="iad", max_new_tokens=40, batch_size=batch_size)
    reference = decode_many(model.network, sources, greedy)
    fast = decode_many(model.network, sources, iad)
    check_lossless(model.network, sources, tokens(reference), tokens(fast))
    greedy_passes = sum(o.stats.passes for o in reference)
    iad_passes = sum(o.stats.passes for o in fast)
    # alone a row drafts long; in a batch the rows share a draft budget (2 tokens each at 32)
    ceiling = 0.5 if batch_size == 1 else 0.75
    assert iad_passes < ceiling * greedy_passes, (iad_passes, greedy_passes)


def test_adaptive_iad_drafts_less_for_the_same_tokens(trained):
    """The adaptive draft length changes only how much is drafted: the tokens stay greedy's
    (and the fixed drafter's), while fewer drafted tokens are thrown away."""
    model = trained["transformer"]
    rng = random.Random(5)
    sources = model.encode_sources([edit_task_pair(rng)["source"] for _ in range(24)])
    runs = {}
    for adaptive in (False, True):
        cfg = DecodeConfig(decoder="iad", max_new_tokens=40, batch_size=1, adaptive_draft=adaptive)
        runs[adaptive] = decode_many(model.network, sources, cfg)
    assert tokens(runs[True]) == tokens(runs[False])
    fixed, adapted = ([o.stats for o in runs[a]] for a in (False, True))
    assert sum(s.drafted for s in adapted) < sum(s.drafted for s in fixed)
    accepted = sum(s.accepted for s in adapted) / sum(s.drafted for s in adapted)
    assert accepted > sum(s.accepted for s in fixed) / sum(s.drafted for s in fixed)


def test_source_drafter_doubles_a_rows_draft_after_a_full_accept_and_halves_it_after_a_cut():
    source = [*range(10, 200), 2]  # distinct tokens: a row realigns at once after a cut
    drafter = SourceDrafter([source, source], draft_len=16, tokens_per_pass=1000)
    generated: list[list[int]] = [[], []]

    def one_pass(accepted: list[int]) -> list[int]:
        """The draft lengths of one pass in which each row accepts ``accepted`` tokens."""
        drafts = drafter.propose([0, 1], generated, [500, 500])
        next_tokens = [source[len(g) + a] for g, a in zip(generated, accepted, strict=True)]
        drafter.observe(accepted, next_tokens)
        for g, draft, a, t in zip(generated, drafts, accepted, next_tokens, strict=True):
            g.extend([*draft[:a], t])
        return [len(d) for d in drafts]

    assert one_pass([1, 16]) == [16, 16]  # row 0 is cut after 1 token, row 1 takes all
    assert one_pass([0, 2]) == [8, 16]  # row 0 halved; row 1 stays at draft_len
    assert one_pass([2, 8]) == [4, 8]
    assert one_pass([2, 2]) == [2, 16]  # row 1 took its whole draft of 8: doubled
    assert one_pass([0, 0]) == [4, 8]  # so did row 0 (2 of 2)
    assert one_pass([0, 0]) == [2, 4]
    assert one_pass([0, 0]) == [2, 2]  # never below MIN_ADAPTED
    fixed = SourceDrafter([source], draft_len=16, tokens_per_pass=1000, adaptive=False)
    assert [len(d) for d in fixed.propose([0], [[]], [500])] == [16]
    fixed.observe([0], [source[0]])
    assert [len(d) for d in fixed.propose([0], [[source[0]]], [500])] == [16]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_speculative_equals_greedy(trained, architecture):
    """A trained target with three drafts: itself (everything accepted), a random small
    model (almost nothing accepted) and the other architecture's random twin."""
    model = trained[architecture]
    rng = random.Random(3)
    sources = model.encode_sources([edit_task_pair(rng)["source"] for _ in range(20)])
    reference = tokens(decode_batch(model.network, sources, DecodeConfig(max_new_tokens=40)))
    vocab = model.config.vocab_size
    drafts = {
        "self": model.network,
        "random": tiny_model(seed=5, vocab_size=vocab, architecture=architecture),
        "other": tiny_model(seed=6, vocab_size=vocab, architecture="prefix_lm"),
    }
    for name, draft in drafts.items():
        cfg = DecodeConfig(decoder="spec", max_new_tokens=40, draft_k=3)
        outputs = decode_batch(model.network, sources, cfg, draft_model=draft)
        check_lossless(model.network, sources, reference, tokens(outputs))
        if name == "self":
            assert all(o.stats.accepted == o.stats.drafted for o in outputs)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), batch=st.integers(1, 5))
def test_speculative_equals_greedy_on_random_models(seed, k, batch):
    target = tiny_model(seed=seed % 3)
    draft = tiny_model(
        seed=seed % 3 + 10, d_model=8, num_heads=1, encoder_layers=1, decoder_layers=1
    )
    sources = random_sources(torch.Generator().manual_seed(seed), batch)
    reference = tokens(decode_batch(target, sources, DecodeConfig(max_new_tokens=12)))
    cfg = DecodeConfig(decoder="spec", max_new_tokens=12, draft_k=k, max_draft_k=k + 4)
    outputs = tokens(decode_batch(target, sources, cfg, draft_model=draft))
    check_lossless(target, sources, reference, outputs)


def test_budget_cuts_accelerated_output_like_greedy(trained):
    model = trained["transformer"]
    sources = model.encode_sources(["abcdefghij" * 2, "aaa", "bcd" * 5])
    for limit in (1, 3, 7):
        reference = tokens(decode_batch(model.network, sources, DecodeConfig(max_new_tokens=limit)))
        for decoder, draft in (("iad", None), ("spec", model.network)):
            cfg = DecodeConfig(decoder=decoder, max_new_tokens=limit)
            got = tokens(decode_batch(model.network, sources, cfg, draft_model=draft))
            assert got == reference, (decoder, limit)


def test_source_drafter_guesses_a_substitution_then_realigns_on_ngrams():
    drafter = SourceDrafter([[10, 11, 12, 13, 14, 15, 2]], draft_len=64, ngram=2)
    assert drafter.propose([0], [[]], [50]) == [[10, 11, 12, 13, 14, 15, 2]]
    drafter.observe([2], [99])  # 10 11 accepted, then the model wrote 99 instead of 12
    # (11, 99) is not in the source: guess that 99 replaced 12 and go on from 13
    assert drafter.propose([0], [[10, 11, 99]], [50]) == [[13, 14, 15, 2]]
    drafter.observe([0], [98])  # wrong: the model inserted 98 too
    assert drafter.propose([0], [[10, 11, 99, 98]], [50]) == [[]]  # one guess only
    drafter.observe([0], [12])
    assert drafter.propose([0], [[10, 11, 99, 98, 12]], [50]) == [[]]  # (98, 12) unknown
    drafter.observe([0], [13])
    # (12, 13) occurs in the source: drafting resumes after it
    assert drafter.propose([0], [[10, 11, 99, 98, 12, 13]], [50]) == [[14, 15, 2]]


def test_source_drafter_prefers_the_occurrence_after_the_last_match():
    drafter = SourceDrafter([[5, 6, 7, 5, 6, 8, 2]], ngram=2)
    drafter.last_match[0] = 0
    assert drafter._realign(0, [1, 5, 6]) == 2  # (5, 6) ends at 2 and at 5: take the first
    drafter.last_match[0] = 3  # the output has already copied past the first (5, 6)
    assert drafter._realign(0, [1, 5, 6]) == 5
    drafter.last_match[0] = 6
    assert drafter._realign(0, [1, 5, 6]) is None  # none lies ahead
    assert drafter._realign(0, [1, 7, 5]) == 4  # unique n-grams realign wherever they are


def test_source_drafter_shares_its_budget_among_rows():
    sources = [[5, 6, 7, 8, 9, 10, 11, 12, 2]] * 4
    alone = SourceDrafter(sources[:1], draft_len=64, tokens_per_pass=8)
    assert alone.propose([0], [[]], [50]) == [sources[0][:8]]
    shared = SourceDrafter(sources, draft_len=64, tokens_per_pass=8)
    assert shared.propose([0, 1, 2, 3], [[]] * 4, [50] * 4) == [sources[0][:2]] * 4


def test_spec_without_draft_model_is_an_error():
    with pytest.raises(ConfigError, match="draft model"):
        decode_batch(tiny_model(), [[5, 2]], DecodeConfig(decoder="spec"))
