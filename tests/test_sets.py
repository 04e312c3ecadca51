"""Read-Process-Write set encoder, pointer writing, and the order-search loss."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.errors import ConfigError
from seqweave.models.sets import SetPointerNetwork
from seqweave.objectives.order_search import order_search_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(seed=0, **options) -> SetPointerNetwork:
    torch.manual_seed(seed)
    return SetPointerNetwork(hidden=16, **options).eval()


@given(
    seed=st.integers(0, 1000),
    n=st.integers(2, 12),
    steps=st.integers(0, 6),
    glimpse=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_the_set_encoder_ignores_the_order_of_its_input(seed, n, steps, glimpse):
    model = _model(process_steps=steps, glimpse=glimpse)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(3, n, 1, generator=generator)
    shuffled = x[:, torch.randperm(n, generator=generator)]
    _, summary = model.encode(x)
    _, again = model.encode(shuffled)
    assert (summary - again).abs().max() < 1e-5


def test_an_lstm_reader_depends_on_the_order():
    model = _model(reader="lstm", process_steps=0)
    x = torch.rand(4, 8, 1, generator=torch.Generator().manual_seed(0))
    _, summary = model.encode(x)
    _, reversed_summary = model.encode(x.flip(1))
    assert (summary - reversed_summary).abs().max() > 1e-3


@pytest.mark.parametrize("reader,glimpse", [("set", True), ("set", False), ("lstm", False)])
def test_pointing_gives_a_distribution_over_permutations(reader, glimpse):
    """Elements already written are masked: the probabilities of all N! orders sum to 1,
    and greedy decoding writes each element once."""
    model = _model(reader=reader, glimpse=glimpse, process_steps=2)
    x = torch.rand(1, 4, 1, generator=torch.Generator().manual_seed(1))
    orders = torch.tensor(list(itertools.permutations(range(4))))
    log_probs = model.order_log_prob(x.expand(len(orders), -1, -1), orders)
    assert torch.exp(log_probs).sum().item() == pytest.approx(1.0, abs=1e-5)
    decoded = model.decode(torch.rand(5, 7, 1))
    assert all(sorted(row.tolist()) == list(range(7)) for row in decoded)


def test_without_masking_the_writer_may_repeat_and_still_normalises():
    model = _model(mask_written=False, process_steps=1)
    x = torch.rand(1, 3, 1, generator=torch.Generator().manual_seed(4))
    sequences = torch.tensor(list(itertools.product(range(3), repeat=3)))  # all 27
    log_probs = model.order_log_prob(x.expand(len(sequences), -1, -1), sequences)
    assert torch.exp(log_probs).sum().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.exp(log_probs[(sequences[:, 0] == sequences[:, 1])]).sum() > 0


def _brute_force(model, x, targets):
    """Per row: the max and the mean over all orders of log p, by enumeration."""
    best, mean = [], []
    for row in range(len(targets)):
        orders = torch.tensor(list(itertools.permutations(targets[row].tolist())))
        log_probs = model.order_log_prob(x[row : row + 1].expand(len(orders), -1, -1), orders)
        best.append(log_probs.max())
        mean.append(log_probs.mean())
    return torch.stack(best), torch.stack(mean)


def test_order_search_equals_brute_force_and_ignores_how_the_set_is_listed():
    model = _model(process_steps=3)
    x = torch.rand(4, 6, 1, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([[0, 3, 5], [1, 2, 4], [5, 4, 3], [0, 1, 2]])
    best, mean = _brute_force(model, x, targets)
    K = targets.shape[1]
    with torch.no_grad():
        search = order_search_loss(model, x, targets, "search", samples=6)
        pretrain = order_search_loss(model, x, targets, "pretrain", samples=6)
        relisted = order_search_loss(model, x, targets.flip(1), "search", samples=6)
    assert search.item() == pytest.approx((-best.mean() / K).item(), abs=1e-6)
    assert pretrain.item() == pytest.approx((-mean.mean() / K).item(), abs=1e-6)
    assert relisted.item() == pytest.approx(search.item(), abs=1e-6)


def test_sampled_order_search_never_beats_the_true_maximum():
    """With fewer samples than orders, the search takes the best order it drew: at least
    the exhaustive loss. The sampled uniform average is a mean over real orders: between
    the best and the worst."""
    model = _model(process_steps=2)
    x = torch.rand(3, 6, 1, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([[0, 1, 2, 3], [5, 4, 3, 2], [1, 3, 5, 0]])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        exhaustive = order_search_loss(model, x, targets, "search", samples=24)
        sampled = order_search_loss(model, x, targets, "search", samples=5, generator=generator)
        uniform = order_search_loss(model, x, targets, "pretrain", samples=5, generator=generator)
        worst = -_brute_force_min(model, x, targets).mean() / 4
    assert sampled.item() >= exhaustive.item() - 1e-6
    assert exhaustive.item() - 1e-6 <= uniform.item() <= worst.item() + 1e-6


def _brute_force_min(model, x, targets):
    worst = []
    for row in range(len(targets)):
        orders = torch.tensor(list(itertools.permutations(targets[row].tolist())))
        worst.append(
            model.order_log_prob(x[row : row + 1].expand(len(orders), -1, -1), orders).min()
        )
    return torch.stack(worst)


def test_sorting_is_learned_in_a_few_dozen_steps():
    torch.manual_seed(0)
    model = SetPointerNetwork(hidden=32, process_steps=2, glimpse=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(60):
        x = torch.rand(32, 4, 1)
        loss = model.loss(x, x.squeeze(-1).argsort(dim=1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    x = torch.rand(500, 4, 1, generator=torch.Generator().manual_seed(9))
    accuracy = (model.decode(x) == x.squeeze(-1).argsort(dim=1)).all(dim=1).float().mean()
    assert sum(losses[-10:]) < sum(losses[:10]) / 3
    assert accuracy > 0.8  # chance is 1/24


def test_bad_settings_are_errors():
    with pytest.raises(ConfigError, match="reader"):
        SetPointerNetwork(reader="gru")
    with pytest.raises(ConfigError, match="process_steps"):
        SetPointerNetwork(process_steps=-1)
    model = _model()
    x, targets = torch.rand(1, 3, 1), torch.tensor([[0, 1]])
    with pytest.raises(ConfigError, match="mode"):
        order_search_loss(model, x, targets, "best")
    with pytest.raises(ConfigError, match="at least one sample"):
        order_search_loss(model, x, targets, samples=0)
