"""The checks of an experiment that need two config sections, one function each.

Each section checks its own values when it is built (``seqweave.config``); an option that
only makes sense with another section's (an objective that needs a model feature, a
training mode that needs an architecture) is checked here, once the whole experiment is
known. ``ExperimentConfig`` runs every function of ``CROSS_SECTION_CHECKS`` in order; a
new cross-section rule is one more function in that tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from seqweave.errors import ConfigError

if TYPE_CHECKING:
    from seqweave.config import ExperimentConfig


def check_seqpe(cfg: ExperimentConfig) -> None:
    model, seqpe = cfg.model, cfg.objectives.seqpe
    if seqpe.on and model.position != "seqpe":
        raise ConfigError(
            "objectives.seqpe.contrastive_weight and objectives.seqpe.distill_weight "
            f"need model.position='seqpe', got {model.position!r}"
        )
    if model.position == "seqpe" and seqpe.max_position >= model.seqpe_limit:
        raise ConfigError(
            f"objectives.seqpe.max_position={seqpe.max_position} is past what "
            f"model.seqpe_digits={model.seqpe_digits} encode ({model.seqpe_limit - 1})"
        )


def check_e2s2(cfg: ExperimentConfig) -> None:
    model, objectives = cfg.model, cfg.objectives
    e2s2 = objectives.e2s2
    if e2s2.denoise_weight > 0 and not objectives.denoising.on:
        raise ConfigError(
            "objectives.e2s2.denoise_weight needs a corrupted source to restore: set "
            "objectives.denoising.mask_rate or objectives.denoising.replace_rate"
        )
    if e2s2.on and (model.architecture != "transformer" or model.action_head):
        raise ConfigError(
            "objectives.e2s2.denoise_weight and objectives.e2s2.contrastive_weight need a "
            "plain encoder-decoder (model.architecture='transformer', no "
            f"model.action_head), got {model.architecture!r}"
            + (" with an action head" if model.action_head else "")
        )


def check_claps(cfg: ExperimentConfig) -> None:
    if cfg.objectives.claps.on and not cfg.model.contrastive_dim:
        raise ConfigError(
            "objectives.claps.weight > 0 needs model.contrastive_dim > 0 (the projection "
            "head of the contrastive loss)"
        )


def check_set_matching(cfg: ExperimentConfig) -> None:
    """The set loss rolls out an encoder-decoder's own steps and replaces the
    teacher-forced pass that CLAPS and E2S2 read."""
    model, objectives = cfg.model, cfg.objectives
    section = objectives.set_matching
    if not section.on:
        return
    if model.architecture != "transformer" or model.action_head:
        raise ConfigError(
            "objectives.set_matching needs a plain encoder-decoder "
            f"(model.architecture='transformer', no model.action_head), got "
            f"{model.architecture!r}" + (" with an action head" if model.action_head else "")
        )
    if objectives.claps.on or objectives.e2s2.on:
        raise ConfigError(
            "objectives.set_matching has no teacher-forced pass for objectives.claps or "
            "objectives.e2s2 to read: turn them off"
        )
    if section.steps > model.max_positions:
        raise ConfigError(
            f"objectives.set_matching.steps={section.steps} is past "
            f"model.max_positions={model.max_positions}"
        )
    if section.empty_id >= model.vocab_size:
        raise ConfigError(
            f"objectives.set_matching.empty_id={section.empty_id} is not a token id "
            f"(0..{model.vocab_size - 1})"
        )


def check_packing(cfg: ExperimentConfig) -> None:
    """Packed rows share one prefix, which only the decoder-only model has."""
    model = cfg.model
    if cfg.data.pack_sequences and (
        model.architecture != "prefix_lm" or cfg.objectives.corrupts_source
    ):
        raise ConfigError(
            "data.pack_sequences packs targets after one shared prefix: it needs "
            "model.architecture='prefix_lm' and no source corruption, got "
            f"{model.architecture!r}"
        )


def check_stream(cfg: ExperimentConfig) -> None:
    """A streamed window is batched by padded tokens (``token_batches``); packed rows and
    sequence-parallel groups, which need every rank of a group on the same examples, read
    the corpus in memory."""
    if not cfg.data.stream:
        return
    if cfg.data.pack_sequences:
        raise ConfigError("data.stream reads the corpus in windows; data.pack_sequences does not")
    if cfg.train.sequence_parallel > 1:
        raise ConfigError(
            "data.stream gives every rank its own shards; train.sequence_parallel > 1 needs "
            "the ranks of a sequence group on the same examples"
        )


def check_sequence_parallel(cfg: ExperimentConfig) -> None:
    """The sharded pass (models/seqpar/model.py) is the plain encoder-decoder's
    teacher-forced pass with logits only; attention dropout would need one random
    stream across shards."""
    model, objectives, n = cfg.model, cfg.objectives, cfg.train.sequence_parallel
    if n <= 1:
        return
    name = f"train.sequence_parallel={n}"
    if model.architecture != "transformer" or model.action_head:
        raise ConfigError(f"{name} needs model.architecture='transformer', no action head")
    if model.attention_dropout > 0:
        raise ConfigError(f"{name} needs model.attention_dropout = 0")
    if objectives.claps.on or objectives.e2s2.on or objectives.set_matching.on:
        raise ConfigError(f"{name} trains with the token loss only (no claps, e2s2, sets)")
    if cfg.train.sequence_parallel_attention == "ulysses" and model.num_heads % n:
        raise ConfigError(f"{name} with ulysses needs model.num_heads a multiple of {n}")


def check_rearec(cfg: ExperimentConfig) -> None:
    """ERL ranks by the mean of the steps, PRL by the last; both need steps, and a
    ranker has no decoder states or source to corrupt for the other objectives."""
    model, objectives = cfg.model, cfg.objectives
    mode = objectives.rearec.mode
    if mode == "off" and model.architecture != "sasrec":
        return
    if model.architecture != "sasrec":
        raise ConfigError(
            f"objectives.rearec.mode={mode!r} needs model.architecture='sasrec', not "
            f"{model.architecture!r}"
        )
    if objectives.corrupts_source:
        raise ConfigError("model.architecture='sasrec' does not train on corrupted sources")
    readout = {"erl": "mean", "prl": "last"}.get(mode)
    if readout is None:
        return
    if model.reasoning_steps < 1 or model.reasoning_readout != readout:
        raise ConfigError(
            f"objectives.rearec.mode={mode!r} needs model.reasoning_steps >= 1 and "
            f"model.reasoning_readout={readout!r} (got {model.reasoning_steps}, "
            f"{model.reasoning_readout!r})"
        )


def check_rl(cfg: ExperimentConfig) -> None:
    """Reinforcement learning fine-tunes a model that decodes token by token: it samples
    with ``step``, its loss replaces the token loss and the additive objectives, and it
    runs in one process."""
    rl, model, objectives = cfg.rl, cfg.model, cfg.objectives
    if not rl.on:
        return
    name = f"rl.algorithm={rl.algorithm!r}"
    if not cfg.train.init_from:
        raise ConfigError(
            f"{name} needs train.init_from: the supervised model to start from, which is "
            "also the frozen reference of the KL penalty"
        )
    if model.architecture not in ("transformer", "prefix_lm", "seqboat"):
        raise ConfigError(
            f"{name} samples token by token, which model.architecture="
            f"{model.architecture!r} does not"
        )
    extra = [
        label
        for label, on in (
            ("objectives.claps", objectives.claps.on),
            ("objectives.e2s2", objectives.e2s2.on),
            ("objectives.denoising", objectives.denoising.on),
            ("objectives.set_matching", objectives.set_matching.on),
            ("objectives.seqpe", objectives.seqpe.on),
            ("data.pack_sequences", cfg.data.pack_sequences),
            ("data.stream", cfg.data.stream),
            ("train.fsdp", cfg.train.fsdp),
            ("train.sequence_parallel > 1", cfg.train.sequence_parallel > 1),
        )
        if on
    ]
    if extra:
        raise ConfigError(f"{name} trains on the reward alone, in one process: turn off {extra}")


def check_self_critical(cfg: ExperimentConfig) -> None:
    """Self-critical training decodes through ``step``, and its sequences are the targets;
    models that do not write token by token (or whose targets are sets) cannot take it."""
    model = cfg.model
    if not cfg.objectives.self_critical.on:
        return
    if model.architecture in ("nar_drafter", "nar_editor", "sasrec"):
        raise ConfigError(
            f"objectives.self_critical decodes token by token; model.architecture="
            f"{model.architecture!r} does not"
        )
    if cfg.objectives.set_matching.on or cfg.train.sequence_parallel > 1:
        raise ConfigError(
            "objectives.self_critical needs sequence targets on one process (no "
            "objectives.set_matching, train.sequence_parallel = 1)"
        )


def check_scalar_head(cfg: ExperimentConfig) -> None:
    """A scalar-head model trains on its regression loss alone (objectives/regression.py):
    every other loss, head or batch layout is refused by name rather than ignored."""
    model, objectives = cfg.model, cfg.objectives
    if not model.scalar_head:
        return
    others = {
        "model.action_head": model.action_head,
        "model.contrastive_dim": model.contrastive_dim > 0,
        "objectives.claps": objectives.claps.on,
        "objectives.e2s2": objectives.e2s2.on,
        "objectives.denoising": objectives.denoising.on,
        "objectives.set_matching": objectives.set_matching.on,
        "data.pack_sequences": cfg.data.pack_sequences,
        "train.sequence_parallel": cfg.train.sequence_parallel > 1,
    }
    clash = [name for name, on in others.items() if on]
    if clash:
        raise ConfigError(
            "model.scalar_head trains the regression head alone; it does not combine with "
            + ", ".join(clash)
        )


def check_objective(cfg: ExperimentConfig) -> None:
    """The pretraining and tagging objectives read the encoder-decoder's own parts."""
    objective, model = cfg.train.objective, cfg.model
    if objective == "seq2seq":
        return
    if model.architecture != "transformer" or model.action_head:
        raise ConfigError(
            f"train.objective={objective!r} needs a plain encoder-decoder "
            f"(model.architecture='transformer', no model.action_head), got "
            f"{model.architecture!r}"
        )
    if objective == "tag" and not model.tag_head:
        raise ConfigError("train.objective='tag' needs model.tag_head ('linear' or 'mlp')")
    if cfg.objectives.corrupts_source or cfg.objectives.set_matching.on:
        raise ConfigError(
            f"train.objective={objective!r} replaces the token loss: turn off "
            "objectives.denoising, objectives.e2s2 and objectives.set_matching"
        )


CROSS_SECTION_CHECKS: tuple[Callable[[ExperimentConfig], None], ...] = (
    check_seqpe,
    check_e2s2,
    check_claps,
    check_set_matching,
    check_packing,
    check_stream,
    check_sequence_parallel,
    check_rearec,
    check_rl,
    check_self_critical,
    check_scalar_head,
    check_objective,
)
