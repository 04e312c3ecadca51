"""Token-budget batching with length bucketing, in the style fairseq and OpenNMT users expect.

Batches are sized by padded tokens rather than by a fixed number of sentences, so short
sentences travel in large batches and long ones in small batches, keeping memory use flat.
Sorting by length before cutting batches keeps padding low; shuffling the batch order (and
breaking length ties at random) keeps training from seeing the same sequence every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LengthFilterReport:
    """What ``filter_by_length`` dropped, so a trainer can log it instead of losing data quietly."""

    kept: int
    skipped: int
    skipped_indices: list[int] = field(default_factory=list)
    max_source_len: int | None = None
    max_target_len: int | None = None

    def describe(self) -> str:
        """One log line, e.g. "skipped 3 of 1000 examples longer than 128 source / 128 target"."""
        total = self.kept + self.skipped
        limits = []
        if self.max_source_len is not None:
            limits.append(f"{self.max_source_len} source")
        if self.max_target_len is not None:
            limits.append(f"{self.max_target_len} target")
        limit_text = " / ".join(limits) if limits else "no limit"
        if self.skipped == 0:
            return f"kept all {total} examples (none longer than {limit_text} tokens)"
        return f"skipped {self.skipped} of {total} examples longer than {limit_text} tokens"


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value}")


def filter_by_length(
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int] | None,
    max_source_len: int | None,
    max_target_len: int | None,
) -> tuple[list[int], LengthFilterReport]:
    """Return the indices (in order) of examples within both length limits, plus a report.

    Over-long examples are dropped rather than truncated because a truncated target teaches
    the model to stop mid-sentence. ``None`` for a limit (or for ``tgt_lengths``, when there
    are no targets) means that side is not checked.
    """
    _check_limit("max_source_len", max_source_len)
    _check_limit("max_target_len", max_target_len)
    if tgt_lengths is not None and len(tgt_lengths) != len(src_lengths):
        raise ValueError(
            f"got {len(src_lengths)} source lengths but {len(tgt_lengths)} target lengths"
        )
    kept: list[int] = []
    skipped: list[int] = []
    for i, src_len in enumerate(src_lengths):
        too_long = max_source_len is not None and src_len > max_source_len
        if tgt_lengths is not None and max_target_len is not None:
            too_long = too_long or tgt_lengths[i] > max_target_len
        (skipped if too_long else kept).append(i)
    report = LengthFilterReport(
        kept=len(kept),
        skipped=len(skipped),
        skipped_indices=skipped,
        max_source_len=max_source_len,
        max_target_len=max_target_len if tgt_lengths is not None else None,
    )
    return kept, report


def _effective_lengths(lengths: Sequence[int] | Sequence[tuple[int, int]]) -> np.ndarray:
    """One cost per example: the longer side of a (source, target) pair, and at least 1.

    Source and target are padded in separate tensors, so the larger of the two is what bounds
    a batch's memory. The floor of 1 stands for the EOS token every sequence carries, and it
    stops zero-length examples from forming unbounded batches.
    """
    values = np.asarray(lengths, dtype=np.int64)
    if values.ndim == 2 and values.shape[1] == 2:
        values = values.max(axis=1)
    elif values.ndim != 1:
        raise ValueError("lengths must be ints or (source, target) pairs of ints")
    negative = np.flatnonzero(values < 0)
    if negative.size:
        raise ValueError(f"length of example {int(negative[0])} is negative")
    return np.maximum(values, 1)


def _sorted_order(lengths: np.ndarray, bucket_width: int, shuffle: bool, seed: int) -> np.ndarray:
    """Order indices by length bucket; ties break at random (seeded) or by index if unshuffled."""
    buckets = (lengths - 1) // bucket_width
    if shuffle:
        tie_break = np.random.default_rng(seed).permutation(len(lengths))
    else:
        tie_break = np.arange(len(lengths))
    return np.lexsort((tie_break, buckets))


def _cut_batches(
    order: np.ndarray, lengths: np.ndarray, max_tokens: int, max_sentences: int | None
) -> list[list[int]]:
    """Greedily fill batches in the given order while the padded token count fits the budget."""
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for index in order.tolist():
        new_longest = max(longest, int(lengths[index]))
        too_many = max_sentences is not None and len(batch) + 1 > max_sentences
        if batch and (too_many or (len(batch) + 1) * new_longest > max_tokens):
            batches.append(batch)
            batch, new_longest = [], int(lengths[index])
        batch.append(index)
        longest = new_longest
    if batch:
        batches.append(batch)
    return batches


def token_batches(
    lengths: Sequence[int] | Sequence[tuple[int, int]],
    max_tokens: int,
    max_sentences: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    bucket_width: int = 1,
) -> list[list[int]]:
    """Group example indices into batches of at most ``max_tokens`` padded tokens.

    Each batch satisfies ``len(batch) * max(lengths in batch) <= max_tokens`` and holds at
    most ``max_sentences`` examples. A pair's length is the max of source and target (see
    ``_effective_lengths``), and lengths below 1 count as 1. A single example longer than
    ``max_tokens`` is never dropped: it forms a batch on its own (filter with
    ``filter_by_length`` first if that batch would not fit in memory). Every index appears
    exactly once.

    Examples are sorted by length, rounded up to buckets of ``bucket_width`` tokens: a wider
    bucket mixes more similar-length examples across epochs at the cost of a little padding.
    With ``shuffle=True`` ties within a bucket break at random and the batch order is
    shuffled, both from ``seed`` (pass e.g. ``base_seed + epoch`` for fresh batches each
    epoch); with ``shuffle=False`` the result depends only on the lengths: ascending length,
    ties broken by index.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    _check_limit("max_sentences", max_sentences)
    if bucket_width < 1:
        raise ValueError(f"bucket_width must be positive, got {bucket_width}")
    effective = _effective_lengths(lengths)
    order = _sorted_order(effective, bucket_width, shuffle, seed)
    batches = _cut_batches(order, effective, max_tokens, max_sentences)
    if shuffle:
        # A separate stream from the tie-break, so the two shuffles are independent.
        permutation = np.random.default_rng([seed, 1]).permutation(len(batches))
        batches = [batches[i] for i in permutation.tolist()]
    return batches


def shard(batch: list[int], rank: int, world_size: int) -> list[int]:
    """Give data-parallel ``rank`` its slice of ``batch``: every ``world_size``-th example.

    Striding rather than cutting contiguous blocks matters because batches come sorted by
    length: each rank gets a mix of the batch's lengths, and slice sizes differ by at most one.
    The slices of all ranks together cover the batch exactly once. When the batch has fewer
    examples than ranks (e.g. a lone over-long example), ranks ``>= len(batch)`` get an empty
    list; they must still take part in gradient synchronisation, contributing zero loss and
    zero tokens, or the collective calls will hang.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be positive, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return batch[rank::world_size]
