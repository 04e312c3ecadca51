"""DNA models' scores: bits per base pair of reads, and labels chosen among label tokens.

Bits per base pair, not per token: a BPE token covers several bases, so per-token
loss falls as the vocabulary grows whether or not the model got better; dividing
the bits of a read's tokens by its bases compares tokenizers with each other and
with per-base models (``seqweave.baselines.markov_dna``). The end-of-read token
is not counted, as the Markov models do not predict where a read ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from seqweave.data.framing import frame_source
from seqweave.data.tokenized import collate
from seqweave.tokenizers import Tokenizer


def _batches(count: int, size: int) -> list[range]:
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


@torch.inference_mode()
def read_bits(
    network, tokenizer: Tokenizer, reads: Sequence[str], prompt: str = "", batch_size: int = 64
) -> tuple[float, int]:
    """(total bits, bases) of ``reads`` as targets after the source ``prompt`` (the framed
    empty source a read LM was trained on); bits per base pair is their ratio."""
    network.eval()
    cfg = network.config
    source = frame_source(tokenizer.encode(prompt), cfg)
    targets = tokenizer.encode_batch(list(reads))
    total = 0.0
    for rows in _batches(len(targets), batch_size):
        batch = collate([source] * len(rows), [targets[i] for i in rows], cfg)
        batch = batch.to(network.device)
        logits = network(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        picked = log_probs.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)  # (B, T)
        lengths = torch.tensor([len(targets[i]) for i in rows], device=picked.device)
        inside = torch.arange(picked.shape[1], device=picked.device)[None] < lengths[:, None]
        total -= float(picked[inside].sum()) / math.log(2)
    return total, sum(len(read) for read in reads)


def bits_per_base(network, tokenizer: Tokenizer, reads: Sequence[str], prompt: str = "") -> float:
    total, bases = read_bits(network, tokenizer, reads, prompt)
    return total / max(bases, 1)


@torch.inference_mode()
def choose_labels(
    network, tokenizer: Tokenizer, sources: Sequence[str], labels: Sequence[str], batch_size=64
) -> list[str]:
    """For each source, the label token whose logit is highest at the first output
    position: the answer of an instruction-tuned model, restricted to valid labels.

    Raises:
        ValueError: a label is not a single token of the vocabulary.
    """
    label_ids = []
    for label in labels:
        ids = tokenizer.encode(label)
        if len(ids) != 1:
            raise ValueError(f"label {label!r} is not one token of the vocabulary")
        label_ids.append(ids[0])
    network.eval()
    cfg = network.config
    framed = [frame_source(ids, cfg) for ids in tokenizer.encode_batch(list(sources))]
    chosen = []
    for rows in _batches(len(framed), batch_size):
        batch = collate([framed[i] for i in rows], [[]] * len(rows), cfg).to(network.device)
        logits = network(batch.src, batch.src_lengths, batch.tgt_in)[:, 0, label_ids]  # (B, L)
        chosen += [labels[int(i)] for i in logits.argmax(-1)]
    return chosen
