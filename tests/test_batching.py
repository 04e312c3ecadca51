"""Tests for seqweave.data.batching: budgets, coverage, determinism, filtering, sharding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.data.batching import (
    LengthFilterReport,
    filter_by_length,
    shard,
    token_batches,
)

single_lengths = st.lists(st.integers(min_value=0, max_value=300), max_size=200)
pair_lengths = st.lists(
    st.tuples(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=300)),
    max_size=200,
)
budgets = st.integers(min_value=1, max_value=2000)
sentence_caps = st.none() | st.integers(min_value=1, max_value=64)


def cost(item: int | tuple[int, int]) -> int:
    return max(item) if isinstance(item, tuple) else item


def check_batches(lengths, batches, max_tokens, max_sentences) -> None:
    """Every index once; each batch within budget unless it is one over-long example."""
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        assert batch, "no empty batches"
        longest = max(cost(lengths[i]) for i in batch)
        if len(batch) > 1:
            assert len(batch) * longest <= max_tokens
            assert len(batch) * max(longest, 1) <= max_tokens
        if max_sentences is not None:
            assert len(batch) <= max_sentences


@given(single_lengths | pair_lengths, budgets, sentence_caps, st.booleans(), st.integers(0, 99))
def test_every_index_once_and_budget_respected(lengths, max_tokens, max_sentences, shuffle, seed):
    batches = token_batches(lengths, max_tokens, max_sentences, shuffle=shuffle, seed=seed)
    check_batches(lengths, batches, max_tokens, max_sentences)


@given(single_lengths, budgets, st.integers(1, 16), st.integers(0, 99))
def test_budget_respected_with_wide_buckets(lengths, max_tokens, bucket_width, seed):
    batches = token_batches(lengths, max_tokens, seed=seed, bucket_width=bucket_width)
    check_batches(lengths, batches, max_tokens, None)


@given(single_lengths | pair_lengths, budgets, st.booleans(), st.integers(0, 99))
def test_deterministic_for_a_seed(lengths, max_tokens, shuffle, seed):
    first = token_batches(lengths, max_tokens, shuffle=shuffle, seed=seed)
    assert token_batches(list(lengths), max_tokens, shuffle=shuffle, seed=seed) == first


@settings(max_examples=25)
@given(st.lists(st.integers(1, 100), min_size=500, max_size=1000), st.integers(0, 10**6))
def test_different_seeds_differ_for_big_inputs(lengths, seed):
    a = token_batches(lengths, max_tokens=200, seed=seed)
    b = token_batches(lengths, max_tokens=200, seed=seed + 1)
    assert a != b


@given(single_lengths, budgets)
def test_unshuffled_is_sorted_by_length(lengths, max_tokens):
    batches = token_batches(lengths, max_tokens, shuffle=False, seed=1)
    assert batches == token_batches(lengths, max_tokens, shuffle=False, seed=2)
    flat = [i for batch in batches for i in batch]
    keys = [(max(lengths[i], 1), i) for i in flat]
    assert keys == sorted(keys)


def test_overlong_example_forms_its_own_batch():
    lengths = [5, 5, 50, 5]
    batches = token_batches(lengths, max_tokens=20, shuffle=False)
    assert batches == [[0, 1, 3], [2]]


def test_pairs_use_longer_side():
    batches = token_batches([(2, 10), (10, 2), (1, 1)], max_tokens=20, shuffle=False)
    assert batches == [[2, 0], [1]]


def test_zero_length_examples_do_not_form_unbounded_batches():
    assert [len(b) for b in token_batches([0] * 10, max_tokens=4, shuffle=False)] == [4, 4, 2]


def test_max_sentences_caps_batches():
    batches = token_batches([1] * 10, max_tokens=1000, max_sentences=3, shuffle=False)
    assert [len(b) for b in batches] == [3, 3, 3, 1]


def test_empty_input():
    assert token_batches([], max_tokens=10) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tokens": 0},
        {"max_tokens": 10, "max_sentences": 0},
        {"max_tokens": 10, "bucket_width": 0},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        token_batches([1, 2], **kwargs)


def test_negative_length_rejected():
    with pytest.raises(ValueError, match="example 1"):
        token_batches([1, -1], max_tokens=10)


# --- filter_by_length ------------------------------------------------------------------------


def test_filter_counts_and_indices():
    kept, report = filter_by_length([3, 9, 4, 2, 5], [3, 3, 9, 2, 5], 5, 5)
    assert kept == [0, 3, 4]
    assert report == LengthFilterReport(3, 2, [1, 2], 5, 5)
    assert report.describe() == "skipped 2 of 5 examples longer than 5 source / 5 target tokens"


def test_filter_nothing_skipped_and_source_only():
    kept, report = filter_by_length([1, 2], None, 128, 128)
    assert kept == [0, 1]
    assert (report.kept, report.skipped, report.skipped_indices) == (2, 0, [])
    assert report.describe() == "kept all 2 examples (none longer than 128 source tokens)"


@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=100),
    st.integers(1, 50),
    st.integers(1, 50),
)
def test_filter_partitions_indices(pairs, max_src, max_tgt):
    src = [s for s, _ in pairs]
    tgt = [t for _, t in pairs]
    kept, report = filter_by_length(src, tgt, max_src, max_tgt)
    assert report.kept == len(kept) and report.skipped == len(report.skipped_indices)
    assert sorted(kept + report.skipped_indices) == list(range(len(pairs)))
    assert all(src[i] <= max_src and tgt[i] <= max_tgt for i in kept)
    assert all(src[i] > max_src or tgt[i] > max_tgt for i in report.skipped_indices)


def test_filter_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="3 source lengths but 2 target"):
        filter_by_length([1, 2, 3], [1, 2], 5, 5)


# --- shard -----------------------------------------------------------------------------------


@given(st.lists(st.integers(), max_size=50, unique=True), st.integers(1, 16))
def test_shard_covers_batch_exactly_once(batch, world_size):
    slices = [shard(batch, rank, world_size) for rank in range(world_size)]
    assert sorted(i for s in slices for i in s) == sorted(batch)
    sizes = [len(s) for s in slices]
    assert max(sizes) - min(sizes) <= 1


def test_shard_smaller_batch_than_ranks():
    assert [shard([7], rank, 3) for rank in range(3)] == [[7], [], []]


@pytest.mark.parametrize(("rank", "world_size"), [(-1, 2), (2, 2), (0, 0)])
def test_shard_invalid_rank(rank, world_size):
    with pytest.raises(ValueError):
        shard([1, 2], rank, world_size)
