"""The objectives registry: the token loss follows the model's kind, additive objectives are
chosen by the config, and composed objectives share one pass and add up."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqweave.config import (
    ClapsConfig,
    DenoisingConfig,
    E2S2Config,
    ExperimentConfig,
    ModelConfig,
    ObjectivesConfig,
    SeqPEConfig,
)
from seqweave.errors import ConfigError
from seqweave.objectives.e2s2 import NoiseVocabulary, noisy_batch
from seqweave.objectives.registry import (
    MLE,
    OBJECTIVES,
    TOKEN_LOSSES,
    ActionGuided,
    EditorLoss,
    build_training_loss,
    token_loss_kind,
)
from seqweave.objectives.settings import SelfCriticalConfig
from seqweave.train.data import collate
from tests.conftest import VOCAB, random_sources, tiny_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NOISE = DenoisingConfig(mask_rate=0.2, replace_rate=0.1)


@pytest.mark.parametrize(
    ("model", "kind", "loss_type"),
    [
        (ModelConfig(), "transformer", MLE),
        (ModelConfig(architecture="prefix_lm"), "prefix_lm", MLE),
        (ModelConfig(architecture="nar_drafter"), "nar_drafter", MLE),
        (ModelConfig(architecture="nar_editor"), "nar_editor", EditorLoss),
        (ModelConfig(action_head=True), "action_head", ActionGuided),
    ],
)
def test_the_token_loss_follows_the_models_kind(model, kind, loss_type):
    assert token_loss_kind(model) == kind
    built = build_training_loss(ExperimentConfig(model=model))
    assert type(built.token) is loss_type and built.additive == ()


def test_every_architecture_has_a_token_loss():
    from seqweave.models import MODELS

    assert set(MODELS) <= set(TOKEN_LOSSES)


def test_additive_objectives_are_built_only_when_on():
    objectives = ObjectivesConfig(
        claps=ClapsConfig(weight=0.5),
        e2s2=E2S2Config(contrastive_weight=0.1),
        seqpe=SeqPEConfig(distill_weight=0.1),
        self_critical=SelfCriticalConfig(weight=0.5),
    )
    model = tiny_config(contrastive_dim=8, position="seqpe")
    built = build_training_loss(ExperimentConfig(model=model, objectives=objectives))
    names = [type(o).__name__ for o in built.additive]
    assert names == ["Claps", "E2S2", "SeqPE", "SelfCritical"]
    assert list(OBJECTIVES) == [
        "claps",
        "e2s2",
        "seqpe",
        "self_critical",
        "spinning",
    ]  # order of terms
    assert build_training_loss(ExperimentConfig(model=model)).additive == ()


def test_a_token_loss_without_states_refuses_an_objective_that_needs_them():
    editor = build_training_loss(ExperimentConfig(model=ModelConfig(architecture="nar_editor")))
    with pytest.raises(ConfigError, match="nar_editor"):
        editor.token(None, None, None, states=True)


def micro_batch(seed: int = 0):
    sources = random_sources(torch.Generator().manual_seed(seed), 6)
    targets = [s[:-1][::-1] for s in sources]
    vocabulary = NoiseVocabulary(3, frozenset({0, 1, 2}), VOCAB)
    return noisy_batch(collate(sources, targets, tiny_config()), NOISE, vocabulary, seed)


def experiment(model, **objectives) -> ExperimentConfig:
    values = ObjectivesConfig(denoising=NOISE, **objectives)
    return ExperimentConfig(model=model.config, objectives=values)


def test_claps_and_e2s2_compose_in_one_pass_and_add_up():
    """Each objective adds the same amount alone as beside the other (dropout off, so a
    pass is deterministic); the composed loss is one forward pass plus their terms."""
    model = tiny_model(seed=2, contrastive_dim=8, restore_head=True).eval()
    micro = micro_batch(2)
    claps = ClapsConfig(weight=0.5)
    e2s2 = E2S2Config(denoise_weight=0.7, contrastive_weight=0.3)

    def loss(**objectives):
        return build_training_loss(experiment(model, **objectives))(model, model, micro)

    plain = loss()
    both = loss(claps=claps, e2s2=e2s2)
    alone = (loss(claps=claps) - plain) + (loss(e2s2=e2s2) - plain)
    torch.testing.assert_close(both - plain, alone)
    assert float((both - plain).detach()) > 0
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    loss(claps=claps, e2s2=e2s2)
    handle.remove()
    assert len(calls) == 1  # one teacher-forced pass for the token loss and both objectives


def test_composed_zero_weight_objectives_are_plain_mle_to_the_bit():
    """An objective at weight 0 is never built, and the states pass that CLAPS and E2S2 use
    gives the same loss and gradients as the plain pass, dropout included."""
    micro = micro_batch(4)
    model = tiny_model(seed=4, contrastive_dim=8, dropout=0.1).train()
    token = build_training_loss(experiment(model)).token
    results = []
    for states in (False, True):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(5)
        loss, _ = token(model, model, micro, states)
        loss.backward()
        results.append(
            (loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
        )
    (plain, plain_grads), (states_loss, states_grads) = results
    assert torch.equal(plain, states_loss)
    for a, b in zip(plain_grads, states_grads, strict=True):
        assert torch.equal(a, b)
    off = dataclasses.replace(ClapsConfig(), weight=0.0)
    assert build_training_loss(experiment(model, claps=off)).additive == ()
