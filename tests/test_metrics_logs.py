"""Log-parsing metrics: hand-worked examples, and properties that any labelling keeps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqweave.metrics_logs import (
    Semantics,
    group_accuracy,
    grouping_f1,
    parsing_accuracy,
    parsing_scores,
    read_semantics,
    semantic_f1,
    template_f1,
)

OPEN, CLOSE, READ, WRITE = "open <*>", "close <*> now", "read <*>", "write <*>"


def test_template_metrics_by_hand() -> None:
    truth = [OPEN, OPEN, CLOSE, CLOSE, READ, WRITE]
    predicted = [OPEN, OPEN, CLOSE, "close 7 now", "<*> <*>", "<*> <*>"]
    # groups: predicted {0,1} {2} {3} {4,5}; true {0,1} {2,3} {4} {5}.
    # GA: only messages 0 and 1 sit in a group equal to their true group: 2/6.
    assert group_accuracy(predicted, truth) == pytest.approx(2 / 6)
    # PA: the texts of messages 0, 1, 2 are right: 3/6.
    assert parsing_accuracy(predicted, truth) == pytest.approx(3 / 6)
    # FGA: 1 of 4 predicted groups equals one of 4 true groups: P = R = 1/4.
    assert grouping_f1(predicted, truth) == pytest.approx(0.25)
    # FTA: that group's text is right too: P = R = 1/4.
    assert template_f1(predicted, truth) == pytest.approx(0.25)


def test_right_groups_with_wrong_text_score_ga_but_not_fta() -> None:
    truth = [OPEN, OPEN, CLOSE]
    predicted = ["open 5", "open 5", CLOSE]
    # both groups are right (GA 1, FGA 1); one of two texts is wrong: FTA P = R = 1/2;
    # PA: only message 2's text is right.
    assert parsing_scores(predicted, truth) == pytest.approx(
        {"GA": 1.0, "PA": 1 / 3, "FGA": 1.0, "FTA": 0.5}
    )


def test_group_ids_need_not_be_texts() -> None:
    # a parser's event ids: E1 merges two true groups, so no message is grouped right
    assert group_accuracy(["E1", "E1", "E1"], [OPEN, OPEN, CLOSE]) == 0.0
    assert grouping_f1(["E1", "E1", "E2"], [OPEN, OPEN, CLOSE]) == 1.0


def test_lengths_must_agree() -> None:
    with pytest.raises(ValueError):
        group_accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        parsing_accuracy([], [])


labels = st.lists(st.integers(0, 5), min_size=1, max_size=30)


@given(labels)
def test_a_perfect_parse_scores_one_everywhere(truth: list[int]) -> None:
    texts = [f"event {t} <*>" for t in truth]
    assert parsing_scores(texts, texts) == {"GA": 1.0, "PA": 1.0, "FGA": 1.0, "FTA": 1.0}


@given(labels, labels, st.permutations(range(6)))
def test_relabelling_groups_changes_no_group_score(
    predicted: list[int], truth: list[int], relabel: list[int]
) -> None:
    n = min(len(predicted), len(truth))
    predicted, truth = predicted[:n], truth[:n]
    renamed = [relabel[p] + 100 for p in predicted]
    assert group_accuracy(renamed, truth) == group_accuracy(predicted, truth)
    assert grouping_f1(renamed, truth) == grouping_f1(predicted, truth)


MESSAGE = "Receiving block blk_1 src : /10.0.0.1:5 dest : /10.0.0.2:6"
GOLD = "Receiving block <*block*> src : <*src*> dest : <*dest*>"


def test_read_semantics_off_a_conceptualized_template() -> None:
    assert read_semantics(GOLD, MESSAGE) == Semantics(
        ("blk_1", "/10.0.0.1:5", "/10.0.0.2:6"),
        ("block", "src", "dest"),
        (("block", "blk_1"), ("src", "/10.0.0.1:5"), ("dest", "/10.0.0.2:6")),
    )
    # a slot inside a word: read by regular expression
    assert read_semantics("blk_<*> size <*size*>", "blk_7 size 12") == Semantics(
        ("7", "12"), ("size",), (("size", "12"),)
    )
    # a template that does not fit the message says nothing
    assert read_semantics("open <*>", "close 5") == Semantics()


def test_semantic_f1_by_hand() -> None:
    predicted = [
        "Receiving block <*block*> src : <*> dest : <*destination*>",
        "Deleting blk_2 now",
    ]
    gold = [GOLD, "Deleting <*block*> now"]
    messages = [MESSAGE, "Deleting blk_2 now"]
    # instances: predicted 3 (all right), true 4: P = 1, R = 3/4, F1 = 6/7.
    # concepts: predicted block, destination; true block, src, dest, block: tp 1,
    # P = 1/2, R = 1/4, F1 = 1/3. Pairs: (block, blk_1) right of 2 predicted, 4 true: 1/3.
    assert semantic_f1(predicted, gold, messages) == pytest.approx(
        {"concept_f1": 1 / 3, "instance_f1": 6 / 7, "pair_f1": 1 / 3}
    )
    assert semantic_f1(gold, gold, messages) == {
        "concept_f1": 1.0,
        "instance_f1": 1.0,
        "pair_f1": 1.0,
    }
