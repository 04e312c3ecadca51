"""The lossless yardstick itself (``seqweave.lossless``), used by the decoding tests and by
``seqweave bench``: where two outputs part, and the top-2 logit gap there."""

from __future__ import annotations

import pytest
import torch

from seqweave.bench import first_difference_gap
from seqweave.lossless import first_difference, top2_gap
from tests.conftest import random_sources, tiny_model


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([5, 6, 7], [5, 6, 7], None),
        ([5, 6, 7], [5, 9, 7], 1),
        ([5, 6], [5, 6, 7], 2),
        ([5, 6, 7], [5], 1),
        ([], [4], 0),
    ],
)
def test_first_difference(a, b, expected):
    assert first_difference(a, b) == expected


def test_top2_gap_equals_the_cached_steps_gap():
    """The uncached gap after every prefix equals the gap of the cached, one-token steps."""
    model = tiny_model(seed=3)
    generator = torch.Generator().manual_seed(5)
    source = random_sources(generator, 1, low=6, high=6)[0]
    prefix = torch.randint(4, 50, (6,), generator=generator).tolist()
    state = model.start(model.encode(torch.tensor([source]), torch.tensor([len(source)])))
    tokens = [model.config.decoder_start_id, *prefix]
    with torch.no_grad():
        for k, token in enumerate(tokens):
            top = model.step(state, torch.tensor([[token]]))[0, -1].topk(2).values
            expected = float(top[0] - top[1])
            assert top2_gap(model, source, prefix[:k]) == pytest.approx(expected, abs=1e-5)


def test_bench_gap_is_taken_at_the_first_difference():
    model = tiny_model(seed=4)
    generator = torch.Generator().manual_seed(6)
    sources = random_sources(generator, 2)
    reference = [[7, 8, 9, 10], [11, 12]]
    gap = first_difference_gap(model, sources, reference)
    assert gap(0, [7, 8, 30]) == top2_gap(model, sources[0], [7, 8])
    assert gap(1, [11, 12, 13]) == top2_gap(model, sources[1], [11, 12])
