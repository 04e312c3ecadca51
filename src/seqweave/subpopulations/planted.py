"""Synthetic texts with planted dimensions, and how well a discovered structure recovers them.

``planted_texts`` fills sentence templates with one value per planted dimension, drawn
independently with ``random.Random(seed)``, so every text's true attributes are known.
Template filler ("shirt", "is") occurs in every text and is not a subpopulation.

Scoring matches each planted dimension to the discovered dimension whose assignments agree
with it most, then reports per planted dimension:

- attribute-set F1: precision = share of the matched dimension's attributes that name a
  planted value (an attribute names a value when the value is one of its terms or its name),
  recall = share of planted values named by some attribute;
- assignment accuracy: share of texts whose assigned attribute names their planted value.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from seqweave.subpopulations.structure import Dimension

PLAN = {
    "subject": ["man", "woman", "child", "dog"],
    "colour": ["red", "blue", "green", "yellow"],
    "place": ["beach", "park", "street", "kitchen"],
    "action": ["running", "sitting", "eating", "waiting"],
}
SYNONYMS = {
    "man": "guy", "woman": "lady", "child": "kid", "dog": "puppy",
    "red": "crimson", "blue": "navy", "green": "olive", "yellow": "golden",
    "beach": "shore", "park": "garden", "street": "road", "kitchen": "cafeteria",
    "running": "jogging", "sitting": "resting", "eating": "snacking", "waiting": "queueing",
}  # fmt: skip
TEMPLATES = (
    "A {subject} in a {colour} shirt is {action} at the {place}.",
    "At the {place}, a {subject} in a {colour} shirt is {action}.",
    "In a {colour} shirt, a {subject} is {action} at the {place}.",
)


def planted_texts(
    count: int, seed: int = 0, synonym_rate: float = 0.0
) -> tuple[list[str], list[dict[str, str]]]:
    """``count`` texts and their planted attributes (dimension -> value). With
    ``synonym_rate``, each value is written as its synonym (``SYNONYMS``) with that
    probability: the attribute is the same, the word is not (a test of whether an analyst
    groups by meaning; keyword matching cannot)."""
    rng = random.Random(seed)
    texts, truth = [], []
    for _ in range(count):
        values = {name: rng.choice(options) for name, options in PLAN.items()}
        written = {
            name: SYNONYMS[value] if rng.random() < synonym_rate else value
            for name, value in values.items()
        }
        texts.append(rng.choice(TEMPLATES).format(**written))
        truth.append(values)
    return texts, truth


def names_value(attribute_name: str, terms: Sequence[str], value: str) -> bool:
    return value == attribute_name.lower() or value in terms or value in attribute_name.split("/")


def score_recovery(
    dimensions: Sequence[Dimension],
    assignments: Sequence[dict[str, str]],
    truth: Sequence[dict[str, str]],
    plan: dict[str, list[str]] = PLAN,
) -> dict:
    """Per planted dimension: the matched discovered dimension, attribute-set F1 and
    assignment accuracy (see the module docstring); and their means."""
    report = {}
    for planted, values in plan.items():
        best = {"dimension": None, "f1": 0.0, "accuracy": 0.0}
        for dimension in dimensions:
            terms = {a.name: a.terms for a in dimension.attributes}
            hits = sum(
                names_value(row[dimension.name], terms.get(row[dimension.name], ()), t[planted])
                for row, t in zip(assignments, truth, strict=True)
            )
            accuracy = hits / len(truth)
            named = [
                a
                for a in dimension.attributes
                if any(names_value(a.name, a.terms, v) for v in values)
            ]
            recalled = [
                v
                for v in values
                if any(names_value(a.name, a.terms, v) for a in dimension.attributes)
            ]
            precision = len(named) / len(dimension.attributes)
            recall = len(recalled) / len(values)
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            if accuracy > best["accuracy"]:
                best = {"dimension": dimension.name, "f1": f1, "accuracy": accuracy}
        report[planted] = best
    report["mean_f1"] = sum(report[p]["f1"] for p in plan) / len(plan)
    report["mean_accuracy"] = sum(report[p]["accuracy"] for p in plan) / len(plan)
    return report
