"""The one-hot ridge baseline (baselines/ridge.py) against a reference least-squares fit."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from seqweave.baselines.ridge import _closed_form, one_hot, ridge_on_validation, spearman


def reference_ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Predictions of ridge with an unpenalised intercept, by least squares on the system
    augmented with sqrt(alpha) I rows (no intercept column in those rows)."""
    N, F = X.shape
    design = np.hstack([X, np.ones((N, 1))])
    penalty = np.hstack([math.sqrt(alpha) * np.eye(F), np.zeros((F, 1))])
    solution = np.linalg.lstsq(np.vstack([design, penalty]), np.concatenate([y, np.zeros(F)]))
    return design @ solution[0]


@pytest.mark.parametrize(("rows", "columns"), [(12, 40), (40, 12)])  # dual and primal forms
def test_the_closed_form_is_the_ridge_minimiser(rows, columns):
    generator = np.random.default_rng(0)
    X, y = generator.normal(size=(rows, columns)), generator.normal(size=rows)
    model = _closed_form(torch.from_numpy(X), torch.from_numpy(y), alpha=0.7)
    predicted = model.predict(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(predicted, reference_ridge(X, y, 0.7), rtol=1e-8, atol=1e-8)


def test_one_hot_refuses_what_it_cannot_encode():
    assert one_hot(["AC", "CA"]).shape == (2, 2 * 21)
    with pytest.raises(ValueError, match="aligned"):
        one_hot(["AC", "ACD"])
    with pytest.raises(ValueError, match="'\\*'"):
        one_hot(["A*"])


def test_alpha_is_chosen_on_validation_and_recovers_an_additive_landscape():
    rng = random.Random(0)
    effect = {(i, a): rng.gauss(0, 1) for i in range(4) for a in "ACDE"}

    def sample(n):
        seqs = ["".join(rng.choice("ACDE") for _ in range(4)) for _ in range(n)]
        return seqs, [sum(effect[i, a] for i, a in enumerate(s)) for s in seqs]

    model, alpha, scores = ridge_on_validation(sample(60), sample(30))
    assert scores[alpha] == max(scores.values()) and scores[alpha] > 0.99
    test_seqs, test_y = sample(30)
    assert spearman(model.predict(one_hot(test_seqs)).tolist(), test_y) > 0.99
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
