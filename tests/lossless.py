"""The lossless check shared by decoding tests: equal tokens, or a floating-point near-tie
at the first difference (``seqweave.lossless`` says what a near-tie is)."""

from __future__ import annotations

from seqweave.lossless import TIE_TOLERANCE, first_difference, top2_gap


def assert_lossless(model, source: list[int], reference: list[int], other: list[int]) -> bool:
    """Pass if equal; if not, demand a near-tie at the first difference. Returns True on a tie."""
    i = first_difference(reference, other)
    if i is None:
        return False
    gap = top2_gap(model, source, reference[:i])
    assert gap < TIE_TOLERANCE, (
        f"outputs differ at position {i} with a top-2 logit gap of {gap:.3g} "
        f"(>= {TIE_TOLERANCE}): {reference} vs {other}"
    )
    return True
