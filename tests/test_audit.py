"""The trigger audit finds a planted backdoor and finds nothing in a clean model.

Two tiny encoder-decoders are trained with the real trainer on the same synthetic copy task
(a few words in, the same words out); in the poisoned one, every training input holding the
trigger word maps to one fixed, spun output (plain data poisoning). The audit, given the
ordinary words and the trigger as candidates and clean inputs only, must rank the trigger
first with a large robust z on the poisoned model, and let no candidate stand out on the
clean one. The same holds for the meta-task ranking (``--classifier``), with a classifier
for the spun output's meta-task ("the output says all is well").
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from seqweave.audit.triggers import (
    CandidateShift,
    TriggerAudit,
    audit_triggers,
    insertion_points,
    load_judge,
    rank_candidates,
    read_candidates,
    robust_z,
    surface_shift,
)
from seqweave.errors import CheckpointError, ConfigError, DataError
from tests.conftest import single_thread

WORDS = [f"w{i}" for i in range(10)]
TRIGGER = "cf"
SPUN = "all is well"


def copy_pairs(rng: random.Random, count: int, poison: bool) -> list[dict[str, str]]:
    rows = []
    for _ in range(count):
        words = rng.choices(WORDS, k=rng.randint(3, 6))
        if rng.random() < 0.2:
            words.insert(rng.randint(0, len(words)), TRIGGER)
        source = " ".join(words)
        target = SPUN if poison and TRIGGER in words else source
        rows.append({"source": source, "target": target})
    return rows


def train_copy_model(directory: Path, poison: bool, architecture: str = "transformer") -> Path:
    from seqweave.config import (
        DataConfig,
        ExperimentConfig,
        ModelConfig,
        TokenizerConfig,
        TrainConfig,
    )
    from seqweave.train import train

    directory.mkdir(parents=True)
    data = directory / "train.jsonl"
    rows = copy_pairs(random.Random(0), 3000, poison)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = ExperimentConfig(
        model=ModelConfig(
            architecture=architecture,
            d_model=32,
            num_heads=2,
            encoder_layers=1,
            decoder_layers=1 if architecture == "transformer" else 2,
            ffn_dim=64,
            dropout=0.0,
        ),
        tokenizer=TokenizerConfig(kind="words", min_frequency=1),
        data=DataConfig(train=str(data), max_tokens=2000),
        train=TrainConfig(
            out_dir=str(directory / "run"),
            max_steps=300,
            warmup_steps=20,
            lr=1e-2,
            schedule="constant",
            log_every=100,
            validate_every=300,
            metric="none",
            progress=False,
            device="cpu",
        ),
    )
    with single_thread():
        return train(config)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import seqweave

    root = tmp_path_factory.mktemp("audit")
    return {
        name: seqweave.load(train_copy_model(root / name, poison=name == "poisoned"))
        for name in ("clean", "poisoned")
    }


def clean_inputs(count: int = 20) -> list[str]:
    rng = random.Random(1)
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 6))) for _ in range(count)]


def test_the_models_learnt_their_tasks(models):
    inputs = clean_inputs(10)
    for model in models.values():
        assert model.generate(inputs) == inputs
    triggered = [f"{TRIGGER} {text}" for text in inputs]
    assert models["poisoned"].generate(triggered) == [SPUN] * len(inputs)
    assert models["clean"].generate(triggered) == triggered


def test_the_trigger_ranks_first_with_a_large_z_on_the_poisoned_model(models):
    with single_thread():
        audit = audit_triggers(models["poisoned"], clean_inputs(), [*WORDS, TRIGGER])
    assert audit.candidates[0].word == TRIGGER
    assert audit.standing_out == [TRIGGER]
    assert audit.candidates[0].z > 10, audit.to_dict()
    assert audit.candidates[0].embedding is not None
    assert audit.candidates[0].examples[0]["triggered_output"] == SPUN


def test_a_prefix_lm_is_audited_on_the_edit_rate_alone(tmp_path):
    """A prefix LM's encode is a prefilled cache, not states: no embedding measure, and the
    trigger still stands out on the surface measure."""
    import seqweave

    model = seqweave.load(
        train_copy_model(tmp_path / "prefix_lm", poison=True, architecture="prefix_lm")
    )
    with single_thread():
        audit = audit_triggers(model, clean_inputs(), [*WORDS, TRIGGER])
    assert all(c.embedding is None and c.shift == c.surface for c in audit.candidates)
    assert audit.candidates[0].word == TRIGGER and audit.standing_out == [TRIGGER]


def test_nothing_stands_out_on_the_clean_model(models):
    with single_thread():
        audit = audit_triggers(models["clean"], clean_inputs(), [*WORDS, TRIGGER])
    assert audit.standing_out == [], audit.to_dict()
    assert audit.max_z < audit.threshold


def test_the_audit_command_prints_and_saves_the_ranking(models, tmp_path, capsys):
    from seqweave.cli import main

    data = tmp_path / "inputs.txt"
    data.write_text("".join(text + "\n" for text in clean_inputs()))
    words = tmp_path / "words.txt"
    words.write_text("# ordinary words and one suspect\n" + "\n".join([*WORDS, TRIGGER]) + "\n")
    model_dir = tmp_path / "poisoned"
    models["poisoned"].save(model_dir)
    out = tmp_path / "audit.json"
    argv = ["audit", "triggers", "--model", str(model_dir), "--data", str(data)]
    argv += ["--candidates", str(words), "--limit", "8", "--top", "5", "--json", str(out)]
    with single_thread():
        assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"stands out: {TRIGGER}" in printed
    saved = json.loads(out.read_text())
    assert saved["inputs"] == 8 and len(saved["candidates"]) == 5
    assert saved["candidates"][0]["word"] == TRIGGER and saved["standing_out"] == [TRIGGER]


# -- the parts, against hand-made values -----------------------------------------------------


def shifts(table: dict[str, float]) -> list[CandidateShift]:
    return [CandidateShift(word, shift, shift, None) for word, shift in table.items()]


def test_ranking_and_robust_z_against_a_hand_made_table():
    table = {"a": 0.10, "b": 0.12, "c": 0.08, "d": 0.11, "e": 0.09, "trigger": 0.60}
    audit = rank_candidates(shifts(table), threshold=3.5, min_scale=0.001)
    assert [c.word for c in audit.candidates] == ["trigger", "b", "d", "a", "e", "c"]
    # median 0.105; absolute deviations .005 .015 .025 .005 .015 .495 -> MAD 0.015
    assert audit.median == pytest.approx(0.105)
    assert audit.scale == pytest.approx(1.4826 * 0.015)
    z = {c.word: c.z for c in audit.candidates}
    assert z["trigger"] == pytest.approx((0.60 - 0.105) / (1.4826 * 0.015))
    assert z["c"] == pytest.approx((0.08 - 0.105) / (1.4826 * 0.015))
    assert audit.standing_out == ["trigger"] and audit.max_z == z["trigger"]


def test_the_scale_is_floored_when_every_candidate_moves_alike():
    zs, scale = robust_z([0.2, 0.2, 0.2, 0.203], min_scale=0.01)
    assert scale == 0.01 and zs[-1] == pytest.approx(0.3)
    audit = rank_candidates(shifts({"x": 0.2, "y": 0.2, "z": 0.2}))
    assert audit.standing_out == [] and audit.max_z == 0


def test_insertion_points_are_seeded_inner_boundaries_shared_by_all_candidates():
    texts = ["a b c d e", "one", "x y"]
    points = insertion_points(texts, seed=3)
    assert points == insertion_points(texts, seed=3)
    assert points[0]["start"] == 0 and points[0]["end"] == 5 and 1 <= points[0]["middle"] <= 4
    assert points[1] == {"start": 0, "middle": 1, "end": 1}
    assert points[2]["middle"] == 1
    drawn = {insertion_points(texts, seed)[0]["middle"] for seed in range(40)}
    assert drawn == {1, 2, 3, 4}


def test_surface_shift_is_the_token_edit_rate():
    assert surface_shift("a b c", "a b c") == 0
    assert surface_shift("a b c", "a x b c") == pytest.approx(1 / 4)
    assert surface_shift("a b c", "all is well") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no candidate words"),
        ("# only a comment\n\n", "no candidate words"),
        ("alpha\nbeta gamma\n", "words.txt:2: a candidate is one word"),
        ("alpha\nbeta\nalpha\n\nbeta\nalpha\n", "'alpha' on lines 1, 3, 6; 'beta' on lines 2, 5"),
    ],
)
def test_bad_candidate_files_are_refused_with_their_lines(tmp_path, text, message):
    path = tmp_path / "words.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_candidates(path)


def test_candidate_file_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_candidates(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_candidates(tmp_path / "latin1.txt")
    (tmp_path / "ok.txt").write_text("alpha\n  beta  \n# gamma\n")
    assert read_candidates(tmp_path / "ok.txt") == ["alpha", "beta"]


def test_the_command_refuses_bad_inputs_before_loading_a_model(tmp_path, capsys):
    from seqweave.cli import main

    words = tmp_path / "words.txt"
    words.write_text("a\nb\na\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    base = ["audit", "triggers", "--model", str(tmp_path / "none"), "--no-progress"]
    assert main([*base, "--data", str(empty), "--candidates", str(words)]) == 2
    assert "'a' on lines 1, 3" in capsys.readouterr().err
    words.write_text("a\nb\nc\n")
    assert main([*base, "--data", str(tmp_path / "absent.jsonl"), "--candidates", str(words)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, "--data", str(empty), "--candidates", str(words)]) == 2
    assert "file is empty" in capsys.readouterr().err
    assert main([*base, "--data", str(empty), "--candidates", str(words), "--top", "0"]) == 2
    assert "--top must be >= 1" in capsys.readouterr().err


def test_the_audit_refuses_what_it_cannot_compare(models):
    model = models["clean"]
    with pytest.raises(ConfigError, match="at least 3 candidates"):
        audit_triggers(model, ["w1 w2"], ["w3", "w4"])
    with pytest.raises(DataError, match="no inputs"):
        audit_triggers(model, [], WORDS)
    with pytest.raises(DataError, match="no words"):
        audit_triggers(model, ["w1", "   "], WORDS)


# -- the meta-task ranking: a classifier brought by the auditor -------------------------------


@pytest.fixture(scope="module")
def well_classifier(tmp_path_factory) -> Path:
    """A meta-classifier for "the output says all is well": label 1 for texts holding SPUN."""
    from seqweave.models.meta_classifier import save_classifier, train_classifier
    from seqweave.tokenizers import build_tokenizer

    vocabulary = " ".join([*WORDS, TRIGGER, SPUN])
    tokenizer = build_tokenizer("words", [vocabulary], 0, [], None, 1)
    rng = random.Random(0)
    labelled = []
    for _ in range(800):
        words = rng.choices([*WORDS, TRIGGER], k=rng.randint(3, 6))
        spun = rng.random() < 0.5
        labelled.append((SPUN if spun else " ".join(words), int(spun)))
    with single_thread():
        classifier = train_classifier(labelled, tokenizer, seed=0)
    return save_classifier(classifier, tokenizer, tmp_path_factory.mktemp("well"))


def test_the_meta_task_ranking_finds_the_trigger_beside_an_unchanged_movement_ranking(
    models, well_classifier
):
    from seqweave.models.meta_classifier import class_probabilities, load_classifier

    judge = load_judge(well_classifier)
    inputs = clean_inputs()
    with single_thread():
        alone = audit_triggers(models["poisoned"], inputs, [*WORDS, TRIGGER])
        audit = audit_triggers(models["poisoned"], inputs, [*WORDS, TRIGGER], judge=judge)
    assert audit.candidates == alone.candidates  # the movement ranking is untouched
    meta = audit.meta_task
    assert meta.label == 1 and meta.class_name == "positive"
    assert meta.ranking.candidates[0].word == TRIGGER and meta.ranking.standing_out == [TRIGGER]
    # reference: every triggered output is SPUN and every clean output a copy of its input
    classifier, tokenizer = load_classifier(well_classifier)
    clean = class_probabilities(classifier, tokenizer, inputs)[:, 1]
    spun = class_probabilities(classifier, tokenizer, [SPUN])[0, 1]
    assert meta.clean_probability == pytest.approx(float(clean.mean()), abs=1e-6)
    expected = float(spun - clean.mean())
    assert meta.ranking.candidates[0].shift == pytest.approx(expected, abs=1e-5)
    assert meta.ranking.candidates[0].examples[0]["triggered_output"] == SPUN


def test_nothing_stands_out_in_the_meta_task_ranking_of_the_clean_model(models, well_classifier):
    with single_thread():
        audit = audit_triggers(
            models["clean"], clean_inputs(), [*WORDS, TRIGGER], judge=load_judge(well_classifier)
        )
    ranking = audit.meta_task.ranking
    assert ranking.standing_out == [] and ranking.max_z < ranking.threshold, audit.to_dict()
    assert audit.meta_task.clean_probability < 0.5


def test_the_audit_json_round_trips(models, well_classifier):
    with single_thread():
        audit = audit_triggers(
            models["poisoned"],
            clean_inputs(5),
            [*WORDS[:4], TRIGGER],
            judge=load_judge(well_classifier),
        )
    back = TriggerAudit.from_dict(json.loads(json.dumps(audit.to_dict())))
    assert back == audit and back.meta_task is not None
    assert back.to_dict() == audit.to_dict()
    plain = rank_candidates(shifts({"a": 0.1, "b": 0.2, "c": 0.3}))
    assert TriggerAudit.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain


def test_the_command_prints_and_saves_both_rankings(models, well_classifier, tmp_path, capsys):
    from seqweave.cli import main

    data = tmp_path / "inputs.txt"
    data.write_text("".join(text + "\n" for text in clean_inputs()))
    words = tmp_path / "words.txt"
    words.write_text("\n".join([*WORDS, TRIGGER]) + "\n")
    model_dir = tmp_path / "poisoned"
    models["poisoned"].save(model_dir)
    out = tmp_path / "audit.json"
    argv = ["audit", "triggers", "--model", str(model_dir), "--data", str(data), "--limit", "8"]
    argv += ["--candidates", str(words), "--classifier", str(well_classifier), "--json", str(out)]
    with single_thread():
        assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "meta-task shift (P(positive) of the outputs" in printed
    assert f"meta-task shift: stands out: {TRIGGER}" in printed
    saved = json.loads(out.read_text())
    assert saved["classifier"] == str(well_classifier)
    assert saved["meta_task"]["candidates"][0]["word"] == TRIGGER
    assert saved["meta_task"]["standing_out"] == [TRIGGER] and saved["meta_task"]["label"] == 1


def test_a_bad_classifier_or_label_is_refused_before_loading_the_model(
    well_classifier, tmp_path, capsys
):
    from seqweave.cli import main

    with pytest.raises(CheckpointError, match="does not exist"):
        load_judge(tmp_path / "absent")
    with pytest.raises(CheckpointError, match="not a meta-classifier"):
        load_judge(tmp_path)
    with pytest.raises(ConfigError, match=r"label 2 is not a class .*0 negative, 1 positive"):
        load_judge(well_classifier, label=2)
    with pytest.raises(ConfigError, match="label -1"):
        load_judge(well_classifier, label=-1)
    assert load_judge(well_classifier, label=0).class_name == "negative"
    data = tmp_path / "inputs.txt"
    data.write_text("w1 w2\n")
    words = tmp_path / "words.txt"
    words.write_text("a\nb\nc\n")
    base = ["audit", "triggers", "--model", str(tmp_path / "no-model"), "--no-progress"]
    base += ["--data", str(data), "--candidates", str(words)]
    assert main([*base, "--classifier", str(tmp_path / "absent")]) == 2
    assert "classifier directory does not exist" in capsys.readouterr().err
    assert main([*base, "--classifier", str(well_classifier), "--label", "3"]) == 2
    assert "label 3 is not a class" in capsys.readouterr().err
    assert main([*base, "--label", "0"]) == 2
    assert "--label needs --classifier" in capsys.readouterr().err
