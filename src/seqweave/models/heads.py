"""Heads composed onto the encoder-decoder: one builder table, named optional submodules.

A head reads the model's states for one paper's purpose. ``HEADS`` maps each
head's attribute name to a builder that returns the module, or None when the
config leaves it off; the model builds them in this order, after its own
layers, so that a model with a head starts from the same weights as one
without, and keeps the attribute names as the parameter names of saved
checkpoints (``action_head.*``, ``contrastive_head.*``, ``restore_head.*``).

Two kinds of use:

- the **readout** turns final decoder states into what ``step`` and ``forward``
  return. By default it is the output layer (``TokenReadout``); the action head
  of the sequence-to-action model is a readout too (``models/seq2action.py``), so
  every decoder runs on its fused distribution unchanged;
- **training heads** are read only by objectives and never touch decoding:
  CLAPS's projection of pooled states (``contrastive_head``, objectives/claps.py)
  and E2S2's restore head (``restore_head``, ``models.e2s2.restore_logits``);
- the **scalar head** (``scalar_head``, ``models/scalars.py``) adds the values of
  ``<scalar>`` tokens to the encoder's input and answers with numbers at ``<mask>``.
- the **tagging head** (``tag_head``) labels every source token from the encoder
  states in one pass, no decoder: trained by ``train.objective = "tag"``
  (objectives/pretraining.py), read by ``Seq2Seq.tag``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.e2s2 import RestoreHead
from seqweave.models.scalars import ScalarHead
from seqweave.models.seq2action import ActionHead
from seqweave.models.state import DecoderState, Memory, StepPlan


class Readout(Protocol):
    """What turns the decoder's final states into the scores of ``step`` and ``forward``."""

    def start(self, state: DecoderState, memory: Memory) -> None:
        """Keep what ``step`` needs beside the cache in the fresh ``state``."""
        ...

    def step(
        self, model, state: DecoderState, plan: StepPlan, before: Tensor, tokens: Tensor, x: Tensor
    ) -> Tensor:
        """Scores (B, K, V) of one step: ``x`` the last decoder layer's output, packed as
        ``plan`` says, for ``tokens`` (B, K) fed after ``before`` (B,) decoded tokens.
        A readout may also have ``step_argmax`` (same arguments): the argmax (B, K) of
        those scores alone, cheaper; without it ``EncoderDecoder.step_argmax`` takes the
        argmax of ``step``."""
        ...

    def teacher_forced(self, model, memory: Memory, hidden: Tensor, tgt_in: Tensor, full: bool):
        """What ``forward`` returns for final decoder states ``hidden`` (B, T, D) of decoder
        inputs ``tgt_in`` (B, T); ``full``: the readout's whole output, not just scores."""
        ...


class TokenReadout:
    """The plain readout: the model's output layer, logits over the vocabulary."""

    def start(self, state: DecoderState, memory: Memory) -> None:
        pass

    def step(self, model, state, plan, before, tokens, x) -> Tensor:
        return plan.dense(model.logits(model.final_states(x)), clear=False)

    def step_argmax(self, model, state, plan, before, tokens, x) -> Tensor:
        """The argmax (B, K) of ``step``'s logits, through the output layer's screen; 0 at
        padding positions (where ``step``'s unspecified logits still give a valid id, an
        unspecified id would not be one)."""
        return plan.dense(model.logits_argmax(model.final_states(x)))

    def teacher_forced(self, model, memory, hidden, tgt_in, full: bool) -> Tensor:
        return model.logits(hidden)


TOKEN_READOUT = TokenReadout()


def _contrastive_head(cfg: ModelConfig) -> nn.Module | None:
    """CLAPS's projection (affine + ReLU to model.contrastive_dim) of pooled states."""
    if not cfg.contrastive_dim:
        return None
    return nn.Sequential(nn.Linear(cfg.d_model, cfg.contrastive_dim), nn.ReLU())


def _tag_head(cfg: ModelConfig) -> nn.Module | None:
    """Scores over the vocabulary (the labels are ordinary tokens) per encoder state: a
    linear layer, or an MLP with one hidden layer of d_model."""
    if not cfg.tag_head:
        return None
    if cfg.tag_head == "linear":
        return nn.Linear(cfg.d_model, cfg.vocab_size)
    hidden = nn.Linear(cfg.d_model, cfg.d_model)
    return nn.Sequential(hidden, nn.GELU(), nn.Linear(cfg.d_model, cfg.vocab_size))


# attribute name -> builder; built in this order, after the model's own layers
HEADS: dict[str, Callable[[ModelConfig], nn.Module | None]] = {
    "action_head": lambda cfg: ActionHead(cfg) if cfg.action_head else None,
    "contrastive_head": _contrastive_head,
    "restore_head": lambda cfg: RestoreHead(cfg) if cfg.restore_head else None,
    "scalar_head": lambda cfg: ScalarHead(cfg) if cfg.scalar_head else None,
    "tag_head": _tag_head,
}


def attach_heads(model: nn.Module, cfg: ModelConfig) -> None:
    """Build every head of ``HEADS`` onto ``model`` (None for those the config leaves off)."""
    for name, build in HEADS.items():
        setattr(model, name, build(cfg))
