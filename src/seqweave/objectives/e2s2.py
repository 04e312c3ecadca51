"""Denoising pretraining with E2S2's encoder-side objectives (Zhong et al. 2022, "E2S2:
Encoding-Enhanced Sequence-to-Sequence Pretraining for Language Understanding and
Generation").

BART-style pretraining corrupts the source and trains the decoder to write the
original; the encoder learns only through the decoder. E2S2 adds two signals on
the encoder itself:

- **Encoder-side denoising**: from the encoder states of the corrupted source,
  predict the original token at every corrupted position (through
  ``models.e2s2.restore_logits``: the optional restore head and the tied
  output layer). Summed cross-entropy over corrupted positions, like the token
  loss is summed over target tokens.
- **Encoder-side contrastive learning**: the mean-pooled encoder states of a
  sentence's corrupted view and of its clean view are a positive pair, the other
  sentences' clean views in the batch are negatives; InfoNCE over cosine
  similarity divided by a temperature (one direction: corrupted view as query).
  A mean per sentence, scaled by the micro-batch's target tokens as the other
  auxiliary losses are. Under data parallelism the negatives would be a rank's
  shard only, so training refuses to combine the two (``seqweave.train``).

Corruption keeps positions: a token is masked or replaced, never deleted or
inserted, so encoder position i of the corrupted source still stands for token i
of the original and the restore target is defined everywhere. It runs on the
fly on token ids, because the targets are token ids (text-level corruption would
not survive BPE with its alignment), and it is seeded per micro-batch from
(train.seed, update step, the batch's first example), so a run and its resumed
continuation corrupt identically, on any device.

The objectives follow the paper as recalled; the pooling, the one-directional
InfoNCE and the absence of a projection head are this module's choices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.errors import ConfigError
from seqweave.models.e2s2 import restore_logits
from seqweave.models.layers import padding_mask
from seqweave.objectives.settings import DenoisingConfig, E2S2Config

MASK_TOKEN = "<mask>"


@dataclass(frozen=True)
class NoiseVocabulary:
    """What corruption needs to know of the tokenizer: the mask id and which ids are text."""

    mask_id: int
    special_ids: frozenset[int]
    vocab_size: int

    def ordinary_ids(self) -> Tensor:
        """(N,) the ids a random replacement is drawn from."""
        special = torch.tensor(sorted(self.special_ids | {self.mask_id}), dtype=torch.long)
        ids = torch.arange(self.vocab_size)
        return ids[~torch.isin(ids, special)]


def noise_vocabulary(tokenizer) -> NoiseVocabulary:
    """The noise vocabulary of a seqweave ``Tokenizer``; training adds ``<mask>`` to it
    whenever sources are masked (``seqweave.train``).

    Raises:
        ConfigError: the tokenizer has no ``<mask>`` token.
    """
    mask_id = tokenizer.token_to_id(MASK_TOKEN)
    if mask_id is None:
        raise ConfigError(f"source corruption needs a {MASK_TOKEN} token in the tokenizer")
    return NoiseVocabulary(mask_id, tokenizer.special_ids, tokenizer.vocab_size)


def noise_seed(seed: int, step: int, first_example: int) -> int:
    """The generator seed of one micro-batch's corruption."""
    return ((seed * 1_000_003 + step) * 1_000_003 + first_example) % (2**63)


def corrupt(
    src: Tensor,
    vocab: NoiseVocabulary,
    mask_rate: float,
    replace_rate: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Position-preserving corruption of padded sources (CPU).

    Each text token (not pad, framing or another special token) independently becomes
    ``<mask>`` with probability ``mask_rate``, a uniformly drawn ordinary token with
    probability ``replace_rate``, and is kept otherwise. Returns the corrupted ids
    (B, S) and where they differ from ``src`` (B, S) bool (a replacement that drew the
    original token is no corruption).
    """
    special = torch.tensor(sorted(vocab.special_ids), dtype=torch.long)
    text = ~torch.isin(src, special)  # (B, S)
    draw = torch.rand(src.shape, generator=generator)  # (B, S)
    ordinary = vocab.ordinary_ids()
    pick = torch.randint(len(ordinary), src.shape, generator=generator)  # (B, S)
    noisy = src.clone()
    masked = text & (draw < mask_rate)
    replaced = text & (draw >= mask_rate) & (draw < mask_rate + replace_rate)
    noisy[masked] = vocab.mask_id
    noisy[replaced] = ordinary[pick[replaced]]
    return noisy, noisy != src


def noisy_batch(batch, cfg: DenoisingConfig, vocab: NoiseVocabulary, seed: int):
    """A training ``Batch`` with its source corrupted as ``cfg`` says (the clean source kept
    as ``original``; unchanged when both rates are 0)."""
    generator = torch.Generator().manual_seed(seed)
    noisy, corrupted = corrupt(batch.src, vocab, cfg.mask_rate, cfg.replace_rate, generator)
    return dataclasses.replace(batch, src=noisy, original=batch.src, corrupted=corrupted)


def restore_targets(original: Tensor, corrupted: Tensor, pad_id: int) -> Tensor:
    """(B, S): the original token where the source was corrupted, pad (ignored) elsewhere."""
    return original.masked_fill(~corrupted, pad_id)


def restore_loss(logits: Tensor, targets: Tensor, pad_id: int) -> Tensor:
    """Summed cross-entropy of restore logits (B, S, V) against targets (B, S); pads
    ignored."""
    return F.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=pad_id, reduction="sum"
    )


def mean_pool(states: Tensor, lengths: Tensor) -> Tensor:
    """(B, S, D) states averaged over each row's first ``lengths[b]`` positions -> (B, D)."""
    real = padding_mask(lengths, states.shape[1]).to(states.dtype)  # (B, S)
    return (states * real[..., None]).sum(1) / lengths[:, None].to(states.dtype)


def view_contrastive_loss(queries: Tensor, keys: Tensor, temperature: float) -> Tensor:
    """Mean InfoNCE: row i of queries (B, D) against every row of keys (B, D), with key i
    the positive; scores are cosine similarities over ``temperature``. When every vector is
    the same, every score ties and the loss is log B."""
    scores = F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    labels = torch.arange(queries.shape[0], device=queries.device)
    return F.cross_entropy(scores / temperature, labels)


@dataclass(frozen=True)
class E2S2:
    """E2S2's encoder-side losses as an additive objective (``seqweave.objectives.registry``),
    from the token loss's teacher-forced pass over the corrupted source (a ``Batch`` from
    ``noisy_batch``), plus one more encoder pass over the clean source for the contrastive
    loss. A term whose weight is 0 is not computed at all, so with both at 0 training is
    the plain token loss, bit for bit."""

    settings: E2S2Config
    pad_id: int
    needs_states: ClassVar[bool] = True

    def terms(self, model: torch.nn.Module, micro, forward) -> dict[str, Tensor]:
        cfg, pad_id, memory = self.settings, self.pad_id, forward.memory
        terms = {}
        if cfg.denoise_weight > 0:
            targets = restore_targets(micro.original, micro.corrupted, pad_id)
            restore = restore_loss(restore_logits(model, memory.states), targets, pad_id)
            terms["e2s2_restore"] = cfg.denoise_weight * restore
        if cfg.contrastive_weight > 0:
            clean = model.encode(micro.original, micro.src_lengths)
            contrastive = view_contrastive_loss(
                mean_pool(memory.states, micro.src_lengths),
                mean_pool(clean.states, micro.src_lengths),
                cfg.temperature,
            )
            terms["e2s2_contrastive"] = cfg.contrastive_weight * contrastive * micro.num_tokens
        return terms
