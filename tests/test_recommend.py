"""``seqweave recommend`` and ``POST /v1/recommend`` on a saved sasrec model: the items and
scores the network gives, the history left out, unknown item ids named in the error; the
validation of a recommender during training."""

from __future__ import annotations

import json
import time

import pytest
import torch

import seqweave
from seqweave.checkpoint import save_model_dir
from seqweave.cli import main
from seqweave.config import DecodeConfig, ExperimentConfig, ModelConfig, TrainConfig
from seqweave.models import build_model
from seqweave.recommend import top_items
from seqweave.tokenizers import words_tokenizer

ITEMS = [str(i) for i in (12, 345, 7, 99, 1000, 5, 6, 8)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tokenizer = words_tokenizer([" ".join(ITEMS)], 0, 1)
    config = ModelConfig(
        architecture="sasrec",
        position="learned",
        vocab_size=tokenizer.vocab_size,
        d_model=16,
        num_heads=2,
        decoder_layers=2,
        ffn_dim=32,
        dropout=0.0,
        max_positions=6,
        reasoning_steps=2,
        reasoning_readout="mean",
    )
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("sasrec")
    save_model_dir(directory, build_model(config).eval(), tokenizer, DecodeConfig())
    return directory


def expected(model_dir, history: list[str]) -> list[tuple[str, float]]:
    """By hand: the network's readout scores over the tokenizer's items, history removed."""
    model = seqweave.load(model_dir)
    tokenizer = model.tokenizer
    ids = [*[tokenizer.token_to_id(i) for i in history][-5:], tokenizer.eos_id]
    with torch.no_grad():
        scores = model.network.scores(torch.tensor([ids]), torch.tensor([len(ids)]))[0]
    ranked = [
        (tokenizer.id_to_token(i), float(scores[i]))
        for i in range(tokenizer.vocab_size)
        if i not in tokenizer.special_ids and tokenizer.id_to_token(i) not in history
    ]
    return sorted(ranked, key=lambda pair: -pair[1])


def test_command_prints_the_best_items_with_their_scores(model_dir, capsys):
    assert (
        main(
            [
                "recommend",
                "--model",
                str(model_dir),
                "--history",
                "12 345 7",
                "--top-k",
                "3",
                "--json",
            ]
        )
        == 0
    )
    items = json.loads(capsys.readouterr().out)["items"]
    want = expected(model_dir, ["12", "345", "7"])[:3]
    assert [e["item"] for e in items] == [item for item, _ in want]
    assert [e["score"] for e in items] == pytest.approx([score for _, score in want], rel=1e-5)


def test_long_history_keeps_its_most_recent_items(model_dir):
    history = ["5", "6", "8", "12", "345", "7", "99"]  # 7 items, the model reads 5
    got = top_items(seqweave.load(model_dir), [" ".join(history)], 1)[0]
    assert got[0]["item"] == expected(model_dir, history)[0][0]


@pytest.mark.parametrize(
    "history, fragment",
    [("12 424242 7", "424242"), ("12 <unk>", "<unk>"), ("   ", "history is empty")],
)
def test_command_names_unknown_items(model_dir, capsys, history, fragment):
    assert main(["recommend", "--model", str(model_dir), "--history", history]) == 2
    error = capsys.readouterr().err
    assert fragment in error and "error" in error


def test_server_recommends_as_the_command_does(model_dir):
    from fastapi.testclient import TestClient

    from seqweave.serve import ServeConfig, build

    app, _server = build(ServeConfig(model=str(model_dir)), load_now=True)
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "the model did not load"
            time.sleep(0.02)
        answer = client.post("/v1/recommend", json={"history": ["12", "345", "7"], "top_k": 3})
        assert answer.status_code == 200
        want = expected(model_dir, ["12", "345", "7"])[:3]
        assert [e["item"] for e in answer.json()["items"]] == [item for item, _ in want]
        unknown = client.post("/v1/recommend", json={"history": "12 424242"})
        assert unknown.status_code == 422 and "424242" in unknown.json()["error"]["message"]
        bad = client.post("/v1/recommend", json={"history": "12", "top_k": 0})
        assert bad.status_code == 422
        paths = client.get("/openapi.json").json()["paths"]
        assert "/v1/recommend" in paths and "/v1/generate" not in paths
        generate = client.post("/v1/generate", json={"inputs": "12 345"})
        assert generate.status_code == 422 and "recommend" in generate.json()["error"]["message"]


def test_training_validates_a_recommender_by_ranking(tmp_path):
    from seqweave.train import train

    rows = [{"source": " ".join(ITEMS[i : i + 3]), "target": ITEMS[i + 3]} for i in range(5)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = ExperimentConfig(
        model=ModelConfig(
            architecture="sasrec",
            position="learned",
            d_model=16,
            num_heads=2,
            decoder_layers=1,
            ffn_dim=32,
            dropout=0.0,
            max_positions=8,
        ),
        train=TrainConfig(
            out_dir=str(tmp_path / "run"),
            max_steps=3,
            validate_every=3,
            warmup_steps=1,
            metric="none",
            progress=False,
            device="cpu",
            label_smoothing=0.0,
        ),
    )
    from dataclasses import replace

    from seqweave.config import DataConfig, TokenizerConfig

    config = replace(
        config,
        tokenizer=TokenizerConfig(kind="words", min_frequency=1, vocab_size=0),
        data=DataConfig(train=str(data), valid=str(data), max_source_len=8, max_target_len=2),
    )
    train(config)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["kind"] == "valid"][-1]
    assert 0 <= valid["valid_full_ndcg@10"] <= 1 and valid["score"] == valid["valid_full_ndcg@10"]
    assert "valid_sampled100_hr@10" not in valid  # fewer than 100 items to sample from
