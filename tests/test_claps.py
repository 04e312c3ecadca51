"""CLAPS (objectives/claps.py): the perturbations do what they claim, the contrastive loss is
InfoNCE, weight 0 is plain MLE to the bit, and the head never touches decoding."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from seqweave.checkpoint import load_weights, save_model_dir
from seqweave.config import (
    ClapsConfig,
    DecodeConfig,
    ExperimentConfig,
    ModelConfig,
    ObjectivesConfig,
)
from seqweave.decoding import decode_many
from seqweave.errors import ConfigError
from seqweave.objectives.claps import (
    claps_loss,
    contrastive_loss,
    distant_target,
    imposter,
    pool,
    sequence_kl,
    sequence_nll,
)
from seqweave.tokenizers import alphabet_tokenizer
from seqweave.train.data import collate
from seqweave.train.loop import Trainer
from tests.conftest import random_sources, tiny_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PAD = 0


def batch(seed: int, count: int = 6):
    generator = torch.Generator().manual_seed(seed)
    sources = random_sources(generator, count)
    targets = [s[:-1][::-1] for s in random_sources(generator, count)]
    return collate(sources, targets, tiny_config())


def states(model, micro):
    memory, hidden = model.hidden_states(micro.src, micro.src_lengths, micro.tgt_in)
    return memory, hidden


@pytest.mark.parametrize("seed", range(4))
def test_imposter_raises_every_sentences_nll(seed):
    model = tiny_model(seed)
    micro = batch(seed)
    _, hidden = states(model, micro)
    fake = imposter(model, hidden, micro.tgt_out, PAD, eps=0.5)
    with torch.no_grad():
        before = sequence_nll(model, hidden, micro.tgt_out, PAD)
        after = sequence_nll(model, fake, micro.tgt_out, PAD)
    assert bool((after > before).all()), (before, after)
    # the step has length eps per sentence and leaves pad positions alone
    step = (fake - hidden).detach()
    real = micro.tgt_out != PAD
    assert torch.allclose(step.flatten(1).norm(dim=1), torch.full((len(step),), 0.5))
    assert bool((step[~real] == 0).all())


@pytest.mark.parametrize(("seed", "bound"), [(0, 0.02), (1, 0.05), (2, 1e-4), (3, 0.5)])
def test_distant_target_stays_within_the_kl_bound(seed, bound):
    model = tiny_model(seed, contrastive_dim=8)
    micro = batch(seed)
    memory, hidden = states(model, micro)
    real = micro.tgt_out != PAD
    z_x = model.contrastive_head(pool(memory.states, memory.mask))
    far = distant_target(model, hidden, z_x, real, eta=4.0, kl_bound=bound, temperature=0.1)
    with torch.no_grad():
        reference = torch.log_softmax(model.logits(hidden), dim=-1)
        kl = sequence_kl(model, reference, far, real)
    assert bool((kl <= bound).all()), kl
    moved = (far - hidden).detach().flatten(1).norm(dim=1)
    if bound >= 0.05:  # a loose bound leaves the sentences somewhere else
        assert bool((moved > 0).all()), moved


def test_distant_target_moves_away_from_the_source_before_it_is_restored():
    """With no correction needed (an unreachable bound), the perturbation lowers every
    sentence's similarity to its own source."""
    model = tiny_model(0, contrastive_dim=8)
    micro = batch(0)
    memory, hidden = states(model, micro)
    real = micro.tgt_out != PAD
    head = model.contrastive_head
    z_x = head(pool(memory.states, memory.mask))
    far = distant_target(model, hidden, z_x, real, eta=0.05, kl_bound=1e9, temperature=0.1)
    # at eta this small the KL step barely matters; compare cosine to the own source
    with torch.no_grad():
        near = torch.cosine_similarity(z_x, head(pool(hidden, real)), dim=-1)
        away = torch.cosine_similarity(z_x, head(pool(far, real)), dim=-1)
    assert float((far - hidden).detach().norm()) > 0
    assert float(away.mean()) < float(near.mean())


def test_contrastive_loss_is_infonce_on_constructed_vectors():
    e = torch.eye(3)
    z_x = e.clone()
    targets = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 2.0]])
    imposters = torch.tensor([[1.0, 1.0, 0], [0, 1.0, 0], [0, 1.0, 1.0]])
    tau = 0.5
    r = 1 / math.sqrt(2)

    def expected(scores_by_row):
        return sum(
            -math.log(math.exp(row[i] / tau) / sum(math.exp(s / tau) for s in row))
            for i, row in enumerate(scores_by_row)
        ) / len(scores_by_row)

    # cosines: z_x rows against the targets (own target on the diagonal), then the imposters
    plain = [[1, r, 0, r, 0, 0], [0, r, 0, r, 1, r], [0, 0, 1, 0, 0, r]]
    got = contrastive_loss(z_x, targets, targets, imposters, tau)
    assert math.isclose(float(got), expected(plain), rel_tol=1e-6)
    # a different positive replaces the diagonal only
    positive = torch.tensor([[0, 1.0, 0], [0, 1.0, 0], [1.0, 0, 1.0]])
    swapped = [[0, r, 0, r, 0, 0], [0, 1, 0, r, 1, r], [0, 0, r, 0, 0, r]]
    got = contrastive_loss(z_x, positive, targets, imposters, tau)
    assert math.isclose(float(got), expected(swapped), rel_tol=1e-6)
    # without imposters: the plain in-batch loss
    got = contrastive_loss(z_x, targets, targets, None, tau)
    assert math.isclose(float(got), expected([row[:3] for row in plain]), rel_tol=1e-6)


def make_trainer(model, **claps):
    objectives = ObjectivesConfig(claps=ClapsConfig(**claps))
    config = ExperimentConfig(model=model.config, objectives=objectives)
    return Trainer(config, model, model, None, None, None, None, None, None, "cpu", None, None)


def loss_and_grads(model, micro, **claps):
    model.zero_grad(set_to_none=True)
    loss = make_trainer(model, **claps)._loss(micro)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_weight_zero_is_plain_mle_to_the_bit():
    micro = batch(3)
    plain = tiny_model(3).train()
    headed = tiny_model(3, contrastive_dim=8).train()
    base_loss, base_grads = loss_and_grads(plain, micro)
    loss, grads = loss_and_grads(headed, micro, weight=0.0)
    assert torch.equal(loss, base_loss)
    assert grads.keys() == base_grads.keys()  # the head gets no gradient
    for name, grad in grads.items():
        assert torch.equal(grad, base_grads[name]), name


def test_claps_adds_to_mle_and_reaches_head_and_encoder():
    micro = batch(4)
    model = tiny_model(4, contrastive_dim=8).train()
    base_loss, base_grads = loss_and_grads(model, micro, weight=0.0)
    loss, grads = loss_and_grads(model, micro, weight=0.5)
    memory, hidden = states(model, micro)
    logits = model.logits(hidden)
    extra = claps_loss(model, memory, hidden, logits, micro.tgt_out, PAD, ClapsConfig())
    assert torch.allclose(loss, base_loss + 0.5 * extra.detach() * micro.num_tokens)
    assert float(extra.detach()) > 0
    assert float(grads["contrastive_head.0.weight"].abs().sum()) > 0
    encoder = [n for n in grads if n.startswith("encoder_layers.")]
    assert encoder and any(not torch.allclose(grads[n], base_grads[n]) for n in encoder)


def test_head_round_trips_and_never_changes_decoding(tmp_path):
    headed = tiny_model(5, contrastive_dim=8)
    plain = tiny_model(5)
    sources = random_sources(torch.Generator().manual_seed(5), 5)
    cfg = DecodeConfig(max_new_tokens=12)
    tokens = [g.tokens for g in decode_many(headed, sources, cfg)]
    assert tokens == [g.tokens for g in decode_many(plain, sources, cfg)]
    save_model_dir(tmp_path, headed, alphabet_tokenizer("abc"))
    again = tiny_model(6, contrastive_dim=8)
    load_weights(again, tmp_path)
    for name, tensor in headed.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("claps", {"weight": -1.0}, "objectives.claps.weight"),
        ("claps", {"temperature": 0.0}, "objectives.claps.temperature"),
        ("claps", {"imposter_eps": -0.1}, "objectives.claps.imposter_eps"),
        ("claps", {"distant_eta": float("nan")}, "objectives.claps.distant_eta"),
        ("claps", {"kl_bound": -1e-3}, "objectives.claps.kl_bound"),
        ("model", {"contrastive_dim": -2}, "model.contrastive_dim"),
        ("model", {"contrastive_dim": 8, "architecture": "prefix_lm"}, "model.contrastive_dim"),
        ("model", {"contrastive_dim": 8, "action_head": True}, "model.contrastive_dim"),
    ],
)
def test_bad_settings_name_the_key(section, values, key):
    build = ClapsConfig if section == "claps" else ModelConfig
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build(**values)


def test_claps_weight_needs_the_head():
    objectives = ObjectivesConfig(claps=ClapsConfig(weight=1.0))
    with pytest.raises(ConfigError, match=r"objectives\.claps\.weight.*model\.contrastive_dim"):
        ExperimentConfig(objectives=objectives)
    model = dataclasses.replace(ModelConfig(), contrastive_dim=16)
    ExperimentConfig(model=model, objectives=objectives)
