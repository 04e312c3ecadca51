"""Pretraining and tagging objectives: ``train.objective`` = mlm | lm | tag.

Each replaces the seq2seq token loss (objectives/registry.py) with a loss over one side of
the pair, so the trainer, its batches, checkpoints and ``train.init_from`` stay the
ordinary ones:

- ``mlm`` (BERT, Devlin et al. 2019): 15% of the source's text tokens are chosen; of those
  80% become ``<mask>``, 10% a random ordinary token and 10% stay; the encoder's states,
  through the output layer (``model.restore_logits``, tied to the embeddings), must give
  the original token at the chosen positions only. Masking happens when the batch is
  collated (``masked_batch``), seeded like E2S2's corruption, so ``Batch.original`` holds the
  clean source and ``Batch.corrupted`` the *chosen* positions (kept ones included: they are
  predicted too, which is why they are chosen and not merely left alone).
- ``lm``: next-token prediction of the target with the source replaced by an empty one
  (its ``[eos]`` only): the decoder learns the sequences themselves.
- ``tag``: one label per source text token from ``model.tag_head`` over the encoder states
  (the target holds the labels, one token per source token); no decoder is run, so labelling
  a protein costs one encoder pass whatever its length.

Every loss is a mean over what it scores, scaled by the micro-batch's target tokens like
OTSeq2Set's, so the loop's normalisation turns it back into that mean. ``measure`` gives the
sums validation and the recipes report (loss, right predictions, predictions).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.errors import ConfigError, DataError
from seqweave.objectives.e2s2 import NoiseVocabulary

MASK_SHARE = 0.15  # of the text tokens, chosen for prediction
MASK_SPLIT = (0.8, 0.1)  # of the chosen: <mask>, a random ordinary token; the rest stay


@dataclass(frozen=True)
class Measured:
    """Summed loss, right predictions and predictions scored."""

    loss: Tensor
    correct: int
    count: int


def bert_mask(
    src: Tensor, vocab: NoiseVocabulary, generator: torch.Generator, share: float = MASK_SHARE
) -> tuple[Tensor, Tensor]:
    """BERT's corruption of padded sources (B, S) (CPU): returns the corrupted ids (B, S) and
    the chosen positions (B, S) bool. Pad, framing and other special tokens are never
    chosen."""
    special = torch.tensor(sorted(vocab.special_ids | {vocab.mask_id}), dtype=torch.long)
    text = ~torch.isin(src, special)  # (B, S)
    chosen = text & (torch.rand(src.shape, generator=generator) < share)
    kind = torch.rand(src.shape, generator=generator)  # (B, S)
    ordinary = vocab.ordinary_ids()
    pick = torch.randint(len(ordinary), src.shape, generator=generator)  # (B, S)
    to_mask = chosen & (kind < MASK_SPLIT[0])
    to_random = chosen & (kind >= MASK_SPLIT[0]) & (kind < MASK_SPLIT[0] + MASK_SPLIT[1])
    noisy = src.clone()
    noisy[to_mask] = vocab.mask_id
    noisy[to_random] = ordinary[pick[to_random]]
    return noisy, chosen


def masked_batch(batch, vocab: NoiseVocabulary, seed: int):
    """``batch`` with its source BERT-masked: ``src`` corrupted, ``original`` the clean source,
    ``corrupted`` the positions chosen for prediction."""
    generator = torch.Generator().manual_seed(seed)
    noisy, chosen = bert_mask(batch.src, vocab, generator)
    return dataclasses.replace(batch, src=noisy, original=batch.src, corrupted=chosen)


def _scored(logits: Tensor, labels: Tensor, keep: Tensor) -> Measured:
    """Cross-entropy and argmax hits of ``logits`` (B, S, V) against ``labels`` (B, S) where
    ``keep`` (B, S) is True."""
    picked_logits, picked = logits[keep].float(), labels[keep]  # (N, V), (N,)
    loss = F.cross_entropy(picked_logits, picked, reduction="sum")
    correct = int((picked_logits.argmax(-1) == picked).sum())
    return Measured(loss, correct, int(picked.numel()))


def _mean_scaled(measured: Measured, micro) -> Tensor:
    return measured.loss / max(measured.count, 1) * micro.num_tokens


def _no_states(states: bool, objective: str) -> None:
    if states:  # config_checks.check_objective refuses these combinations
        raise ConfigError(f"train.objective={objective!r} takes no additive objective")


@dataclass(frozen=True)
class MaskedLM:
    """The masked-token loss of the encoder (``mlm``); the batch comes masked
    (``masked_batch``)."""

    def measure(self, model, micro) -> Measured:
        if micro.original is None or micro.corrupted is None:
            raise ConfigError("train.objective='mlm': the batch was not masked (masked_batch)")
        memory = model.encode(micro.src, micro.src_lengths)
        return _scored(model.restore_logits(memory.states), micro.original, micro.corrupted)

    def __call__(self, model, wrapped, micro, states: bool):
        _no_states(states, "mlm")
        return _mean_scaled(self.measure(model, micro), micro), None


@dataclass(frozen=True)
class TargetLM:
    """Next-token loss of the target alone (``lm``): the source becomes ``[eos]``.
    ``measure`` scores the target's tokens without the final ``[eos]`` (per residue)."""

    pad_id: int
    eos_id: int

    def _logits(self, model, micro) -> Tensor:
        B = micro.src.shape[0]
        empty = torch.full((B, 1), self.eos_id, dtype=torch.long, device=micro.src.device)
        ones = torch.ones(B, dtype=torch.long, device=micro.src.device)
        return model(empty, ones, micro.tgt_in)  # (B, T, V)

    def measure(self, model, micro) -> Measured:
        keep = (micro.tgt_out != self.pad_id) & (micro.tgt_out != self.eos_id)
        return _scored(self._logits(model, micro), micro.tgt_out, keep)

    def __call__(self, model, wrapped, micro, states: bool):
        _no_states(states, "lm")
        keep = micro.tgt_out != self.pad_id
        return _mean_scaled(_scored(self._logits(model, micro), micro.tgt_out, keep), micro), None


def tag_labels(micro, source_offset: int, pad_id: int) -> Tensor:
    """The target's labels placed at their source tokens' positions (B, S), pad elsewhere.

    Raises:
        DataError: a row whose target does not hold one label per source text token.
    """
    labels = torch.full_like(micro.src, pad_id)
    label_counts = (micro.tgt_out != pad_id).sum(1) - 1  # the target without its [eos]
    text_counts = micro.src_lengths - source_offset - 1  # the source without its framing
    for row in range(micro.src.shape[0]):
        n = int(label_counts[row])
        if n != int(text_counts[row]):
            raise DataError(
                f"train.objective='tag': a row has {n} labels for {int(text_counts[row])} "
                "source tokens; the target needs one label token per source token"
            )
        labels[row, source_offset : source_offset + n] = micro.tgt_out[row, :n]
    return labels


@dataclass(frozen=True)
class Tagging:
    """Per-source-token cross-entropy of ``model.tag_head`` over the encoder states (``tag``)."""

    pad_id: int
    source_offset: int  # 1 when sources start with [bos]

    def measure(self, model, micro) -> Measured:
        labels = tag_labels(micro, self.source_offset, self.pad_id)
        memory = model.encode(micro.src, micro.src_lengths)
        return _scored(model.tag_head(memory.states), labels, labels != self.pad_id)

    def __call__(self, model, wrapped, micro, states: bool):
        _no_states(states, "tag")
        return _mean_scaled(self.measure(model, micro), micro), None


def tag_predictions(
    model, src: Tensor, src_lengths: Tensor, allowed: Tensor | None = None
) -> Tensor:
    """The tagging head's label ids (B, S) for framed sources (B, S); ``allowed`` (V,) bool
    restricts the argmax to those ids (the task's labels)."""
    logits = model.tag_head(model.encode(src, src_lengths).states)  # (B, S, V)
    if allowed is not None:
        logits = logits.masked_fill(~allowed.to(logits.device), float("-inf"))
    return logits.argmax(-1)


def build_objective(cfg):
    """The token loss ``train.objective`` names (not seq2seq)."""
    model = cfg.model
    if cfg.train.objective == "mlm":
        return MaskedLM()
    if cfg.train.objective == "lm":
        return TargetLM(model.pad_id, model.eos_id)
    return Tagging(model.pad_id, 1 if model.source_bos else 0)
