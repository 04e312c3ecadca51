"""MAMMAL-style scalars: mixed prompts, the scalar input projection, the regression head and
its loss, trained end to end by seqweave.train on a task that needs the scalar input."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import seqweave
from seqweave.checkpoint import save_model_dir
from seqweave.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.models.scalars import predict_scalars
from seqweave.objectives.regression import regression_loss
from seqweave.objectives.settings import ClapsConfig, ObjectivesConfig
from seqweave.tokenizers.mixed_prompt import (
    decode_prompt,
    encode_prompt,
    format_scalar,
    mixed_prompt_tokenizer,
    scalar_ids,
)
from seqweave.train import train

from .conftest import single_thread

TASKS = ("<task=fitness>", "<task=double>")
TOKENIZER = mixed_prompt_tokenizer(TASKS)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
segment = st.one_of(
    st.sampled_from([*TASKS, "<@AA>", "<mask>", " "]),
    st.text(alphabet="ACDEFGHIKLMNPQRSTVWYX0123456789.,- ", min_size=1, max_size=12),
    finite.map(lambda v: f"<scalar={format_scalar(v)}>"),
)


@given(st.lists(segment, max_size=12))
def test_mixed_prompts_round_trip_exactly(parts):
    text = "".join(parts)
    ids, channel = encode_prompt(TOKENIZER, text)
    assert decode_prompt(TOKENIZER, ids, channel) == text
    scalar_id = TOKENIZER.token_to_id("<scalar>")
    assert [math.isnan(v) for v in channel] == [i != scalar_id for i in ids]


@given(st.lists(st.one_of(st.sampled_from(["<mask>", "A", "Y", " "]), finite), max_size=10))
def test_ids_and_values_round_trip_bit_for_bit(items):
    scalar_id = TOKENIZER.token_to_id("<scalar>")
    ids = [scalar_id if isinstance(x, float) else TOKENIZER.token_to_id(x) for x in items]
    channel = [x if isinstance(x, float) else math.nan for x in items]
    again_ids, again = encode_prompt(TOKENIZER, decode_prompt(TOKENIZER, ids, channel))
    assert again_ids == ids
    assert [v for v in again if not math.isnan(v)] == [x for x in items if isinstance(x, float)]


def test_the_normaliser_is_saved_with_the_tokenizer(tmp_path):
    text = "<task=fitness> <@AA> MQYK <scalar=0.73> <mask>"
    TOKENIZER.save(tmp_path)
    loaded = seqweave.tokenizers.Tokenizer.load(tmp_path)
    assert encode_prompt(loaded, text) == encode_prompt(TOKENIZER, text)
    assert loaded.encode(text) == TOKENIZER.encode(text)  # what the trainer's batches hold


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("<@AA> mqyk", "'m'"),
        ("MQ*K", "'*'"),
        ("<scalar=abc>", "finite number"),
        ("<scalar=nan>", "finite number"),
        ("<scalar> A", "<scalar=VALUE>"),
    ],
)
def test_bad_prompts_are_refused_by_name(text, words):
    with pytest.raises(ValueError, match=words):
        encode_prompt(TOKENIZER, text)


def scalar_config(**overrides) -> ModelConfig:
    values = dict(
        vocab_size=TOKENIZER.vocab_size,
        d_model=32,
        num_heads=2,
        encoder_layers=2,
        decoder_layers=1,
        ffn_dim=64,
        dropout=0.0,
        max_positions=64,
        scalar_head=True,
        **scalar_ids(TOKENIZER),
    )
    values.update(overrides)
    return ModelConfig(**values)


def test_the_loss_is_mse_at_the_mask_positions_only():
    torch.manual_seed(0)
    model = build_model(scalar_config()).eval()
    prompts = ["<task=double> <scalar=0.5> <mask>", "<mask> AC <scalar=-2.0> <mask>"]
    src = [encode_prompt(TOKENIZER, p)[0] for p in prompts]
    predicted = torch.tensor([v for row in predict_scalars(model, TOKENIZER, prompts) for v in row])
    # the reference: the head applied by hand to the encoder state at each mask
    states = []
    for ids, prompt in zip(src, prompts, strict=True):
        framed = torch.tensor([[*ids, TOKENIZER.eos_id]])
        channel = torch.tensor([encode_prompt(TOKENIZER, prompt)[1] + [math.nan]]).nan_to_num()
        memory = model.encode(framed, torch.tensor([framed.shape[1]]), channel)
        states += [memory.states[0, i] for i, t in enumerate(ids) if t == model.config.mask_id]
    by_hand = model.scalar_head.regress(torch.stack(states)).squeeze(-1)
    torch.testing.assert_close(predicted, by_hand, rtol=1e-5, atol=1e-6)
    targets = torch.tensor([[1.0, math.nan], [3.0, -1.0]])
    outputs = torch.tensor([[2.0, 123.0], [5.0, 0.0]])  # 123 sits where there is no mask
    assert regression_loss(outputs, targets).item() == pytest.approx((1 + 4 + 1) / 3)


def test_the_head_saves_and_loads_and_predicts_identically(tmp_path):
    torch.manual_seed(1)
    model = build_model(scalar_config()).eval()
    prompts = ["<task=fitness> <@AA> MQYK <scalar=0.73> <mask>", "<scalar=1e-3> <mask><mask>"]
    before = predict_scalars(model, TOKENIZER, prompts)
    save_model_dir(tmp_path, model, TOKENIZER)
    assert not list(tmp_path.glob("*.bin")) and (tmp_path / "model.safetensors").exists()
    loaded = seqweave.load(tmp_path)
    assert loaded.network.scalar_head is not None
    assert predict_scalars(loaded.network, loaded.tokenizer, prompts) == before


def test_a_scalar_head_model_refuses_placeholders_without_values():
    model = build_model(scalar_config()).eval()
    ids = torch.tensor([encode_prompt(TOKENIZER, "<scalar=1.0> <mask>")[0]])
    with pytest.raises(ConfigError, match="none were given"):
        model.encode(ids, torch.tensor([ids.shape[1]]))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (dict(model=dict(scalar_head=True, action_head=True)), "action_head"),
        (dict(data=dict(pack_sequences=True)), "data.pack_sequences"),
        (dict(model=dict(scalar_head=True, architecture="prefix_lm")), "transformer"),
        (dict(objectives=dict(claps=ClapsConfig(weight=0.5))), "objectives.claps"),
    ],
)
def test_unsupported_combinations_are_refused_when_built(changes, words):
    model = {"scalar_head": True, **changes.get("model", {})}
    with pytest.raises(ConfigError, match=words):
        ExperimentConfig(
            model=ModelConfig(**model),
            data=DataConfig(**changes.get("data", {})),
            objectives=ObjectivesConfig(**changes.get("objectives", {})),
        )


def write_double_task(path, count: int, seed: int) -> None:
    """Prompts ``<task=double> <scalar=x> <mask>`` answered by 2x: only the scalar input
    tells the model what to answer."""
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for _ in range(count):
            x = round(rng.uniform(-1, 1), 3)
            row = {"source": f"<task=double> <scalar={x}> <mask>", "target": f"<scalar={2 * x}>"}
            handle.write(json.dumps(row) + "\n")


def test_trained_through_seqweave_train_the_prediction_needs_the_scalar(tmp_path):
    TOKENIZER.save(tmp_path / "tokenizer")
    write_double_task(tmp_path / "train.jsonl", 512, seed=0)
    write_double_task(tmp_path / "valid.jsonl", 64, seed=1)
    cfg = ExperimentConfig(
        model=scalar_config(scalar_id=-1, mask_id=-1),  # the trainer sets them
        tokenizer=TokenizerConfig(path=str(tmp_path / "tokenizer")),
        data=DataConfig(
            train=str(tmp_path / "train.jsonl"), valid=str(tmp_path / "valid.jsonl"), max_tokens=512
        ),
        train=TrainConfig(
            out_dir=str(tmp_path / "run"),
            max_steps=300,
            validate_every=100,
            warmup_steps=20,
            lr=3e-3,
            metric="none",
            progress=False,
            log_every=100,
        ),
    )
    with single_thread():
        best = train(cfg)
    model = seqweave.load(best)
    xs = [-0.8, -0.3, 0.4, 0.9]
    prompts = [f"<task=double> <scalar={x}> <mask>" for x in xs]
    predicted = [p[0] for p in predict_scalars(model.network, model.tokenizer, prompts)]
    assert max(abs(p - 2 * x) for p, x in zip(predicted, xs, strict=True)) < 0.3
    zeroed = predict_scalars(model.network, model.tokenizer, ["<task=double> <scalar=0.0> <mask>"])
    assert abs(zeroed[0][0] - predicted[3]) > 1.0  # zeroing x = 0.9 moves the answer to ~0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert any("valid_spearman" in r and r["valid_spearman"] > 0.9 for r in records)
