"""SeqPE: digit-encoded positions, their auxiliary objectives, and their place in training.

The decoder-state equivalences (cached == uncached, K-token step == K steps) run for
position="seqpe" in tests/test_models.py with the other position encodings; these
tests add what is particular to SeqPE: positions far past max_positions, the objectives,
the config, and the round trip through training and a model directory.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import seqweave
from seqweave.config import (
    ExperimentConfig,
    ModelConfig,
    ObjectivesConfig,
    SeqPEConfig,
    TrainConfig,
    apply_overrides,
)
from seqweave.errors import ConfigError
from seqweave.models.positions import sinusoidal_table
from seqweave.models.seqpe import SequentialPositions
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.objectives.seqpe import (
    contrastive_distance_loss,
    contrastive_sample,
    distance_rank_correlation,
    distillation_sample,
    seqpe_auxiliary_loss,
    similarity_distillation_loss,
)
from seqweave.train.data import collate
from seqweave.train.loop import Trainer
from tests.conftest import VOCAB, random_sources, tiny_config, tiny_model
from tests.test_models import ATOL

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEQPE = dict(position="seqpe", seqpe_digits=4, seqpe_dim=8, seqpe_heads=2, seqpe_layers=1)


def encoder(seed: int = 0, **overrides) -> SequentialPositions:
    torch.manual_seed(seed)
    return SequentialPositions(tiny_config(**{**SEQPE, **overrides})).eval()


# -- the position encoder ---------------------------------------------------------------


def test_vectors_of_any_position_are_finite_and_distinct():
    positions = torch.tensor([[0, 1, 9, 10, 127, 128, 129, 1000, 5000, 9998, 9999]])
    with torch.no_grad():
        vectors = encoder().forward(positions)[0]  # (P, D)
    assert torch.isfinite(vectors).all()
    gaps = torch.cdist(vectors, vectors) + torch.eye(len(vectors))
    assert gaps.min() > 1e-4


@functools.cache
def shared_encoder() -> SequentialPositions:
    """One encoder for all examples, so that its decoding table grows as they need."""
    return encoder()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 9999), min_size=1, max_size=12))
def test_decoding_table_equals_direct_encoding(positions):
    """Without autograd the vectors come from a cached table; with it, from encoding the
    distinct positions of the pass. Both must give each position the same vector."""
    module = shared_encoder()
    ids = torch.tensor([positions])
    with torch.no_grad():
        cached = module.forward(ids)
    direct = module.forward(ids)
    torch.testing.assert_close(cached, direct.detach(), atol=ATOL, rtol=0)
    assert direct.requires_grad


def test_digits_are_most_significant_first_and_left_padded():
    module = encoder()
    assert module.digits_of(torch.tensor([0, 7, 305, 9999])).tolist() == [
        [0, 0, 0, 0],
        [0, 0, 0, 7],
        [0, 3, 0, 5],
        [9, 9, 9, 9],
    ]
    binary = encoder(seqpe_base=2, seqpe_digits=8)
    assert binary.digits_of(torch.tensor([5])).tolist() == [[0, 0, 0, 0, 0, 1, 0, 1]]


@pytest.mark.parametrize("position", [10_000, -1])
def test_position_outside_the_digits_is_an_error(position):
    with torch.no_grad(), pytest.raises(ValueError, match=f"position {position} .*seqpe_digits=4"):
        encoder().forward(torch.tensor([[3, position]]))


def test_decoding_table_follows_weight_changes():
    """The table is rebuilt when weights change in place (an optimizer step, loading)."""
    module, other = encoder(0), encoder(1)
    ids = torch.tensor([[0, 5, 300]])
    with torch.no_grad():
        before = module.forward(ids)
        module.load_state_dict(other.state_dict())
        after = module.forward(ids)
        expected = other.forward(ids)
    torch.testing.assert_close(after, expected, atol=0, rtol=0)
    assert not torch.allclose(before, after)


# -- the decoder-state API far past max_positions ------------------------------------------


@pytest.mark.parametrize("architecture", ["transformer", "prefix_lm"])
def test_ragged_steps_far_past_max_positions_match_forward_and_rows_alone(architecture):
    """max_positions=8 but 150 target tokens: SeqPE needs no table bounded by it. Cached
    steps (ragged blocks) equal the uncached forward, and each row equals itself alone."""
    model = tiny_model(architecture=architecture, max_positions=8, **SEQPE)
    generator = torch.Generator().manual_seed(3)
    sources = random_sources(generator, 3)
    src, lengths = seqweave.decoding.common.pad_batch(sources, pad_id=0)
    tgt = torch.randint(4, VOCAB, (3, 150), generator=generator)
    with torch.no_grad():
        reference = model(src, lengths, tgt)  # (B, T, V)
        state = model.start(model.encode(src, lengths), capacity=4)
        blocks = [model.step(state, tgt[:, i : i + 7]) for i in range(0, 147, 7)]
        blocks.append(model.step(state, tgt[:, 147:]))
        for row in range(3):
            alone_src = src[row : row + 1, : lengths[row]]
            alone = model(alone_src, lengths[row : row + 1], tgt[row : row + 1])
            torch.testing.assert_close(alone[0], reference[row], atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.cat(blocks, dim=1), reference, atol=ATOL, rtol=0)


# -- the auxiliary objectives -------------------------------------------------------------


def test_contrastive_loss_is_lower_when_similarity_falls_with_distance():
    torch.manual_seed(0)
    ordered = sinusoidal_table(512, 32)
    shuffled = ordered[torch.randperm(512)]
    anchors, candidates = contrastive_sample(511, "cpu")
    distances = (candidates - anchors[:, None]).abs()

    def loss(table):
        return contrastive_distance_loss(table[anchors], table[candidates], distances)

    assert loss(ordered) < 0.5 * loss(shuffled)


def test_distillation_loss_is_zero_for_shift_invariant_vectors_only():
    """Sinusoidal vectors' similarities depend only on distance, so any shifted window
    has the pattern of the window it came from; a random table's does not."""
    torch.manual_seed(0)
    teacher, student = distillation_sample(64, 4000, "cpu")
    assert teacher.max() < 64 and student.min() >= 64 and student.max() <= 4000
    assert ((student - teacher) == (student - teacher)[:, :1]).all()  # one shift per window
    table = sinusoidal_table(4001, 32)
    assert similarity_distillation_loss(table[teacher], table[student]) < 1e-4
    noise = torch.randn(4001, 32)
    assert similarity_distillation_loss(noise[teacher], noise[student]) > 0.1


def test_rank_correlation_of_distance_and_similarity():
    assert distance_rank_correlation(sinusoidal_table(64, 32)) < -0.5
    torch.manual_seed(0)
    assert abs(distance_rank_correlation(torch.randn(64, 32))) < 0.1
    angle = 0.1 * torch.arange(16.0)  # unit vectors whose angle grows with the position
    circle = torch.stack([angle.cos(), angle.sin()], dim=1)
    assert distance_rank_correlation(circle) == pytest.approx(-1.0, abs=0.01)


def test_objectives_order_the_encoder_when_optimised():
    """A few steps of the contrastive objective alone make similarity fall with distance."""
    module = encoder().train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    cfg = SeqPEConfig(contrastive_weight=1.0, max_position=255)
    positions = torch.arange(256)
    before = distance_rank_correlation(module.encode(positions).detach())
    for _ in range(80):
        loss = seqpe_auxiliary_loss(module, cfg, trained=64)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = distance_rank_correlation(module.encode(positions).detach())
    assert abs(before) < 0.1 and after < -0.4


# -- training -------------------------------------------------------------------------------


def micro_batch(architecture: str):
    generator = torch.Generator().manual_seed(5)
    sources = random_sources(generator, 4)
    targets = [s[:-1][::-1] for s in sources]
    return collate(sources, targets, tiny_config(architecture=architecture, **SEQPE))


def trainer_loss(model, **seqpe) -> torch.Tensor:
    objectives = ObjectivesConfig(seqpe=SeqPEConfig(**seqpe))
    cfg = ExperimentConfig(model=model.config, objectives=objectives)
    fields = {f.name: None for f in dataclasses.fields(Trainer)}
    trainer = Trainer(**{**fields, "config": cfg, "model": model, "wrapped": model})
    return trainer._loss(micro_batch(model.config.architecture))


@pytest.mark.parametrize("architecture", ["transformer", "prefix_lm"])
def test_training_loss_is_plain_mle_unless_weighted(architecture):
    model = tiny_model(architecture=architecture, **SEQPE).train()
    micro = micro_batch(architecture)
    logits = model(micro.src, micro.src_lengths, micro.tgt_in)
    plain, _ = label_smoothed_nll(logits, micro.tgt_out, 0, 0.1)
    assert torch.equal(trainer_loss(model), plain)
    weighted = trainer_loss(model, contrastive_weight=0.5, distill_weight=0.5)
    assert weighted > plain
    place = model.get_submodule("embed" if architecture == "prefix_lm" else "decoder_embed")
    (weighted - plain.detach()).backward()
    assert place.positions.place.grad.abs().sum() > 0


def test_training_with_the_objectives_saves_and_loads(tmp_path):
    """A short run with both objectives; the model directory loads and, with a larger
    max_positions, scores a sequence past the trained lengths the same as in training."""
    from seqweave.checkpoint import load_weights
    from seqweave.config import DataConfig, TokenizerConfig
    from seqweave.models import build_model
    from seqweave.train import train
    from tests.conftest import write_edit_task

    train_file, valid_file = write_edit_task(tmp_path / "data", n_train=60, n_valid=5)
    cfg = ExperimentConfig(
        model=tiny_config(architecture="prefix_lm", max_positions=48, **SEQPE),
        tokenizer=TokenizerConfig(kind="alphabet", alphabet="abcdefghij"),
        data=DataConfig(train=str(train_file), valid=str(valid_file), max_tokens=200),
        train=TrainConfig(
            out_dir=str(tmp_path / "run"),
            max_steps=3,
            warmup_steps=1,
            metric="none",
            progress=False,
        ),
        objectives=ObjectivesConfig(
            seqpe=SeqPEConfig(contrastive_weight=0.1, distill_weight=0.1, max_position=999)
        ),
    )
    best = train(cfg)
    loaded = seqweave.load(best)
    assert loaded.network.config.position == "seqpe" and loaded.generate(["abc"])
    longer = build_model(dataclasses.replace(loaded.network.config, max_positions=2000)).eval()
    load_weights(longer, best)  # no weight depends on max_positions
    src, tgt = torch.tensor([[5, 6, 2]]), torch.randint(4, 14, (1, 300))
    with torch.no_grad():
        torch.testing.assert_close(
            longer(src, torch.tensor([3]), tgt)[:, :40],
            loaded.network(src, torch.tensor([3]), tgt[:, :40]),
            atol=ATOL,
            rtol=0,
        )


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(seqpe_dim=10, seqpe_heads=4), "model.seqpe_dim=10 is not divisible"),
        (dict(seqpe_base=1), "model.seqpe_base must be >= 2"),
        (dict(seqpe_digits=0), "model.seqpe_digits must be >= 1"),
        (dict(seqpe_layers=0), "model.seqpe_layers must be >= 1"),
        (dict(seqpe_digits=2, max_positions=128), "model.max_positions=128 needs more"),
        (dict(position_offset=2), "model.position_offset"),
    ],
)
def test_invalid_seqpe_model_config_is_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**{**SEQPE, **overrides})


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["objectives.seqpe.contrastive_weight=-1"],
            "objectives.seqpe.contrastive_weight must be >= 0",
        ),
        (["objectives.seqpe.distill_weight=nan"], "objectives.seqpe.distill_weight must be >= 0"),
        (["objectives.seqpe.max_position=-5"], "objectives.seqpe.max_position must be >= 0"),
        (["objectives.seqpe.distill_weight=1"], "need model.position='seqpe', got 'sinusoidal'"),
        (
            ["model.position=seqpe", "objectives.seqpe.max_position=100000"],
            r"max_position=100000 is past what model.seqpe_digits=5 encode \(99999\)",
        ),
    ],
)
def test_invalid_seqpe_training_config_is_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ExperimentConfig(), overrides)
