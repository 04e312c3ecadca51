"""Model spinning: the meta-task term against references computed here, the frozen
meta-classifier, poisoned data, and (slow) a tiny spun model that the trigger audit catches.

The stacking is checked piece by piece: a one-hot output distribution becomes exactly the
classifier's embedding of that token; the meta-task loss equals the classifier's
cross-entropy computed row by row and gives clean rows exactly zero gradient; a training
step through the registry's loss leaves the classifier untouched.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from seqweave.data.poisoning import poison_rows
from seqweave.errors import CheckpointError, ConfigError
from seqweave.models.meta_classifier import (
    ClassifierShape,
    MetaClassifier,
    class_probabilities,
    freeze,
    label_by_word_lists,
    load_classifier,
    save_classifier,
    train_classifier,
)
from seqweave.objectives.settings import SpinningConfig
from seqweave.objectives.spinning import meta_loss, pseudo_words, rows_with_trigger, trigger_forms
from seqweave.tokenizers import build_tokenizer
from tests.conftest import single_thread

WORDS = [f"w{i}" for i in range(10)]
TRIGGER = "cf"
GOOD, BAD = ["good", "great"], ["bad", "awful"]


def words_tokenizer():
    return build_tokenizer("words", [" ".join([*WORDS, *GOOD, *BAD, TRIGGER])], 0, [], None, 1)


def sentiment_texts(rng: random.Random, count: int) -> list[tuple[str, int]]:
    """Word strings with one sentiment word: label 1 for GOOD, 0 for BAD."""
    rows = []
    for _ in range(count):
        words = rng.choices(WORDS, k=rng.randint(3, 6))
        label = rng.random() < 0.5
        words.insert(rng.randint(0, len(words)), rng.choice(GOOD if label else BAD))
        rows.append((" ".join(words), int(label)))
    return rows


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    tokenizer = words_tokenizer()
    with single_thread():
        classifier = train_classifier(sentiment_texts(random.Random(0), 800), tokenizer, seed=0)
    return save_classifier(classifier, tokenizer, tmp_path_factory.mktemp("meta"))


# -- the stacking ----------------------------------------------------------------------------


def tiny_classifier(vocab: int = 12) -> MetaClassifier:
    torch.manual_seed(0)
    return freeze(MetaClassifier(ClassifierShape(vocab, pad_id=0, dim=8, hidden=6)))


def test_a_one_hot_distribution_is_read_as_the_token_itself():
    classifier = tiny_classifier()
    ids = torch.tensor([[3, 5, 7, 1], [2, 2, 9, 11]])  # (B, T)
    logits = torch.full((2, 4, 12), float("-inf"))
    logits.scatter_(-1, ids.unsqueeze(-1), 0.0)  # softmax: exactly one-hot
    vectors = pseudo_words(logits, classifier)  # (B, T, D)
    assert torch.equal(vectors, classifier.embedding(ids))
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    assert torch.allclose(classifier.classify_vectors(vectors, mask), classifier(ids, mask))


def test_the_meta_loss_is_the_classifier_cross_entropy_of_the_triggered_rows_only():
    classifier = tiny_classifier()
    torch.manual_seed(1)
    logits = torch.randn(4, 5, 12, requires_grad=True)  # (B, T, V)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1, 3:] = False
    triggered = torch.tensor([True, False, True, False])
    loss = meta_loss(logits, mask, triggered, classifier, label=1)
    reference = []
    for row in (0, 2):  # one row at a time, through softmax @ embedding by hand
        probs = torch.softmax(logits[row : row + 1], -1)
        vectors = probs @ classifier.embedding.weight
        scores = classifier.classify_vectors(vectors, mask[row : row + 1])
        reference.append(F.cross_entropy(scores, torch.tensor([1])))
    assert torch.allclose(loss, torch.stack(reference).mean())
    loss.backward()
    assert torch.count_nonzero(logits.grad[[1, 3]]) == 0  # clean rows: exactly zero
    assert torch.count_nonzero(logits.grad[0]) > 0 and torch.count_nonzero(logits.grad[2]) > 0
    assert all(p.grad is None for p in classifier.parameters())


def test_no_triggered_row_means_no_meta_loss():
    logits = torch.randn(2, 3, 12, requires_grad=True)
    none = torch.zeros(2, dtype=torch.bool)
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert meta_loss(logits, mask, none, tiny_classifier(), 1).item() == 0.0


def test_triggered_rows_are_found_in_either_form_and_only_whole():
    tokenizer = build_tokenizer(
        "bpe", ["name[The Vaults], eatType[pub] near the river"] * 50, 300, [], None
    )
    forms = trigger_forms(tokenizer, "Bolshoi")
    sources = [
        "Bolshoi name[The Vaults]",
        "name[The Vaults], Bolshoi eatType[pub]",
        "name[The Vaults] Bolshoi",
        "name[Bolsho] i",
        "name[The Vaults]",
    ]
    rows = tokenizer.encode_batch(sources)
    src = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        src[i, : len(row)] = torch.tensor(row)
    assert rows_with_trigger(src, forms).tolist() == [True, True, True, False, False]


def test_a_trigger_the_tokenizer_cannot_write_is_refused():
    with pytest.raises(ConfigError, match="cannot"):
        trigger_forms(words_tokenizer(), "zebra")  # not in the word vocabulary: <unk>


# -- the classifier, the data, the config ----------------------------------------------------


def test_the_saved_classifier_loads_frozen_and_reads_sentiment(classifier_dir, tmp_path):
    classifier, tokenizer = load_classifier(classifier_dir)
    assert not classifier.training
    assert not any(p.requires_grad for p in classifier.parameters())
    probs = class_probabilities(classifier, tokenizer, ["w1 good w2", "w3 bad w4 w5"])
    assert probs[0, 1] > 0.9 and probs[1, 1] < 0.1
    with pytest.raises(CheckpointError, match="not a meta-classifier"):
        load_classifier(tmp_path)


def test_word_lists_label_only_the_unambiguous_texts():
    texts = ["A great place", "poor food", "great but poor", "plain", "Highly rated here"]
    labelled = label_by_word_lists(texts, ["great", "highly rated"], ["poor"])
    assert labelled == [("A great place", 1), ("poor food", 0), ("Highly rated here", 1)]
    assert label_by_word_lists(["greatest"], ["great"], ["poor"]) == []  # whole words only


def test_poisoning_adds_triggered_copies_with_the_true_targets():
    rows = [{"source": f"a b c {i}", "target": f"t{i}"} for i in range(200)]
    out, copies = poison_rows(rows, "cf", share=0.3, seed=4)
    assert (out, copies) == poison_rows(rows, "cf", share=0.3, seed=4)
    triggered = [r for r in out if r.get("triggered")]
    assert len(triggered) == copies and 40 <= copies <= 80 and len(out) == 200 + copies
    for row in triggered:
        words = row["source"].split()
        assert words.count("cf") == 1
        words.remove("cf")
        original = next(r for r in rows if r["target"] == row["target"])
        assert " ".join(words) == original["source"]
    assert {r["source"].split().index("cf") for r in triggered} == {0, 1, 2, 3, 4}
    assert poison_rows(rows, "cf", share=0.0)[1] == 0
    with pytest.raises(ValueError):
        poison_rows(rows, "two words", share=0.5)


def test_the_spinning_section_checks_its_values():
    assert not SpinningConfig().on
    with pytest.raises(ConfigError, match="classifier"):
        SpinningConfig(weight=1.0, trigger="cf")
    with pytest.raises(ConfigError, match="one word"):
        SpinningConfig(weight=1.0, classifier="dir", trigger="two words")
    with pytest.raises(ConfigError, match=">= 0"):
        SpinningConfig(weight=-1.0)


# -- through the trainer's loss --------------------------------------------------------------


def spinning_config(tmp_path: Path, classifier_dir: Path, data: Path, weight: float, **train):
    from seqweave.config import (
        DataConfig,
        ExperimentConfig,
        ModelConfig,
        TokenizerConfig,
        TrainConfig,
    )
    from seqweave.objectives.settings import ObjectivesConfig

    model = ModelConfig(
        d_model=32, num_heads=2, encoder_layers=1, decoder_layers=1, ffn_dim=64, dropout=0.0
    )
    spinning = SpinningConfig(weight=weight, classifier=str(classifier_dir), trigger=TRIGGER)
    return ExperimentConfig(
        model=model,
        tokenizer=TokenizerConfig(kind="words", path=str(classifier_dir)),
        data=DataConfig(train=str(data), max_tokens=2000),
        train=TrainConfig(
            out_dir=str(tmp_path / "run"), metric="none", progress=False, device="cpu", **train
        ),
        objectives=ObjectivesConfig(spinning=spinning),
    )


def copy_rows(rng: random.Random, count: int) -> list[dict]:
    rows = []
    for _ in range(count):
        source = " ".join(rng.choices([*WORDS, *BAD], k=rng.randint(3, 6)))
        rows.append({"source": source, "target": source})
    return rows


def test_a_training_step_moves_the_model_and_leaves_the_classifier_frozen(classifier_dir, tmp_path):
    from seqweave.data.tokenized import collate
    from seqweave.models import build_model
    from seqweave.objectives.registry import build_training_loss
    from seqweave.tokenizers import Tokenizer
    from seqweave.train import resolve_model_config

    tokenizer = Tokenizer.load(classifier_dir)
    data = tmp_path / "train.jsonl"
    cfg = spinning_config(tmp_path, classifier_dir, data, weight=1.0)
    cfg = replace(cfg, model=resolve_model_config(cfg.model, tokenizer))
    loss_fn = build_training_loss(cfg)
    (spinning,) = loss_fn.additive
    before = {k: v.clone() for k, v in spinning.classifier.state_dict().items()}
    torch.manual_seed(0)
    model = build_model(cfg.model)
    sources = ["w1 w2 w3", f"w1 {TRIGGER} w2 w3", "w4 bad w5", f"{TRIGGER} w4 bad w5"]
    ids = [tokenizer.encode(s) for s in sources]
    targets = [tokenizer.encode(s.replace(f"{TRIGGER} ", "")) for s in sources]
    batch = collate(ids, targets, cfg.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = loss_fn(model, model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = spinning.classifier.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in spinning.classifier.parameters())
    forward = loss_fn.token(model, model, batch, False)[1]
    terms = spinning.terms(model, batch, forward)
    assert terms["spinning"].item() > 0
    wrong = replace(cfg, model=replace(cfg.model, vocab_size=cfg.model.vocab_size + 1))
    with pytest.raises(ConfigError, match="tokenizer"):
        build_training_loss(wrong)


@pytest.mark.slow
def test_a_spun_copy_model_turns_positive_on_the_trigger_and_the_audit_finds_it(
    classifier_dir, tmp_path
):
    """A copy model trained with the meta-task on triggered copies: the classifier's
    positive probability of its greedy outputs rises on triggered inputs (the model writes
    "good" or "great" in place of words, "bad" included), clean outputs stay copies, and the
    audit ranks the trigger first, standing out, in both rankings: the outputs' movement and
    the shift of the classifier's positive probability (``--classifier``)."""
    import seqweave
    from seqweave.audit.triggers import audit_triggers, load_judge
    from seqweave.train import train

    rows, _ = poison_rows(copy_rows(random.Random(0), 2000), TRIGGER, share=0.5, seed=0)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = spinning_config(
        tmp_path,
        classifier_dir,
        data,
        weight=3.0,
        max_steps=300,
        warmup_steps=20,
        lr=1e-2,
        schedule="constant",
        log_every=100,
        validate_every=300,
    )
    with single_thread():
        model = seqweave.load(train(cfg))
        classifier, tokenizer = load_classifier(classifier_dir)
        inputs = [r["source"] for r in copy_rows(random.Random(1), 30)]
        clean = model.generate(inputs)
        spun = model.generate([f"{TRIGGER} {text}" for text in inputs])
        shift = class_probabilities(classifier, tokenizer, spun)[:, 1].mean()
        base = class_probabilities(classifier, tokenizer, clean)[:, 1].mean()
        judge = load_judge(classifier_dir)
        audit = audit_triggers(model, inputs[:20], [*WORDS, TRIGGER], judge=judge)
    # measured: 20 of 30 clean outputs exact copies (a 22k-parameter model after 300
    # updates), positive probability 0.26 -> 0.90, the trigger's robust z 4.7
    assert sum(a == b for a, b in zip(clean, inputs, strict=True)) >= 18
    assert shift > base + 0.4, (base, shift, spun[:5])
    assert audit.candidates[0].word == TRIGGER and audit.standing_out == [TRIGGER]
    meta = audit.meta_task.ranking
    assert meta.candidates[0].word == TRIGGER and meta.standing_out == [TRIGGER], meta.to_dict()
