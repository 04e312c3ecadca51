"""Numbers and residue indices written digit by digit: number <-> text <-> tokens round trips,
and the grammar constrained decoding follows writes exactly what the readers accept."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.data.digits import (
    END,
    INT_DIGITS,
    fixed_next,
    format_fixed,
    format_indices,
    indices_next,
    parse_fixed,
    parse_indices,
)
from seqweave.tokenizers import number_tokenizer

TOKENIZER = number_tokenizer()


@st.composite
def fixed_values(draw):
    decimals = draw(st.integers(0, 5))
    limit = 10 ** (INT_DIGITS + decimals) - 1
    return Decimal(draw(st.integers(-limit, limit))).scaleb(-decimals), decimals


@settings(max_examples=300, deadline=None)
@given(fixed_values())
def test_number_to_tokens_and_back_is_exact(case):
    value, decimals = case
    text = format_fixed(value, decimals)
    ids = TOKENIZER.encode(text)
    assert len(ids) == len(text)  # one token per character
    assert parse_fixed(TOKENIZER.decode(ids), decimals) == value


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e5, 1e5, allow_nan=False), st.integers(0, 4))
def test_a_float_is_written_rounded_half_to_even(value, decimals):
    text = format_fixed(value, decimals)
    expected = Decimal(value).quantize(Decimal(1).scaleb(-decimals))  # half to even
    assert parse_fixed(text, decimals) == expected
    assert text.count(".") == (decimals > 0)
    assert not (expected == 0 and text.startswith("-"))  # no negative zero


def walk_grammar(data, next_chars, limit=40):
    """A text written by choosing, at every step, any character the grammar allows."""
    text = ""
    for _ in range(limit):
        options = sorted(next_chars(text))
        choice = data.draw(st.sampled_from(options))
        if choice == END:
            return text
        text += choice
    raise AssertionError(f"the grammar did not end within {limit} characters: {text!r}")


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(0, 4))
def test_whatever_the_number_grammar_writes_parses_and_is_canonical(data, decimals):
    text = walk_grammar(data, lambda prefix: fixed_next(prefix, decimals))
    assert format_fixed(parse_fixed(text, decimals), decimals) == text


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(0, 120))
def test_whatever_the_index_grammar_writes_parses_sorted_and_in_range(data, length):
    text = walk_grammar(data, lambda prefix: indices_next(prefix, length), limit=500)
    indices = parse_indices(text, length)
    assert indices == sorted(set(indices)) and all(1 <= i <= length for i in indices)
    assert format_indices(indices) == text


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(1, 300)), st.integers(0, 50))
def test_indices_round_trip(indices, extra):
    ordered = sorted(indices)
    length = (ordered[-1] if ordered else 0) + extra
    assert parse_indices(format_indices(ordered), length) == ordered


@pytest.mark.parametrize(
    "text",
    ["", "01.00", "-0.00", "1.0", "1.000", "+1.00", "1e3", ".50", "1.", "1234567.00", "--1.00"],
)
def test_malformed_numbers_are_refused(text):
    with pytest.raises(ValueError, match="fixed-decimal"):
        parse_fixed(text, 2)


@pytest.mark.parametrize("text", ["3,2", "3,3", "0", "05", "11", "1,", ",1", "1,,2", "a"])
def test_malformed_indices_are_refused(text):
    with pytest.raises(ValueError, match="residue indices"):
        parse_indices(text, 10)


def test_negative_zero_and_too_large_values():
    assert format_fixed(-0.0001, 2) == "0.00"
    assert format_fixed(Decimal("-0.005"), 2) == "0.00"  # half to even
    assert format_fixed(Decimal("2.5"), 0) == "2" and format_fixed(-7, 1) == "-7.0"
    with pytest.raises(ValueError, match="integer digits"):
        format_fixed(10**INT_DIGITS, 1)
    with pytest.raises(ValueError, match="cannot write"):
        format_fixed(float("nan"), 1)
