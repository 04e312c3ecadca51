"""Packed rows: several short sequences per training row, none seeing another.

Reads are short (100-300 bp, a few dozen BPE tokens) and of uneven length, so
padding each to the longest in its batch spends compute on pad tokens; METAGENE-1
packs reads into long rows instead. Packing here is for a decoder-only model
(``prefix_lm``): the packed sequences are targets after one shared prefix (for
pretraining on reads, the framed empty source), and ``Batch.segments`` tells the
model which sequence each target token is of, so that its attention mask is
block-diagonal causal and its positions restart with each sequence
(``PrefixLM.forward``). Each sequence then gets exactly the logits it would get
alone in a row: packing changes the cost of a batch, never what is learned.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from seqweave.config import ModelConfig
from seqweave.data.tokenized import Batch


def packed_batches(lengths: Sequence[int], max_tokens: int, seed: int) -> list[list[int]]:
    """Example indices in a seeded random order, cut into batches of at most ``max_tokens``
    decoder tokens (``lengths``: target tokens + 1 per example); an example longer than
    ``max_tokens`` gets a batch of its own."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index in order:
        if current and used + lengths[index] > max_tokens:
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += lengths[index]
    if current:
        batches.append(current)
    return batches


def pack_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Positions 0..n-1 of ``lengths`` into rows of at most ``row_tokens`` tokens, in order
    (next fit: a row is closed when the next sequence does not fit)."""
    rows: list[list[int]] = []
    used = row_tokens + 1
    for position, length in enumerate(lengths):
        if used + length > row_tokens:
            rows.append([])
            used = 0
        rows[-1].append(position)
        used += length
    return rows


def collate_packed(
    sources: Sequence[list[int]],
    targets: Sequence[list[int]],
    cfg: ModelConfig,
    row_tokens: int,
) -> Batch:
    """Pack raw targets into rows of at most ``row_tokens`` decoder tokens after their
    shared framed source. Row b's ``tgt_in`` is ``[start] y1 [start] y2 ...`` and its
    ``tgt_out`` ``y1 [eos] y2 [eos] ...``; ``segments`` numbers the sequences of a row
    (padding: -1).

    Raises:
        ValueError: the sources differ (packed sequences share one prefix).
    """
    if any(source != sources[0] for source in sources):
        raise ValueError("packed sequences share one prefix, but these sources differ")
    rows = pack_rows([len(t) + 1 for t in targets], row_tokens)
    B, T = len(rows), max(sum(len(targets[i]) + 1 for i in row) for row in rows)
    tgt_in = torch.full((B, T), cfg.pad_id, dtype=torch.long)
    tgt_out = torch.full((B, T), cfg.pad_id, dtype=torch.long)
    segments = torch.full((B, T), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        at = 0
        for k, i in enumerate(row):
            n = len(targets[i]) + 1
            tgt_in[b, at : at + n] = torch.tensor([cfg.decoder_start_id, *targets[i]])
            tgt_out[b, at : at + n] = torch.tensor([*targets[i], cfg.eos_id])
            segments[b, at : at + n] = k
            at += n
    src = torch.tensor([sources[0]] * B, dtype=torch.long).reshape(B, len(sources[0]))
    lengths = torch.full((B,), len(sources[0]), dtype=torch.long)
    num_tokens = sum(len(t) + 1 for t in targets)
    return Batch(src, lengths, tgt_in, tgt_out, num_tokens, segments=segments)
