"""Metrics for log parsing, as the log-parsing literature computes them.

Template extraction (one template per message; a *group* is the set of messages given
the same label: a parser's event id, or the template text itself):

- ``group_accuracy`` (GA, Zhu et al. 2019): the share of messages whose predicted group
  holds exactly the messages of their true group. It never looks at template text, so a
  parser can score GA 1.0 with every template wrong.
- ``parsing_accuracy`` (PA): the share of messages whose template is exactly right,
  character for character.
- ``grouping_f1`` (FGA) and ``template_f1`` (FTA), Khan et al. 2022: F1 over templates
  rather than messages, so a rare template counts as much as one seen 1,000 times. A
  predicted group is correct for FGA when it equals a true group as a set of messages; for
  FTA when, besides, its template text equals the true one. Precision divides by the
  number of predicted groups, recall by the number of true groups.

Semantic parsing (SemParser, Huo et al. 2023): a *conceptualized template* writes an
instance (a variable's value) named by a concept as ``<*concept*>`` and one without a
concept as ``<*>``, e.g. ``Receiving block <*block*> src : <*src*> dest : <*dest*>``.
``read_semantics`` reads off the message, for each slot, the instance in it and, where
the slot is named, the (concept, instance) pair. ``semantic_f1`` scores concepts,
instances and pairs as micro-averaged F1 over per-message multisets (true positives are
the multiset intersection), the gold side read off the gold template the same way, so
both sides are the same kind of object. Concepts are the concept names of slots: a
concept word with no instance (the ``MA`` tags without a link) is not in a
conceptualized template, so it is not scored here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from seqweave.logparse.templates import parameters, slot_names


def _check(predicted: Sequence, truth: Sequence) -> None:
    if len(predicted) != len(truth) or not truth:
        raise ValueError(f"need equal, non-zero lengths, got {len(predicted)} and {len(truth)}")


def _groups(labels: Sequence[Hashable]) -> dict[Hashable, frozenset[int]]:
    members: dict[Hashable, set[int]] = defaultdict(set)
    for index, label in enumerate(labels):
        members[label].add(index)
    return {label: frozenset(indices) for label, indices in members.items()}


def group_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """GA: the share of messages whose predicted group equals their true group."""
    _check(predicted, truth)
    mine, theirs = _groups(predicted), _groups(truth)
    right = sum(mine[p] == theirs[t] for p, t in zip(predicted, truth, strict=True))
    return right / len(truth)


def parsing_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """PA: the share of messages whose template equals the true one exactly."""
    _check(predicted, truth)
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def _f1(correct: int, predicted: int, truth: int) -> float:
    if correct == 0:
        return 0.0
    precision, recall = correct / predicted, correct / truth
    return 2 * precision * recall / (precision + recall)


def grouping_f1(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """FGA: F1 of predicted groups that equal a true group (as sets of messages)."""
    _check(predicted, truth)
    mine, theirs = _groups(predicted), _groups(truth)
    correct = len(set(mine.values()) & set(theirs.values()))
    return _f1(correct, len(mine), len(theirs))


def template_f1(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """FTA: F1 of predicted templates whose group equals a true group and whose text equals
    that group's true template. Groups are the messages sharing a template text."""
    _check(predicted, truth)
    mine, theirs = _groups(predicted), _groups(truth)
    true_by_members = {members: template for template, members in theirs.items()}
    correct = sum(true_by_members.get(members) == text for text, members in mine.items())
    return _f1(correct, len(mine), len(theirs))


def parsing_scores(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    """GA, PA, FGA and FTA of predicted templates, grouping messages by template text."""
    return {
        "GA": group_accuracy(predicted, truth),
        "PA": parsing_accuracy(predicted, truth),
        "FGA": grouping_f1(predicted, truth),
        "FTA": template_f1(predicted, truth),
    }


@dataclass(frozen=True)
class Semantics:
    """What a conceptualized template says about one message."""

    instances: tuple[str, ...] = ()
    concepts: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()


def read_semantics(template: str, message: str) -> Semantics:
    """Instances, concepts and (concept, instance) pairs of ``message`` under a
    conceptualized ``template``; nothing when the template does not match the message."""
    values = parameters(template, message)
    if values is None:
        return Semantics()
    names = slot_names(template)
    pairs = tuple((n, v) for n, v in zip(names, values, strict=True) if n)
    return Semantics(tuple(values), tuple(n for n, _ in pairs), pairs)


def semantic_f1(
    predicted: Sequence[str], truth: Sequence[str], messages: Sequence[str]
) -> dict[str, float]:
    """Concept, instance and pair F1 (micro-averaged over messages) of predicted
    conceptualized templates against the true ones, both read off ``messages``."""
    _check(predicted, truth)
    _check(messages, truth)
    counts = {kind: [0, 0, 0] for kind in ("concepts", "instances", "pairs")}  # tp, pred, true
    for guess, gold, message in zip(predicted, truth, messages, strict=True):
        mine, theirs = read_semantics(guess, message), read_semantics(gold, message)
        for kind, tally in counts.items():
            a, b = Counter(getattr(mine, kind)), Counter(getattr(theirs, kind))
            tally[0] += sum((a & b).values())
            tally[1] += sum(a.values())
            tally[2] += sum(b.values())
    return {
        f"{kind[:-1]}_f1": (_f1(tp, n_pred, n_true) if n_true or n_pred else 1.0)
        for kind, (tp, n_pred, n_true) in counts.items()
    }
