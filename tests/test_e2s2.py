"""E2S2 (Zhong et al. 2022): position-keeping source corruption, the encoder-side restore
and contrastive objectives, their configuration and a checkpoint with the restore head."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import seqweave
from seqweave.config import (
    DenoisingConfig,
    E2S2Config,
    ExperimentConfig,
    ModelConfig,
    ObjectivesConfig,
    TrainConfig,
    apply_overrides,
)
from seqweave.errors import ConfigError
from seqweave.models.e2s2 import restore_logits
from seqweave.objectives.e2s2 import (
    E2S2,
    MASK_TOKEN,
    NoiseVocabulary,
    corrupt,
    mean_pool,
    noise_seed,
    noise_vocabulary,
    noisy_batch,
    restore_loss,
    restore_targets,
    view_contrastive_loss,
)
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.objectives.registry import MLE, TrainingLoss
from seqweave.train.batches import MicroBatch
from seqweave.train.data import collate
from seqweave.train.distributed import Distributed
from seqweave.train.loop import Trainer
from seqweave.train.resume import Progress
from tests.conftest import VOCAB, random_sources, tiny_config, tiny_model

MASK_ID = 3  # the tiny models' vocabulary has no tokenizer: pad 0, bos 1, eos 2, mask 3
VOCABULARY = NoiseVocabulary(MASK_ID, frozenset({0, 1, 2}), VOCAB)
NOISE = DenoisingConfig(mask_rate=0.2, replace_rate=0.15)


def batch(seed: int = 0, count: int = 6, cfg: ModelConfig | None = None):
    sources = random_sources(torch.Generator().manual_seed(seed), count)
    targets = [s[:-1][::-1] for s in sources]
    return collate(sources, targets, cfg or tiny_config())


def noisy(seed: int = 0, step_seed: int = 7, **train_values):
    """A corrupted micro-batch and an experiment with the E2S2 weights at 0."""
    cfg = ExperimentConfig(
        train=TrainConfig(**train_values), objectives=ObjectivesConfig(denoising=NOISE)
    )
    return noisy_batch(batch(seed), NOISE, VOCABULARY, step_seed), cfg


def with_e2s2(cfg: ExperimentConfig, **values) -> ExperimentConfig:
    objectives = dataclasses.replace(cfg.objectives, e2s2=E2S2Config(**values))
    return dataclasses.replace(cfg, objectives=objectives)


def e2s2_loss(model, micro, cfg: ExperimentConfig, pad_id: int = 0):
    """The loop's training loss with the E2S2 objective composed on, even at weight 0 (the
    registry leaves it out then), so that its pass is the one under test."""
    token = MLE(pad_id, cfg.train.label_smoothing)
    return TrainingLoss(token, (E2S2(cfg.objectives.e2s2, pad_id),))(model, model, micro)


# -- corruption ------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    mask_rate=st.floats(0, 1),
    replace_share=st.floats(0, 1),
    seed=st.integers(0, 2**31),
)
def test_corruption_keeps_positions_and_touches_text_tokens_only(mask_rate, replace_share, seed):
    replace_rate = (1 - mask_rate) * replace_share
    src = batch(seed % 100).src
    generator = torch.Generator().manual_seed(seed)
    out, corrupted = corrupt(src, VOCABULARY, mask_rate, replace_rate, generator)
    assert out.shape == src.shape
    assert torch.equal(corrupted, out != src)
    special = torch.isin(src, torch.tensor([0, 1, 2]))
    assert not corrupted[special].any()  # padding and framing never change
    changed = out[corrupted]
    assert ((changed == MASK_ID) | (changed >= 4)).all()  # <mask> or an ordinary token
    if mask_rate == 0:
        assert not (out == MASK_ID).any()
    if mask_rate + replace_rate == 0:
        assert torch.equal(out, src)
    again, _ = corrupt(
        src, VOCABULARY, mask_rate, replace_rate, torch.Generator().manual_seed(seed)
    )
    assert torch.equal(again, out)  # the seed alone decides


def test_corruption_rates_and_seeds():
    src = torch.randint(4, VOCAB, (200, 50))
    out, corrupted = corrupt(src, VOCABULARY, 0.2, 0.1, torch.Generator().manual_seed(0))
    masked = (out == MASK_ID).float().mean().item()
    replaced = (corrupted & (out != MASK_ID)).float().mean().item()
    assert abs(masked - 0.2) < 0.01 and abs(replaced - 0.1 * (1 - 1 / 46)) < 0.01
    other, _ = corrupt(src, VOCABULARY, 0.2, 0.1, torch.Generator().manual_seed(1))
    assert not torch.equal(other, out)
    assert noise_seed(1, 5, 3) != noise_seed(1, 5, 4) != noise_seed(1, 6, 3)


def test_trainer_corrupts_each_micro_batch_reproducibly():
    model = tiny_model()
    cfg = ExperimentConfig(model=model.config, objectives=ObjectivesConfig(denoising=NOISE))
    trainer = _trainer(model, cfg)
    sources = [s[:-1] for s in random_sources(torch.Generator().manual_seed(0), 8)]
    micro = MicroBatch([0, 1, 2, 3], [], sources[:4], sources[:4])
    trainer.tokenizer = _tokenizer_with_mask()
    first = trainer._collate(micro)
    assert torch.equal(first.src, trainer._collate(micro).src)
    kept = ~first.corrupted
    assert torch.equal(first.original[kept], first.src[kept])
    assert first.corrupted.any()
    trainer.progress.step += 1
    assert not torch.equal(first.src, trainer._collate(micro).src)


def test_noise_vocabulary_needs_a_mask_token():
    tokenizer = _tokenizer_with_mask(add=False)
    with pytest.raises(ConfigError, match="needs a <mask> token in the tokenizer"):
        noise_vocabulary(tokenizer)
    vocab = noise_vocabulary(_tokenizer_with_mask())
    assert vocab.mask_id not in vocab.ordinary_ids() and vocab.mask_id in vocab.special_ids


# -- encoder-side denoising ------------------------------------------------------------------


def test_restore_targets_are_the_original_tokens_at_corrupted_positions_only():
    micro, _ = noisy()
    targets = restore_targets(micro.original, micro.corrupted, pad_id=0)
    assert micro.corrupted.any() and (~micro.corrupted & (micro.src != 0)).any()
    assert torch.equal(targets[micro.corrupted], micro.original[micro.corrupted])
    assert (targets[~micro.corrupted] == 0).all()
    logits = torch.randn(*targets.shape, VOCAB, requires_grad=True)
    loss = restore_loss(logits, targets, pad_id=0)
    rows, cols = micro.corrupted.nonzero(as_tuple=True)
    by_hand = sum(
        -F.log_softmax(logits[r, c], -1)[micro.original[r, c]]
        for r, c in zip(rows, cols, strict=True)
    )
    torch.testing.assert_close(loss, by_hand)
    loss.backward()
    assert (logits.grad[~micro.corrupted] == 0).all()


@pytest.mark.parametrize("restore_head", [False, True])
def test_zero_weights_give_the_plain_loss_and_gradients_bit_for_bit(restore_head):
    """Dropout on, so the E2S2 path must also draw the same random numbers in the same order."""
    micro, cfg = noisy(label_smoothing=0.1)
    model = tiny_model(seed=3, restore_head=restore_head, dropout=0.1).train()
    plain_model = tiny_model(seed=3, dropout=0.1).train()
    torch.manual_seed(11)
    logits = plain_model(micro.src, micro.src_lengths, micro.tgt_in)
    plain, _ = label_smoothed_nll(logits, micro.tgt_out, 0, 0.1)
    plain.backward()
    torch.manual_seed(11)
    loss = e2s2_loss(model, micro, cfg, pad_id=0)
    loss.backward()
    assert torch.equal(loss, plain)
    theirs = dict(plain_model.named_parameters())
    for name, param in model.named_parameters():
        if name.startswith("restore_head."):
            assert param.grad is None
        else:
            assert torch.equal(param.data, theirs[name].data), name
            assert torch.equal(param.grad, theirs[name].grad), name


def test_the_denoising_loss_trains_the_encoder_and_head_not_the_decoder():
    micro, cfg = noisy(label_smoothing=0.0)
    model = tiny_model(restore_head=True).train()
    plain = e2s2_loss(model, micro, cfg, pad_id=0)
    weighted = e2s2_loss(model, micro, with_e2s2(cfg, denoise_weight=0.5), 0)
    memory = model.encode(micro.src, micro.src_lengths)
    targets = restore_targets(micro.original, micro.corrupted, 0)
    expected = restore_loss(restore_logits(model, memory.states), targets, 0)
    torch.testing.assert_close(weighted - plain, 0.5 * expected)
    (weighted - plain).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or not g.any() for n, g in grads.items() if n.startswith("decoder_"))
    for prefix in ("encoder_layers.", "restore_head."):
        assert any(g is not None and g.any() for n, g in grads.items() if n.startswith(prefix))


# -- encoder-side contrastive ----------------------------------------------------------------


def test_contrastive_loss_is_log_batch_for_identical_representations():
    same = torch.randn(1, 8).expand(5, 8)
    torch.testing.assert_close(view_contrastive_loss(same, same, 0.1), torch.tensor(math.log(5)))


def test_contrastive_loss_is_infonce():
    generator = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    by_hand = 0.0
    for i in range(4):
        scores = [F.cosine_similarity(queries[i], keys[j], dim=0) / 0.2 for j in range(4)]
        by_hand += -scores[i] + torch.logsumexp(torch.stack(scores), 0)
    torch.testing.assert_close(view_contrastive_loss(queries, keys, 0.2), by_hand / 4)
    order = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(
        view_contrastive_loss(queries[order], keys[order], 0.2),
        view_contrastive_loss(queries, keys, 0.2),
    )


def test_contrastive_loss_is_low_when_views_match_and_high_when_they_do_not():
    views = torch.eye(6) * 3.0  # orthogonal sentences
    matched = view_contrastive_loss(views, views, 0.1)
    assert matched < 1e-3  # log(1 + 5 e^-10)
    assert view_contrastive_loss(views, views.roll(1, 0), 0.1) > 9.0


def test_mean_pool_ignores_padding():
    states = torch.randn(2, 5, 4)
    lengths = torch.tensor([3, 5])
    pooled = mean_pool(states, lengths)
    torch.testing.assert_close(pooled[0], states[0, :3].mean(0))
    torch.testing.assert_close(pooled[1], states[1].mean(0))
    states[0, 3:] = 1e6
    torch.testing.assert_close(mean_pool(states, lengths)[0], pooled[0])


def test_contrastive_weight_adds_the_pooled_views_loss_per_target_token():
    micro, cfg = noisy(label_smoothing=0.0)
    model = tiny_model().eval()
    plain = e2s2_loss(model, micro, cfg, pad_id=0)
    weighted_cfg = with_e2s2(cfg, contrastive_weight=0.3, temperature=0.5)
    weighted = e2s2_loss(model, micro, weighted_cfg, pad_id=0)
    corrupted = model.encode(micro.src, micro.src_lengths).states
    clean = model.encode(micro.original, micro.src_lengths).states
    expected = view_contrastive_loss(
        mean_pool(corrupted, micro.src_lengths), mean_pool(clean, micro.src_lengths), 0.5
    )
    torch.testing.assert_close(weighted - plain, 0.3 * expected * micro.num_tokens)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["objectives.e2s2.denoise_weight=-1"], r"objectives\.e2s2\.denoise_weight must be >= 0"),
        (
            ["objectives.e2s2.contrastive_weight=nan"],
            r"objectives\.e2s2\.contrastive_weight must be >= 0",
        ),
        (["objectives.e2s2.temperature=0"], r"objectives\.e2s2\.temperature must be > 0"),
        (
            ["objectives.denoising.mask_rate=1.5"],
            r"objectives\.denoising\.mask_rate must be in \[0, 1\]",
        ),
        (
            ["objectives.denoising.replace_rate=-0.1"],
            r"objectives\.denoising\.replace_rate must be in \[0, 1\]",
        ),
        (
            ["objectives.denoising.mask_rate=0.6", "objectives.denoising.replace_rate=0.6"],
            r"mask_rate \+ objectives\.denoising\.replace_rate must be <= 1",
        ),
        (
            ["objectives.e2s2.denoise_weight=1"],
            r"objectives\.e2s2\.denoise_weight needs a corrupted source",
        ),
        (
            ["model.architecture=prefix_lm", "objectives.e2s2.contrastive_weight=1"],
            r"need a plain encoder-decoder .*got 'prefix_lm'",
        ),
        (
            ["model.action_head=true", "model.skip_id=5", "objectives.e2s2.contrastive_weight=1"],
            "with an action head",
        ),
        (["model.architecture=prefix_lm", "model.restore_head=true"], r"model\.restore_head needs"),
    ],
)
def test_invalid_e2s2_config_is_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ExperimentConfig(), overrides)


# -- training and checkpoints ----------------------------------------------------------------


def test_training_with_the_restore_head_round_trips_and_fine_tunes(tmp_path):
    """A short E2S2 run saves the head with the model; the directory loads, its head is the
    one trained, and a model without the head starts from the rest (fine-tuning)."""
    from seqweave.checkpoint import load_weights
    from seqweave.config import DataConfig, TokenizerConfig
    from seqweave.models import build_model
    from seqweave.train import _initialise, train
    from tests.conftest import write_edit_task

    train_file, valid_file = write_edit_task(tmp_path / "data", n_train=40, n_valid=2)
    common = dict(
        data=DataConfig(train=str(train_file), valid=str(valid_file), max_tokens=200),
        tokenizer=TokenizerConfig(kind="alphabet", alphabet="abcdefghij"),
    )
    train_values = dict(max_steps=3, warmup_steps=1, metric="none", progress=False)
    cfg = ExperimentConfig(
        model=tiny_config(restore_head=True),
        train=TrainConfig(out_dir=str(tmp_path / "pre"), **train_values),
        objectives=ObjectivesConfig(
            denoising=NOISE, e2s2=E2S2Config(denoise_weight=1.0, contrastive_weight=0.5)
        ),
        **common,
    )
    best = train(cfg)
    loaded = seqweave.load(best)
    assert loaded.tokenizer.token_to_id(MASK_TOKEN) is not None
    assert loaded.network.restore_head is not None and loaded.generate(["abc"])
    fresh = build_model(loaded.network.config)
    load_weights(fresh, best)
    for name, tensor in loaded.network.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    src = torch.tensor([[5, MASK_ID, 7, 2]])
    with torch.no_grad():
        states = loaded.network.encode(src, torch.tensor([4])).states
        torch.testing.assert_close(
            restore_logits(fresh, fresh.encode(src, torch.tensor([4])).states),
            restore_logits(loaded.network, states),
        )
    plain = build_model(dataclasses.replace(loaded.network.config, restore_head=False))
    _initialise(plain, best, announce=False)  # what train.init_from does
    for name, tensor in plain.state_dict().items():
        assert torch.equal(tensor, loaded.network.state_dict()[name]), name


# -- helpers ---------------------------------------------------------------------------------


def _trainer(model, cfg: ExperimentConfig) -> Trainer:
    fields = {f.name: None for f in dataclasses.fields(Trainer)}
    fields.update(config=cfg, model=model, wrapped=model, progress=Progress(), dist=Distributed())
    return Trainer(**{**fields, "device": torch.device("cpu")})


def _tokenizer_with_mask(add: bool = True):
    from seqweave.tokenizers import build_tokenizer

    tokenizer = build_tokenizer("alphabet", [], 0, (), "abcdefghij")
    if add:
        tokenizer.add_task_tokens([MASK_TOKEN])
    return tokenizer
