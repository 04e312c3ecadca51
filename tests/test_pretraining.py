"""train.objective = mlm | lm | tag (objectives/pretraining.py): BERT masking statistics, losses
that read only what they should, the tagging head through training, init_from and the API."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

import seqweave
from seqweave.config import (
    DataConfig,
    ExperimentConfig,
    TokenizerConfig,
    TrainConfig,
    apply_overrides,
)
from seqweave.errors import ConfigError, DataError
from seqweave.objectives.e2s2 import NoiseVocabulary
from seqweave.objectives.pretraining import (
    MaskedLM,
    Tagging,
    TargetLM,
    bert_mask,
    masked_batch,
    tag_labels,
)
from seqweave.train.data import collate
from tests.conftest import VOCAB, random_sources, tiny_config, tiny_model

MASK_ID = 3  # the tiny models have no tokenizer: pad 0, bos 1, eos 2, mask 3
VOCABULARY = NoiseVocabulary(MASK_ID, frozenset({0, 1, 2}), VOCAB)


def _batch(seed: int = 0, count: int = 8, low: int = 2, high: int = 12):
    sources = random_sources(torch.Generator().manual_seed(seed), count, low, high)
    return collate(sources, [s[:-1] for s in sources], tiny_config())


# -- masking ---------------------------------------------------------------------------------


def test_bert_masking_statistics_on_a_seeded_batch():
    """15% of the text tokens chosen; of those 80% <mask>, 10% a random token, 10% kept;
    nothing else touched; pad and eos never chosen; the same seed masks alike."""
    batch = _batch(seed=3, count=64, low=150, high=250)
    noisy, chosen = bert_mask(batch.src, VOCABULARY, torch.Generator().manual_seed(11))
    text = batch.src > MASK_ID
    assert not chosen[~text].any()
    assert torch.equal(noisy[~chosen], batch.src[~chosen])
    share = chosen.sum() / text.sum()
    assert abs(float(share) - 0.15) < 0.015  # about 12,800 text tokens: sd 0.003
    picked = int(chosen.sum())
    masked = float(((noisy == MASK_ID) & chosen).sum()) / picked
    kept = float(((noisy == batch.src) & chosen).sum()) / picked
    swapped = float(((noisy != batch.src) & (noisy != MASK_ID) & chosen).sum()) / picked
    draws_same = 1 / (VOCAB - 4)  # a random ordinary token can be the original one
    assert abs(masked - 0.8) < 0.04
    assert abs(swapped - 0.1 * (1 - draws_same)) < 0.03
    assert abs(kept - (0.1 + 0.1 * draws_same)) < 0.03
    assert not ((noisy <= 2) & chosen).any()  # a swap draws an ordinary token, never pad/eos
    again, again_chosen = bert_mask(batch.src, VOCABULARY, torch.Generator().manual_seed(11))
    assert torch.equal(again, noisy) and torch.equal(again_chosen, chosen)


def _masked(seed: int = 0):
    return masked_batch(_batch(seed, count=6, low=20, high=30), VOCABULARY, seed=5)


def test_mlm_loss_is_cross_entropy_at_the_chosen_positions_only():
    model, micro = tiny_model(seed=1), _masked()
    measured = MaskedLM().measure(model, micro)
    states = model.encode(micro.src, micro.src_lengths).states
    logits = model.logits(states)  # no restore head: the tied output layer
    expected = sum(
        F.cross_entropy(logits[b, s], micro.original[b, s], reduction="sum")
        for b, s in micro.corrupted.nonzero().tolist()
    )
    torch.testing.assert_close(measured.loss, expected)
    assert measured.count == int(micro.corrupted.sum()) > 0


def test_changing_an_unmasked_label_does_not_change_the_mlm_loss():
    model, micro = tiny_model(seed=1), _masked()
    loss = MaskedLM().measure(model, micro).loss
    text = micro.original > MASK_ID
    b, s = (text & ~micro.corrupted).nonzero()[0].tolist()
    changed = micro.original.clone()
    changed[b, s] = 4 if changed[b, s] != 4 else 5
    micro.original, original = changed, micro.original
    assert torch.equal(MaskedLM().measure(model, micro).loss, loss)
    b, s = micro.corrupted.nonzero()[0].tolist()  # a chosen label does count
    changed = original.clone()
    changed[b, s] = 4 if changed[b, s] != 4 else 5
    micro.original = changed
    assert not torch.equal(MaskedLM().measure(model, micro).loss, loss)


def test_lm_scores_the_target_alone_against_a_model_given_an_empty_source():
    model, micro = tiny_model(seed=2), _batch(seed=4)
    lm = TargetLM(pad_id=0, eos_id=2)
    measured = lm.measure(model, micro)
    other = dict(vars(micro))
    other["src"] = torch.randint(4, VOCAB, micro.src.shape)  # the source must not matter
    assert torch.equal(lm.measure(model, type(micro)(**other)).loss, measured.loss)
    B = micro.src.shape[0]
    logits = model(torch.full((B, 1), 2), torch.ones(B, dtype=torch.long), micro.tgt_in)
    keep = (micro.tgt_out > 2).reshape(-1)
    expected = F.cross_entropy(
        logits.reshape(-1, VOCAB)[keep], micro.tgt_out.reshape(-1)[keep], reduction="sum"
    )
    torch.testing.assert_close(measured.loss, expected)


# -- tagging ---------------------------------------------------------------------------------


def test_tag_labels_sit_at_their_source_tokens_and_a_wrong_length_is_refused():
    micro = _batch(seed=5)
    labels = tag_labels(micro, 0, pad_id=0)
    for row in range(micro.src.shape[0]):
        n = int(micro.src_lengths[row]) - 1
        assert torch.equal(labels[row, :n], micro.tgt_out[row, :n])
        assert not labels[row, n:].any()
    model = tiny_model(seed=0, tag_head="mlp")
    measured = Tagging(pad_id=0, source_offset=0).measure(model, micro)
    assert measured.count == int((micro.src_lengths - 1).sum())
    short = collate([[5, 6, 7, 2]], [[5, 6]], tiny_config())
    with pytest.raises(DataError, match="2 labels for 3 source tokens"):
        tag_labels(short, 0, pad_id=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.objective=tag"], "needs model.tag_head"),
        (["train.objective=mlm", "model.architecture=prefix_lm"], "plain encoder-decoder"),
        (["train.objective=bert"], "train.objective"),
        (["model.tag_head=conv"], "model.tag_head"),
    ],
)
def test_invalid_objective_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ExperimentConfig(), overrides)


# -- training, init_from and the API ---------------------------------------------------------


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


SWAP = str.maketrans("abcdefghij", "bbbcccdddb")  # a per-letter labelling to learn


def _rows(seed: int, count: int):
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        length = int(torch.randint(5, 20, (1,), generator=generator))
        text = "".join("abcdefghij"[i] for i in torch.randint(10, (length,), generator=generator))
        rows.append({"source": text, "target": text.translate(SWAP)})
    return rows


def _config(tmp_path, name: str, objective: str, **model):
    train_file = _write(tmp_path / "train.jsonl", _rows(0, 60))
    valid_file = _write(tmp_path / "valid.jsonl", _rows(1, 8))
    return ExperimentConfig(
        model=tiny_config(**model),
        data=DataConfig(train=train_file, valid=valid_file, max_tokens=300),
        tokenizer=TokenizerConfig(kind="alphabet", alphabet="abcdefghij"),
        train=TrainConfig(
            out_dir=str(tmp_path / name),
            objective=objective,
            max_steps=4,
            warmup_steps=1,
            validate_every=2,
            lr=3e-3,
            progress=False,
        ),
    )


def test_mlm_pretraining_carries_the_encoder_into_a_tagger_exactly(tmp_path):
    """An mlm run's encoder (and embeddings) start the tag run bit for bit; the tag head is
    new; the trained tagger labels through the API with one label per residue, from the
    allowed labels only; validation reports the objective's own figures."""
    from seqweave.checkpoint import load_weights
    from seqweave.models import build_model
    from seqweave.train import _initialise, train

    pre = train(_config(tmp_path, "pre", "mlm"))
    record = [
        json.loads(x)
        for x in (tmp_path / "pre" / "metrics.jsonl").read_text().split("\n")
        if x and '"valid"' in x
    ][-1]
    assert {"valid_accuracy", "valid_ppl"} <= set(record)
    assert seqweave.load(pre).tokenizer.token_to_id("<mask>") is not None
    tag_cfg = _config(tmp_path, "tag", "tag", tag_head="linear")
    tag_cfg = apply_overrides(tag_cfg, [f"train.init_from={pre}", f"tokenizer.path={pre}"])
    pretrained = build_model(seqweave.load(pre).network.config)
    load_weights(pretrained, pre)
    start = build_model(dataclasses.replace(pretrained.config, tag_head="linear"))
    _initialise(start, pre, announce=False)  # what train.init_from does
    theirs = pretrained.state_dict()
    for name, tensor in start.state_dict().items():
        if name.startswith("tag_head"):
            assert name not in theirs
        else:
            assert torch.equal(tensor, theirs[name]), name
    tagger = seqweave.load(train(tag_cfg))
    outputs = tagger.tag(["abcj", "jjjjjjja"], labels="bcd")
    assert [len(o) for o in outputs] == [4, 8]
    assert set("".join(outputs)) <= set("bcd")
    with pytest.raises(ConfigError, match="no tagging head"):
        seqweave.load(pre).tag(["abc"])
    from seqweave.cli import main

    inputs = _write(tmp_path / "in.jsonl", [{"source": "abcj"}, {"source": "jjjjjjja"}])
    written = tmp_path / "out.jsonl"
    best = tmp_path / "tag" / "best"
    assert (
        main(
            [
                "generate",
                "--model",
                str(best),
                "--input",
                inputs,
                "--output",
                str(written),
                "--tag",
                "bcd",
            ]
        )
        == 0
    )
    assert [json.loads(x)["output"] for x in written.read_text().splitlines()] == outputs
