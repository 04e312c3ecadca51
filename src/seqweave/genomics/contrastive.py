"""In-batch InfoNCE between reads and the reference windows that hold them.

Each training pair is a window cut at a random place of the reference and a read
simulated inside it (substitutions and indels at the configured rates). The other
windows of the batch are the read's negatives and the other reads the window's, in
both directions (symmetric InfoNCE, as CLIP and Embed-Search-Align use).

Strands. A read can come from either strand, and the index stores forward windows
only. Training therefore sees both strands (half the pairs are reverse-complemented
as a whole, read and window together), so the encoder is not tied to one strand;
at query time the read and its reverse complement are both embedded and searched,
and the strand whose alignment scores higher wins (``seqweave.genomics.align``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.data.formats.fasta import SequenceRecord
from seqweave.data.synthetic_dna import mutate, reverse_complement
from seqweave.errors import ConfigError
from seqweave.genomics.encoder import DnaEncoder


@dataclass(frozen=True)
class ContrastiveConfig:
    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 100
    temperature: float = 0.05
    read_length: int = 100
    sub_rate: float = 0.01  # per base
    indel_rate: float = 0.004  # per base, half insertions and half deletions
    seed: int = 0
    log_every: int = 50
    max_seconds: float = 0.0  # stop after this long (0: run every step)


def info_nce(reads: Tensor, windows: Tensor, temperature: float) -> Tensor:
    """Symmetric in-batch InfoNCE: row i of ``reads`` (B, D) belongs with row i of
    ``windows`` (B, D); the other rows are negatives. Mean of both directions."""
    logits = reads @ windows.T / temperature  # (B, B)
    target = torch.arange(len(reads), device=reads.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def sample_pairs(
    records: Sequence[SequenceRecord], window: int, count: int, config: ContrastiveConfig,
    rng: random.Random,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """``count`` (read, window) pairs from contigs at least ``window`` long, chosen by length."""
    contigs = [r.sequence for r in records if len(r.sequence) >= window]
    if not contigs:
        raise ConfigError(f"no reference sequence is as long as a window ({window} bases)")
    weights = [len(s) for s in contigs]
    reads, windows = [], []
    for contig in rng.choices(contigs, weights, k=count):
        start = rng.randrange(len(contig) - window + 1)
        piece = contig[start : start + window]
        offset = rng.randrange(window - config.read_length + 1)
        read = mutate(piece[offset : offset + config.read_length], *_rates(config), rng)
        if rng.random() < 0.5:
            piece, read = reverse_complement(piece), reverse_complement(read)
        reads.append(read)
        windows.append(piece)
    return reads, windows


def _rates(config: ContrastiveConfig) -> tuple[float, float]:
    return config.sub_rate, config.indel_rate


def train_encoder(
    encoder: DnaEncoder,
    records: Sequence[SequenceRecord],
    config: ContrastiveConfig,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train ``encoder`` in place; returns the logged steps (loss, in-batch accuracy).

    Raises:
        ConfigError: reads longer than the window overlap (they would not fit whole in
            one indexed window) or a reference shorter than a window.
    """
    window = encoder.config.fragment_length
    overlap = window - encoder.config.fragment_stride
    if config.read_length > overlap:
        raise ConfigError(
            f"read_length {config.read_length} exceeds the window overlap {overlap} "
            "(fragment_length - fragment_stride)"
        )
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(config))
    encoder.train()
    history, started = [], time.perf_counter()
    for step in range(1, config.steps + 1):
        reads, windows = sample_pairs(records, window, config.batch_size, config, rng)
        read_vectors = encoder(*encoder.tokenize(reads))
        window_vectors = encoder(*encoder.tokenize(windows))
        loss = info_nce(read_vectors, window_vectors, config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        elapsed = time.perf_counter() - started
        last = step == config.steps or 0 < config.max_seconds < elapsed
        if step % config.log_every == 0 or last:
            with torch.no_grad():
                hits = (read_vectors @ window_vectors.T).argmax(1) == torch.arange(len(reads))
            row = {"step": step, "loss": loss.item(), "in_batch_acc": hits.float().mean().item()}
            history.append(row | {"seconds": round(elapsed, 1)})
            log(f"step {step} loss {row['loss']:.4f} in-batch acc {row['in_batch_acc']:.3f}")
        if last:
            break
    encoder.eval()
    return history


def _warmup_cosine(config: ContrastiveConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor
