"""Objectives by composition: the token loss of the model's kind plus additive objectives.

Training one micro-batch is one teacher-forced pass through the model, scored by
the **token loss** of the model's kind (``TOKEN_LOSSES``: label-smoothed MLE,
the action-guided loss of an action head, the editor's token and length loss, a
recommender's next-item loss),
plus each **additive objective** the experiment turns on (``OBJECTIVES``: CLAPS,
E2S2, SeqPE, self-critical). An additive objective reads what the token loss's pass computed
(``Forward``: logits, and the encoder memory and decoder states when one of them
``needs_states``), so objectives combine without a second pass, and returns its
weighted terms by name, each summed over the micro-batch like the token loss.

Both tables are plain dicts of builders (``ExperimentConfig`` -> the loss, or
None when off); nothing registers itself. A new paper's objective is a module
with a ``terms`` method, a config section and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.config import ExperimentConfig, ModelConfig, ReaRecConfig, SetMatchingConfig
from seqweave.errors import ConfigError
from seqweave.models.state import Memory
from seqweave.objectives.actions import action_guided_loss
from seqweave.objectives.claps import Claps
from seqweave.objectives.e2s2 import E2S2
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.objectives.pretraining import build_objective
from seqweave.objectives.rearec import next_item_loss
from seqweave.objectives.regression import Regression
from seqweave.objectives.self_critical import SelfCritical
from seqweave.objectives.seqpe import SeqPE
from seqweave.objectives.set_matching import set_loss
from seqweave.objectives.spinning import Spinning


@dataclass
class Forward:
    """What the token loss's teacher-forced pass gave: logits (B, T, V) and, when asked
    for states, the encoder memory and the final decoder states (B, T, D)."""

    logits: Tensor
    memory: Memory | None = None
    hidden: Tensor | None = None


class TokenLoss(Protocol):
    def __call__(
        self, model: torch.nn.Module, wrapped: torch.nn.Module, micro, states: bool
    ) -> tuple[Tensor, Forward]:
        """The summed token loss of one micro-batch, through ``wrapped`` (so that
        data-parallel gradients synchronise), and the pass it came from; ``states``: the
        pass must keep the encoder memory and decoder states for additive objectives."""
        ...


class Objective(Protocol):
    needs_states: bool  # reads Forward.memory and Forward.hidden

    def terms(self, model: torch.nn.Module, micro, forward: Forward) -> dict[str, Tensor]:
        """Weighted loss terms by name, each summed over the micro-batch (a mean per
        sentence is scaled by the micro-batch's target tokens); ``model`` is the bare
        model."""
        ...


@dataclass(frozen=True)
class MLE:
    """Label-smoothed maximum likelihood of the model's logits."""

    pad_id: int
    smoothing: float

    def __call__(self, model, wrapped, micro, states: bool) -> tuple[Tensor, Forward]:
        if states:
            memory, hidden = wrapped(micro.src, micro.src_lengths, micro.tgt_in, states=True)
            forward = Forward(model.logits(hidden), memory, hidden)
        else:
            segments = getattr(micro, "segments", None)
            packed = {} if segments is None else {"segments": segments}
            forward = Forward(wrapped(micro.src, micro.src_lengths, micro.tgt_in, **packed))
        loss, _ = label_smoothed_nll(forward.logits, micro.tgt_out, self.pad_id, self.smoothing)
        return loss, forward


@dataclass(frozen=True)
class ActionGuided:
    """The sequence-to-action loss (objectives/actions.py): the fused distribution's
    token loss plus the weighted action cross-entropy."""

    pad_id: int
    skip_id: int
    smoothing: float
    action_weight: float

    def __call__(self, model, wrapped, micro, states: bool) -> tuple[Tensor, Forward]:
        _no_states(states, "an action head")
        outputs = wrapped(micro.src, micro.src_lengths, micro.tgt_in, actions=True)
        loss, _ = action_guided_loss(
            outputs, micro.tgt_out, self.pad_id, self.skip_id, self.smoothing, self.action_weight
        )
        return loss, Forward(outputs.log_probs)


@dataclass(frozen=True)
class EditorLoss:
    """The nar_editor's token loss plus its weighted output-length cross-entropy."""

    pad_id: int
    smoothing: float
    length_weight: float

    def __call__(self, model, wrapped, micro, states: bool) -> tuple[Tensor, Forward]:
        _no_states(states, "a nar_editor")
        logits, length_logits = wrapped(
            micro.src, micro.src_lengths, micro.tgt_in, with_length=True
        )
        lengths = (micro.tgt_out != self.pad_id).sum(1)
        length_loss = F.cross_entropy(length_logits.float(), lengths, reduction="sum")
        loss, _ = label_smoothed_nll(logits, micro.tgt_out, self.pad_id, self.smoothing)
        return loss + self.length_weight * length_loss, Forward(logits)


@dataclass(frozen=True)
class SetMatching:
    """OTSeq2Set's set loss (objectives/set_matching.py) in place of MLE: the target's
    labels are a set, matched to the student-forced steps, with the OT term in mode "ot".
    A mean over the micro-batch, scaled by its target tokens like the other losses."""

    settings: SetMatchingConfig
    pad_id: int
    eos_id: int

    def __call__(self, model, wrapped, micro, states: bool) -> tuple[Tensor, Forward]:
        _no_states(states, "objectives.set_matching")
        ids = (self.pad_id, self.eos_id)
        loss, logits = set_loss(
            model, wrapped, micro.src, micro.src_lengths, micro.tgt_out, self.settings, ids
        )
        return loss * micro.num_tokens, Forward(logits)


@dataclass(frozen=True)
class NextItem:
    """The token loss of ``sasrec`` models (objectives/rearec.py): the example's next item
    (its target's first token) from the step states, with ReaRec's ERL or PRL terms; a
    mean over the micro-batch, scaled by its target tokens like the other losses."""

    settings: ReaRecConfig

    def __call__(self, model, wrapped, micro, states: bool) -> tuple[Tensor, Forward]:
        _no_states(states, "model.architecture='sasrec'")
        settings = self.settings
        views = 2 if settings.mode == "prl" and settings.contrastive_weight > 0 else 0
        steps, noisy = wrapped(
            micro.src, micro.src_lengths, views=views, noise_std=settings.noise_std
        )
        scored = model.readout(steps)[:, None] if settings.mode == "off" else steps
        weight = model.output_tokens.weight
        loss = next_item_loss(weight, scored, noisy, micro.tgt_out[:, 0], settings)
        return loss * micro.num_tokens, Forward(steps)  # states: no additive objective reads it


def _no_states(states: bool, kind: str) -> None:
    if states:  # the config refuses these combinations; this guards direct use
        raise ConfigError(f"the objectives that read decoder states do not work with {kind}")


def _mle(cfg: ExperimentConfig) -> TokenLoss:
    return MLE(cfg.model.pad_id, cfg.train.label_smoothing)


def _action_guided(cfg: ExperimentConfig) -> TokenLoss:
    model, weight = cfg.model, cfg.objectives.actions.weight
    return ActionGuided(model.pad_id, model.skip_id, cfg.train.label_smoothing, weight)


def _set_matching(cfg: ExperimentConfig) -> TokenLoss:
    return SetMatching(cfg.objectives.set_matching, cfg.model.pad_id, cfg.model.eos_id)


def _editor(cfg: ExperimentConfig) -> TokenLoss:
    weight = cfg.objectives.length.weight
    return EditorLoss(cfg.model.pad_id, cfg.train.label_smoothing, weight)


def _next_item(cfg: ExperimentConfig) -> TokenLoss:
    return NextItem(cfg.objectives.rearec)


# the model's kind (``token_loss_kind``) -> its token loss
TOKEN_LOSSES: dict[str, Callable[[ExperimentConfig], TokenLoss]] = {
    "transformer": _mle,
    "prefix_lm": _mle,
    "seqboat": _mle,
    "nar_drafter": _mle,  # its forward already aligns the slots' logits with the target
    "nar_editor": _editor,
    "action_head": _action_guided,
    "set_matching": _set_matching,  # objectives.set_matching on: the target is a label set
    "sasrec": _next_item,  # the next item from the step states, ReaRec's terms included
    "hier_nse": _mle,  # its forward returns pointer-generator log-probabilities
    "scalar_head": lambda cfg: Regression(),  # MSE of the regression head at each <mask>
    # train.objective other than seq2seq (objectives/pretraining.py)
    "mlm": build_objective,  # masked source tokens from the encoder states
    "lm": build_objective,  # the target alone, next token
    "tag": build_objective,  # one label per source token from model.tag_head
}

# additive objectives, in the order their terms are added: None when the config leaves
# one off
OBJECTIVES: dict[str, Callable[[ExperimentConfig], Objective | None]] = {
    "claps": lambda cfg: (
        Claps(cfg.objectives.claps, cfg.model.pad_id) if cfg.objectives.claps.on else None
    ),
    "e2s2": lambda cfg: (
        E2S2(cfg.objectives.e2s2, cfg.model.pad_id) if cfg.objectives.e2s2.on else None
    ),
    "seqpe": lambda cfg: SeqPE(cfg.objectives.seqpe) if cfg.objectives.seqpe.on else None,
    "self_critical": lambda cfg: (
        SelfCritical.from_config(cfg) if cfg.objectives.self_critical.on else None
    ),
    "spinning": lambda cfg: Spinning.from_config(cfg) if cfg.objectives.spinning.on else None,
}


def token_loss_kind(model: ModelConfig) -> str:
    """The key of ``TOKEN_LOSSES`` for a model: its head when it has an action or a scalar
    head, else its architecture."""
    if model.scalar_head:
        return "scalar_head"
    return "action_head" if model.action_head else model.architecture


@dataclass(frozen=True)
class TrainingLoss:
    """The summed training loss of one micro-batch: the token loss, then each additive
    objective's terms added one by one in order."""

    token: TokenLoss
    additive: tuple[Objective, ...]

    def __call__(self, model: torch.nn.Module, wrapped: torch.nn.Module, micro) -> Tensor:
        states = any(objective.needs_states for objective in self.additive)
        loss, forward = self.token(model, wrapped, micro, states)
        for objective in self.additive:
            for term in objective.terms(model, micro, forward).values():
                loss = loss + term
        return loss


def experiment_token_loss_kind(cfg: ExperimentConfig) -> str:
    """The key of ``TOKEN_LOSSES`` for an experiment: ``train.objective`` when it is not
    seq2seq, ``set_matching`` when that section is on (its target is a set, not a
    sequence), else the model's kind."""
    if cfg.train.objective != "seq2seq":
        return cfg.train.objective
    return "set_matching" if cfg.objectives.set_matching.on else token_loss_kind(cfg.model)


def build_training_loss(cfg: ExperimentConfig) -> TrainingLoss:
    """The training loss an experiment asks for."""
    token = TOKEN_LOSSES[experiment_token_loss_kind(cfg)](cfg)
    built = (build(cfg) for build in OBJECTIVES.values())
    return TrainingLoss(token, tuple(o for o in built if o is not None))
