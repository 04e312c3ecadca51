"""OTSeq2Set's set loss as a token loss of seqweave.train ([objectives.set_matching])."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.config import (
    ClapsConfig,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    ObjectivesConfig,
    SetMatchingConfig,
    TokenizerConfig,
    TrainConfig,
    from_dict,
)
from seqweave.errors import ConfigError
from seqweave.objectives.registry import SetMatching, build_training_loss
from seqweave.objectives.set_matching import (
    EMPTY_TOKEN,
    ot_loss,
    output_embeddings,
    pad_sets,
    set_matching_loss,
    student_forced_log_probs,
    with_empty_id,
)
from seqweave.tokenizers import Tokenizer, words_tokenizer
from seqweave.train.data import collate
from seqweave.train.report import read_metrics
from tests.conftest import tiny_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EMPTY, STEPS = 3, 4


def _experiment(mode: str = "ot", **section) -> ExperimentConfig:
    values = {"mode": mode, "steps": STEPS, "ot_weight": 0.3, "empty_id": EMPTY, **section}
    objectives = ObjectivesConfig(set_matching=SetMatchingConfig(**values))
    return ExperimentConfig(model=tiny_config(), objectives=objectives)


def _batch(seed: int, rows: int = 5):
    """Sources over ids 4..49 and label targets of 0..STEPS distinct ids 10..49."""
    rng = random.Random(seed)
    sources = [[rng.randrange(4, 50) for _ in range(rng.randint(2, 9))] + [2] for _ in range(rows)]
    targets = [rng.sample(range(10, 50), rng.randint(0, STEPS)) for _ in range(rows)]
    return sources, targets


def _reference(model, sources, targets, weight: float) -> torch.Tensor:
    """The recipe's loss before the port, from the set_matching functions themselves."""
    micro = collate(sources, targets, model.config)
    log_probs, _ = student_forced_log_probs(model, micro.src, micro.src_lengths, STEPS)
    nll, _ = set_matching_loss(log_probs, targets, EMPTY)
    loss = nll / log_probs.shape[:2].numel()
    if weight:
        padded = pad_sets(targets, STEPS, EMPTY)
        loss = loss + weight * ot_loss(log_probs, output_embeddings(model), padded) / len(targets)
    return loss * micro.num_tokens


@pytest.mark.parametrize(("mode", "weight"), [("matching", 0.0), ("ot", 0.3)])
def test_the_registry_loss_is_the_set_matching_functions_on_the_same_batch(mode, weight):
    model = tiny_model(seed=1)
    sources, targets = _batch(seed=2)
    loss = build_training_loss(_experiment(mode))
    assert isinstance(loss.token, SetMatching) and loss.additive == ()
    got = loss(model, model, collate(sources, targets, model.config))
    torch.testing.assert_close(got, _reference(model, sources, targets, weight))


@given(seed=st.integers(0, 10_000), order=st.randoms(use_true_random=False))
@settings(max_examples=25, deadline=None)
def test_the_loss_does_not_depend_on_the_order_of_the_labels_in_the_target(seed, order):
    model = tiny_model(seed=seed % 3)
    sources, targets = _batch(seed)
    shuffled = [order.sample(labels, len(labels)) for labels in targets]
    loss = build_training_loss(_experiment("ot"))
    first = loss(model, model, collate(sources, targets, model.config))
    again = loss(model, model, collate(sources, shuffled, model.config))
    torch.testing.assert_close(first, again, rtol=1e-5, atol=1e-5)


def test_without_student_forcing_the_steps_are_fed_the_labels_as_written():
    model = tiny_model(seed=1)
    sources, targets = _batch(seed=3)
    micro = collate(sources, targets, model.config)
    loss = build_training_loss(_experiment("matching", student_forcing=False))
    fed = pad_sets(targets, STEPS, EMPTY)
    inputs = torch.cat([torch.full((len(targets), 1), 1), fed[:, :-1]], dim=1)
    log_probs = torch.log_softmax(model(micro.src, micro.src_lengths, inputs), dim=-1)
    nll, _ = set_matching_loss(log_probs, targets, EMPTY)
    expected = nll / log_probs.shape[:2].numel() * micro.num_tokens
    torch.testing.assert_close(loss(model, model, micro), expected)


def test_the_gradient_flows_through_the_wrapped_module_only():
    """The rollout runs on the bare model without gradient; the loss's pass goes through
    ``wrapped`` (data parallelism's wrapper), so that is where the gradient must come from."""
    model = tiny_model(seed=1).train()
    calls = []

    def wrapped(*arguments):
        calls.append(arguments)
        return model(*arguments)

    sources, targets = _batch(seed=4)
    micro = collate(sources, targets, model.config)
    build_training_loss(_experiment("ot"))(model, wrapped, micro).backward()
    assert len(calls) == 1
    assert model.decoder_norm.weight.grad is not None
    assert model.output_tokens.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mode": "sets"}, "mode='sets' is not one of off, matching, ot"),
        ({"mode": "matching"}, "steps must be >= 1"),
        ({"mode": "ot", "steps": 3, "ot_weight": 0.0}, "is mode='matching'"),
        ({"mode": "ot", "steps": 3, "ot_weight": -1.0}, "ot_weight must be >= 0"),
        ({"mode": "ot", "steps": 3, "ipot_beta": 0.0}, "ipot_beta must be > 0"),
        ({"mode": "ot", "steps": 3, "ipot_iterations": 0}, "ipot_iterations must be > 0"),
        ({"empty_id": -2}, "empty_id must be a token id or -1"),
    ],
)
def test_bad_values_of_the_section_are_refused(section, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(ExperimentConfig, {"objectives": {"set_matching": section}})


@pytest.mark.parametrize(
    ("experiment", "message"),
    [
        ({"model": tiny_config(architecture="prefix_lm")}, "needs a plain encoder-decoder"),
        ({"model": tiny_config(action_head=True)}, "with an action head"),
        ({"model": tiny_config(max_positions=3)}, "steps=4 is past model.max_positions=3"),
        ({"model": tiny_config(vocab_size=3)}, "empty_id=3 is not a token id"),
        (
            {
                "model": tiny_config(contrastive_dim=8),
                "claps": ClapsConfig(weight=1.0),
            },
            "objectives.claps or objectives.e2s2",
        ),
    ],
)
def test_combinations_the_set_loss_cannot_train_are_refused(experiment, message):
    base = _experiment("ot")
    objectives = base.objectives
    if "claps" in experiment:
        objectives = dataclasses.replace(objectives, claps=experiment["claps"])
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(model=experiment["model"], objectives=objectives)


def test_the_empty_id_comes_from_the_tokenizer():
    config = _experiment("matching", empty_id=-1)
    tokenizer = words_tokenizer(["a b c"])
    with pytest.raises(ConfigError, match="no <empty> token"):
        with_empty_id(config, tokenizer)
    (empty_id,) = tokenizer.add_task_tokens([EMPTY_TOKEN])
    assert with_empty_id(config, tokenizer).objectives.set_matching.empty_id == empty_id
    assert with_empty_id(ExperimentConfig(), tokenizer) == ExperimentConfig()


def test_a_target_that_repeats_a_label_is_refused():
    model = tiny_model(seed=1)
    loss = build_training_loss(_experiment("matching"))
    with pytest.raises(ValueError, match="repeats a label"):
        loss(model, model, collate([[5, 2]], [[11, 11]], model.config))


def _label_data(path: Path, count: int, seed: int) -> None:
    """Sources name labels by keyword among filler words; targets list the labels in a
    random order, one word each."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            labels = rng.sample(range(6), rng.randint(1, 3))
            words = [f"filler{rng.randrange(8)}" for _ in range(4)] + [f"key{i}" for i in labels]
            rng.shuffle(words)
            target = " ".join(f"label{i}" for i in rng.sample(labels, len(labels)))
            handle.write(json.dumps({"source": " ".join(words), "target": target}) + "\n")


def test_a_tiny_model_trains_on_the_set_loss_through_seqweave_train(tmp_path):
    from seqweave.train import train

    _label_data(tmp_path / "train.jsonl", 300, seed=1)
    config = ExperimentConfig(
        model=ModelConfig(
            d_model=32, num_heads=2, encoder_layers=1, decoder_layers=1, ffn_dim=64, dropout=0.0
        ),
        tokenizer=TokenizerConfig(kind="words", min_frequency=1),
        data=DataConfig(train=str(tmp_path / "train.jsonl"), max_tokens=1000, max_sentences=32),
        train=TrainConfig(
            out_dir=str(tmp_path / "run"),
            max_steps=40,
            warmup_steps=4,
            lr=1e-2,
            schedule="constant",
            log_every=10,
            validate_every=40,
            metric="none",
            progress=False,
            device="cpu",
        ),
        objectives=ObjectivesConfig(set_matching=SetMatchingConfig(mode="ot", steps=3)),
    )
    best = train(config)
    losses = [
        r["loss"] for r in read_metrics(tmp_path / "run/metrics.jsonl") if r["kind"] == "train"
    ]
    assert len(losses) == 4 and losses[-1] < 0.6 * losses[0]
    saved = json.loads((tmp_path / "run/config.json").read_text())
    trained = Tokenizer.load(best)
    assert saved["objectives"]["set_matching"]["empty_id"] == trained.token_to_id(EMPTY_TOKEN)
    assert len(trained.encode("label0 label5 key2")) == 3
    # decoding runs the T steps it was trained for, and <empty> is not in the text
    import seqweave

    model = seqweave.load(best)
    assert model.decode_config.max_new_tokens == 3
    outputs = model.generate(["filler1 key2 filler3 key4", "key0 filler5"])
    assert any(outputs)
    assert all(word.startswith("label") for output in outputs for word in output.split())
