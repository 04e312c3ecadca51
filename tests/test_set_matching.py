"""OTSeq2Set's set losses: Hungarian matching with EMPTY padding, IPOT, student forcing."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.config import DecodeConfig
from seqweave.decoding import decode_batch
from seqweave.decoding.common import pad_batch
from seqweave.errors import ConfigError
from seqweave.objectives.set_matching import (
    brute_force_match,
    ipot,
    match_steps,
    ot_loss,
    output_embeddings,
    pad_sets,
    padded_costs,
    set_matching_loss,
    student_forced_log_probs,
    student_forced_tokens,
)
from tests.conftest import random_sources, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EMPTY = 3


def _log_probs(seed: int, batch: int, steps: int, vocab: int = 12) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, steps, vocab, generator=generator)
    return torch.log_softmax(logits, dim=-1)


def _gold_sets(draw_sizes: list[int], seed: int, vocab: int = 12) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    labels = [v for v in range(vocab) if v != EMPTY]
    sets = []
    for size in draw_sizes:
        pick = torch.randperm(len(labels), generator=generator)[:size]
        sets.append([labels[i] for i in pick.tolist()])
    return sets


@given(seed=st.integers(0, 10_000), steps=st.integers(1, 6), data=st.data())
@settings(max_examples=60, deadline=None)
def test_the_hungarian_matching_costs_the_brute_force_minimum(seed, steps, data):
    size = data.draw(st.integers(0, steps))
    log_probs = _log_probs(seed, 1, steps)[0]
    gold = _gold_sets([size], seed)[0]
    targets = match_steps(log_probs, gold, EMPTY)
    # the matching uses each gold label once and EMPTY for the rest
    assert sorted(targets) == sorted(gold + [EMPTY] * (steps - size))
    cost = -log_probs[torch.arange(steps), targets].double().sum().item()
    assert cost == pytest.approx(brute_force_match(log_probs, gold, EMPTY), abs=1e-9)


@given(seed=st.integers(0, 10_000), steps=st.integers(1, 7), data=st.data())
@settings(max_examples=50, deadline=None)
def test_the_loss_does_not_depend_on_the_order_of_the_gold_labels(seed, steps, data):
    sizes = data.draw(st.lists(st.integers(0, steps), min_size=1, max_size=4))
    log_probs = _log_probs(seed, len(sizes), steps)
    gold = _gold_sets(sizes, seed)
    shuffled = [data.draw(st.permutations(labels)) for labels in gold]
    loss, targets = set_matching_loss(log_probs, gold, EMPTY)
    again, targets_again = set_matching_loss(log_probs, shuffled, EMPTY)
    assert loss.item() == pytest.approx(again.item(), abs=1e-5)
    assert targets.shape == (len(sizes), steps)
    for row in range(len(sizes)):  # each row is trained on the same multiset of labels
        assert sorted(targets[row].tolist()) == sorted(targets_again[row].tolist())


def test_leftover_steps_are_matched_to_empty_where_it_is_cheapest():
    """Three steps, one gold label: the step most confident in the label takes it, the
    other two take EMPTY, whatever the order of the steps."""
    probs = torch.full((3, 5), 0.01)
    probs[0, EMPTY], probs[1, 4], probs[2, EMPTY] = 0.9, 0.9, 0.9
    log_probs = (probs / probs.sum(-1, keepdim=True)).log()
    assert match_steps(log_probs, [4], EMPTY) == [EMPTY, 4, EMPTY]
    assert match_steps(log_probs, [], EMPTY) == [EMPTY] * 3
    loss, _ = set_matching_loss(log_probs[None], [[4]], EMPTY)
    expected = -(log_probs[0, EMPTY] + log_probs[1, 4] + log_probs[2, EMPTY])
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert padded_costs(log_probs, [4], EMPTY).shape == (3, 3)
    assert pad_sets([[4], [1, 2]], 3, EMPTY).tolist() == [[4, EMPTY, EMPTY], [1, 2, EMPTY]]


def test_the_matching_loss_has_a_gradient_only_at_the_matched_labels():
    log_probs = _log_probs(0, 2, 4).requires_grad_()
    loss, targets = set_matching_loss(log_probs, [[1, 2], [5, 6, 7]], EMPTY)
    loss.backward()
    expected = -torch.nn.functional.one_hot(targets, 12).float()
    assert torch.equal(log_probs.grad, expected)


@pytest.mark.parametrize(
    "gold,message",
    [
        ([[1, 2, 4, 5]], "4 labels but the decoder runs only 3 steps"),
        ([[1, 1]], "repeats a label"),
        ([[1, EMPTY]], "contains the EMPTY label"),
        ([[1, 12]], "label 12, not a token id"),
        ([[1], [2]], "2 gold sets for a batch of 1 rows"),
    ],
)
def test_bad_gold_sets_are_refused_with_the_reason(gold, message):
    with pytest.raises(ValueError, match=message):
        set_matching_loss(_log_probs(0, 1, 3), gold, EMPTY)


def test_a_bad_vocabulary_or_empty_id_is_refused():
    with pytest.raises(ValueError, match="vocabulary of at least one token"):
        set_matching_loss(torch.zeros(1, 3, 0), [[]], 0)
    with pytest.raises(ValueError, match="empty_id=12 is not a token id"):
        set_matching_loss(_log_probs(0, 1, 3), [[1]], 12)


@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), m=st.integers(1, 6))
@settings(max_examples=40, deadline=None)
def test_ipot_plans_have_the_given_marginals(seed, n, m):
    generator = torch.Generator().manual_seed(seed)
    cost = torch.rand(3, n, m, generator=generator, dtype=torch.float64)
    source = torch.rand(3, n, generator=generator, dtype=torch.float64) + 0.1
    target = torch.rand(3, m, generator=generator, dtype=torch.float64) + 0.1
    source, target = source / source.sum(-1, keepdim=True), target / target.sum(-1, keepdim=True)
    plan = ipot(cost, source, target, beta=0.5, iterations=200)
    assert (plan >= 0).all()
    # the last scaling fixes the columns exactly; the rows converge with the iterations
    assert torch.allclose(plan.sum(-1), source, atol=1e-2)
    assert torch.allclose(plan.sum(-2), target, atol=1e-9)


def test_ipot_finds_the_optimal_assignment_of_a_square_problem():
    """With uniform marginals on both sides the optimum is a permutation (Birkhoff), so
    IPOT's cost must reach the brute-force minimum over assignments."""
    cost = torch.rand(1, 5, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    uniform = torch.full((1, 5), 0.2, dtype=torch.float64)
    plan = ipot(cost, uniform, uniform, beta=0.1, iterations=500)
    minimum = brute_force_match(-cost[0], list(range(5)), 0) / 5  # columns 0..4, no padding
    assert (plan * cost).sum().item() == pytest.approx(minimum, abs=1e-4)


def test_ipot_refuses_bad_settings():
    cost, weights = torch.rand(1, 2, 2), torch.full((1, 2), 0.5)
    with pytest.raises(ConfigError, match="beta must be > 0"):
        ipot(cost, weights, weights, beta=0.0)
    with pytest.raises(ConfigError, match="iterations >= 1"):
        ipot(cost, weights, weights, iterations=0)


def test_the_ot_loss_is_zero_when_the_steps_put_all_mass_on_the_gold_labels():
    embeddings = torch.randn(12, 8, generator=torch.Generator().manual_seed(0))
    padded = pad_sets([[5, 7], [1, 2, 4]], 3, EMPTY)
    exact = torch.full((2, 3, 12), -1e9)
    shuffled = padded[:, [2, 0, 1]]  # steps list the labels in another order
    exact.scatter_(-1, shuffled[..., None], 0.0)
    assert ot_loss(exact.log_softmax(-1), embeddings, padded).item() == pytest.approx(0, abs=1e-4)
    wrong = _log_probs(1, 2, 3)
    assert ot_loss(wrong, embeddings, padded).item() > 0.1


def test_student_forcing_is_greedy_decoding_and_forward_agrees_with_the_cache():
    """The training rollout feeds back argmaxes: its tokens are greedy decoding's (up to
    greedy's first end token), and the teacher-forced pass over them predicts them."""
    model = tiny_model(seed=4)
    sources = random_sources(torch.Generator().manual_seed(0), 5)
    src, lengths = pad_batch(sources, model.config.pad_id)
    steps = 6
    tokens = student_forced_tokens(model, src, lengths, steps)
    greedy = decode_batch(model, sources, DecodeConfig(max_new_tokens=steps))
    eos = model.config.eos_id
    for row, generation in zip(tokens.tolist(), greedy, strict=True):
        expected = generation.tokens + ([eos] if generation.finished else [])
        assert row[: len(expected)] == expected
    log_probs, fed = student_forced_log_probs(model, src, lengths, steps)
    assert torch.equal(fed, tokens)
    assert torch.equal(log_probs.argmax(-1), tokens)
    assert log_probs.requires_grad
    with pytest.raises(ConfigError, match="at least one step"):
        student_forced_log_probs(model, src, lengths, 0)


def test_a_tiny_set_model_learns_label_sets_from_unordered_gold():
    """Each source token 4..9 stands for one label (its id + 10); sources are shuffled
    token subsets and gold sets are listed in random order. After a short training
    on matching + OT, greedy decoding for T steps (EMPTY dropped) gives the sets."""
    torch.manual_seed(0)
    model = tiny_model(seed=0, d_model=32, ffn_dim=64).train()
    generator = torch.Generator().manual_seed(1)
    steps, optimizer = 3, torch.optim.Adam(model.parameters(), lr=1e-2)

    def batch(count):
        sources, gold = [], []
        for _ in range(count):
            size = int(torch.randint(1, steps + 1, (1,), generator=generator))
            tokens = (4 + torch.randperm(6, generator=generator)[:size]).tolist()
            sources.append([*tokens, 2])
            gold.append([t + 10 for t in torch.tensor(tokens)[torch.randperm(size)].tolist()])
        return sources, gold

    for _ in range(60):
        sources, gold = batch(32)
        src, lengths = pad_batch(sources, 0)
        log_probs, _ = student_forced_log_probs(model, src, lengths, steps)
        nll, _ = set_matching_loss(log_probs, gold, EMPTY)
        padded = pad_sets(gold, steps, EMPTY)
        ot = ot_loss(log_probs, output_embeddings(model), padded)
        loss = nll / log_probs.shape[:2].numel() + 0.1 * ot / len(gold)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    sources, gold = batch(50)
    outputs = decode_batch(model, sources, DecodeConfig(max_new_tokens=steps))
    predicted = [set(out.tokens) - {EMPTY} for out in outputs]
    exact = sum(p == set(g) for p, g in zip(predicted, gold, strict=True)) / len(gold)
    assert exact >= 0.9
