"""Using a discovered structure: group-balanced training weights (the SSD-LLM paper's
subpopulation-aware reweighting).

A classifier trained on data where a label co-occurs with one attribute (most "dog" texts at
the beach) learns the attribute instead of the label; the texts that break the pattern are
the groups it fails. Weighting each (label, attribute) group to the same total weight makes
the attribute carry no information about the label in the weighted data.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def group_weights(labels: Sequence[str], attributes: Sequence[str]) -> list[float]:
    """Per example, ``n / (number of groups * size of its group)``: every (label, attribute)
    group sums to the same weight and the weights average 1."""
    groups = list(zip(labels, attributes, strict=True))
    sizes = Counter(groups)
    return [len(groups) / (len(sizes) * sizes[group]) for group in groups]


def label_association(labels: Sequence[str], attributes: Sequence[str]) -> float:
    """Cramer's V between the label and an attribute column: 0 independent, 1 determined.
    Used to pick which discovered dimension to balance (the one most tied to the label)."""
    n = len(labels)
    joint = Counter(zip(labels, attributes, strict=True))
    by_label, by_attribute = Counter(labels), Counter(attributes)
    chi2 = 0.0
    for label, label_count in by_label.items():
        for attribute, attribute_count in by_attribute.items():
            expected = label_count * attribute_count / n
            chi2 += (joint[label, attribute] - expected) ** 2 / expected
    smaller = min(len(by_label), len(by_attribute)) - 1
    return math.sqrt(chi2 / (n * smaller)) if smaller > 0 else 0.0
