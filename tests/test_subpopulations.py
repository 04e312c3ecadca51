"""Subpopulation discovery (SSD-LLM workflow): planted dimensions are recovered, counts add
up, and the command writes its files and names bad lines.

The planted texts (``seqweave.subpopulations.planted``) fill three sentence templates with
one of four values for each of four dimensions. Each value is a distinct word in a slot of
its own, so the keyword analyst should recover the plan exactly; the thresholds (mean
attribute-set F1 and assignment accuracy >= 0.9 over three seeds) leave room for one missed
attribute out of sixteen (a dimension with three of four values found has F1 0.86, the mean
0.96) and no more.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from seqweave.cli import main
from seqweave.errors import ConfigError, DataError
from seqweave.subpopulations import OTHER, Attribute, Corpus, Dimension, build_analyst, discover
from seqweave.subpopulations.keywords import KeywordAnalyst, words
from seqweave.subpopulations.planted import PLAN, planted_texts, score_recovery
from seqweave.subpopulations.structure import (
    count_structure,
    drop_rare,
    merge_duplicates,
    read_corpus,
)


def corpus_of(texts, labels=None) -> Corpus:
    return Corpus(list(texts), list(range(1, len(texts) + 1)), labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keyword_analyst_recovers_planted_dimensions(seed):
    texts, truth = planted_texts(200, seed=seed)
    _, rows, dimensions = discover(corpus_of(texts), KeywordAnalyst(), progress=False)
    report = score_recovery(dimensions, rows, truth)
    assert report["mean_f1"] >= 0.9 and report["mean_accuracy"] >= 0.9, report
    matched = {report[name]["dimension"] for name in PLAN}
    assert len(matched) == len(PLAN)  # each planted dimension found as a dimension of its own


def test_scoring_notices_a_wrong_structure():
    """The score can fail: one dimension holding colours and subjects together, assigned
    by its highest weight, is neither a full colour nor a full subject dimension."""
    texts, truth = planted_texts(200, seed=0)
    mixed = Dimension("mixed", tuple(Attribute(w, (w,)) for w in PLAN["colour"] + PLAN["subject"]))
    rows = KeywordAnalyst().assign(texts, [mixed])
    report = score_recovery([mixed], rows, truth)
    assert report["colour"]["f1"] < 0.7 and report["place"]["accuracy"] == 0.0


def test_counts_sum_to_the_number_of_texts_overall_and_per_class():
    texts, truth = planted_texts(150, seed=3)
    labels = ["yes" if row["place"] == "beach" else "no" for row in truth]
    structure, rows, dimensions = discover(
        corpus_of(texts, labels), KeywordAnalyst(), sample_size=60, progress=False
    )
    assert structure["texts"] == len(texts) == len(rows)
    for counts in structure["counts"].values():
        assert sum(counts.values()) == len(texts)
    for label, table in structure["classes"].items():
        for counts in table.values():
            assert sum(counts.values()) == labels.count(label)
    place = next(d for d in dimensions if "beach" in d.names())
    assert structure["classes"]["yes"][place.name] == {"beach": labels.count("yes")}


def test_refine_merges_duplicates_and_drops_rare_attributes():
    dimension = Dimension(
        "colour",
        (
            Attribute("Red", ("red",)),
            Attribute("reds", ("crimson",)),
            Attribute("blue"),
            Attribute("teal"),
        ),
    )
    (merged,) = merge_duplicates([dimension, Dimension("Colours", dimension.attributes)])
    assert merged.names() == ["Red", "blue", "teal"]
    assert merged.attributes[0].terms == ("red", "crimson")
    rows = [{"colour": "Red"}] * 60 + [{"colour": "blue"}] * 39 + [{"colour": "teal"}]
    (kept,) = drop_rare([merged], rows, min_share=0.02)
    assert kept.names() == ["Red", "blue"]
    assert drop_rare([merged], rows, min_share=0.5) == []  # one attribute left: not a dimension
    structure = count_structure([kept], [{"colour": "teal"}, {"colour": "Red"}])
    assert structure["counts"]["colour"] == {"Red": 1, "teal": 1}  # unknown names are counted
    assert OTHER == "other"


def test_read_corpus_names_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": 1}\n\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"data.jsonl:3: no field 'label'"):
        read_corpus(path, "text", "label")
    path.write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(DataError, match=r"data.jsonl:2: not valid JSON"):
        read_corpus(path, "text")
    path.write_text('{"text": 5}\n')
    with pytest.raises(DataError, match=r"data.jsonl:1: field 'text' is not a string"):
        read_corpus(path, "text")
    corpus = read_corpus(_write(tmp_path), "text", "y")
    assert corpus.lines == [1, 3] and corpus.labels == ["1", "0"]


def _write(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"text": "a", "y": 1}\n\n{"text": "b", "y": 0}\n')
    return path


def test_build_analyst_rejects_unknown_specs():
    with pytest.raises(ConfigError, match="unknown analyst"):
        build_analyst("gpt")
    with pytest.raises(ConfigError, match="openai:URL"):
        build_analyst("openai:")


def test_command_writes_structure_assignments_and_plot(tmp_path, capsys):
    texts, truth = planted_texts(120, seed=5)
    data = tmp_path / "planted.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": t, "label": r["subject"]}) + "\n"
            for t, r in zip(texts, truth, strict=True)
        )
    )
    output = tmp_path / "out"
    argv = ["analyze", "subpopulations", "--data", str(data), "--text-field", "text"]
    argv += ["--label-field", "label", "--output", str(output), "--no-progress"]
    assert main(argv) == 0
    structure = json.loads((output / "structure.json").read_text())
    assert structure["texts"] == 120 and set(structure["classes"]) == set(PLAN["subject"])
    rows = [json.loads(line) for line in (output / "assignments.jsonl").read_text().splitlines()]
    assert [row["line"] for row in rows] == list(range(1, 121))
    assert set(rows[0]["attributes"]) == set(structure["counts"])
    assert (output / "structure.png").stat().st_size > 0
    assert main([*argv[:3], str(tmp_path / "absent.jsonl"), "--no-progress"]) == 2
    assert "absent.jsonl: file does not exist" in capsys.readouterr().err


def test_group_weights_balance_groups_and_remove_the_association():
    from seqweave.subpopulations.reweight import group_weights, label_association

    labels = ["dog"] * 90 + ["man"] * 10 + ["dog"] * 10 + ["man"] * 90
    places = ["beach"] * 100 + ["street"] * 100
    assert label_association(labels, places) == pytest.approx(0.8)
    assert label_association(labels, ["beach", "street"] * 100) == pytest.approx(0.0)
    weights = group_weights(labels, places)
    assert sum(weights) == pytest.approx(len(labels))
    totals = Counter()
    for label, place, weight in zip(labels, places, weights, strict=True):
        totals[label, place] += weight
    assert all(total == pytest.approx(50.0) for total in totals.values())


def test_two_valued_dimensions_are_found():
    """A dimension with two balanced attributes puts each word in half the texts; the
    candidate filter (``max_df`` 0.75) must keep them (at 0.4 it dropped them)."""
    texts = [
        f"A {subject} in a red shirt is running at the {place}."
        for subject in ("man", "dog")
        for place in ("beach", "street")
        for _ in range(30)
    ]
    _, _, dimensions = discover(corpus_of(texts), KeywordAnalyst(), progress=False)
    found = sorted(sorted(d.names()) for d in dimensions)
    assert found == [["beach", "street"], ["dog", "man"]]


def test_synonym_rate_writes_that_share_of_values_as_synonyms():
    from seqweave.subpopulations.planted import SYNONYMS

    texts, truth = planted_texts(500, seed=0, synonym_rate=0.2)
    written = [
        SYNONYMS[value] in words(text)
        for text, row in zip(texts, truth, strict=True)
        for value in row.values()
    ]
    assert 0.17 < sum(written) / len(written) < 0.23
    exact, _ = planted_texts(500, seed=0)
    assert not any(set(SYNONYMS.values()) & set(words(text)) for text in exact)


def test_attention_still_needs_a_model(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text('{"source": "abc", "target": "cba"}\n')
    assert main(["analyze", "attention", "--data", str(data)]) == 2
    assert "needs --model DIR" in capsys.readouterr().err
    bad = ["analyze", "subpopulations", "--data", str(data), "--min-share", "1.5"]
    assert main(bad) == 2
    assert "--min-share must be in [0, 1)" in capsys.readouterr().err
