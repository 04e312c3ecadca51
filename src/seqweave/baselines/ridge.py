"""One-hot ridge regression on aligned sequences: FLIP's baseline kind for fitness.

FLIP (Dallago et al. 2021) compares learned models on GB1 with ridge regression on a
one-hot encoding of the sequence (one column per position and residue). Mutants of one
protein are aligned by construction (same length, residue i is site i), which is what the
encoding assumes; sequences of different lengths are refused rather than padded.

The fit is the closed form, in float64, with an unpenalised intercept (features and
targets centred): ``w = X^T (X X^T + alpha I)^-1 y`` when there are fewer rows than
columns (the usual case: 265 positions x 21 letters), ``(X^T X + alpha I)^-1 X^T y``
otherwise; both are the same minimiser. scikit-learn's ``Ridge`` is used instead where it
is installed. ``alpha`` is chosen on validation data by Spearman's rho, FLIP's metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.stats import spearmanr
from torch import Tensor

from seqweave.tokenizers.alphabets import PROTEIN_ALPHABET

ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def one_hot(sequences: Sequence[str], alphabet: str = PROTEIN_ALPHABET) -> Tensor:
    """(N, L * A) float64 features of N aligned sequences of length L over ``alphabet``.

    Raises:
        ValueError: the sequences differ in length, or a letter is not in the alphabet.
    """
    lengths = {len(s) for s in sequences}
    if len(lengths) > 1:
        raise ValueError(f"one-hot features need aligned sequences; lengths {sorted(lengths)}")
    index = {letter: i for i, letter in enumerate(alphabet)}
    try:
        rows = [[index[c] for c in s] for s in sequences]
    except KeyError as error:
        raise ValueError(f"letter {error.args[0]!r} is not in the alphabet {alphabet}") from None
    codes = torch.tensor(rows, dtype=torch.long)  # (N, L)
    return torch.nn.functional.one_hot(codes, len(alphabet)).flatten(1).double()


@dataclass
class RidgeModel:
    weights: Tensor  # (F,)
    intercept: float

    def predict(self, features: Tensor) -> Tensor:
        return features.double() @ self.weights + self.intercept


def fit_ridge(features: Tensor, targets: Sequence[float], alpha: float) -> RidgeModel:
    """Ridge regression of targets (N,) on features (N, F), intercept not penalised."""
    try:
        from sklearn.linear_model import Ridge
    except ImportError:
        return _closed_form(features.double(), torch.tensor(targets, dtype=torch.float64), alpha)
    fitted = Ridge(alpha=alpha).fit(features.numpy(), list(targets))
    return RidgeModel(torch.from_numpy(fitted.coef_).double(), float(fitted.intercept_))


def _closed_form(X: Tensor, y: Tensor, alpha: float) -> RidgeModel:
    x_mean, y_mean = X.mean(0), y.mean()
    Xc, yc = X - x_mean, y - y_mean
    N, F = Xc.shape
    if N < F:  # the dual: an N x N system
        weights = Xc.T @ torch.linalg.solve(Xc @ Xc.T + alpha * torch.eye(N, dtype=X.dtype), yc)
    else:
        weights = torch.linalg.solve(Xc.T @ Xc + alpha * torch.eye(F, dtype=X.dtype), Xc.T @ yc)
    return RidgeModel(weights, float(y_mean - x_mean @ weights))


def spearman(predicted: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman's rho; NaN where undefined (fewer than 3 values or a constant side)."""
    if len(predicted) < 3 or len(set(predicted)) < 2 or len(set(truth)) < 2:
        return math.nan
    return float(spearmanr(predicted, truth).statistic)


def ridge_on_validation(
    train: tuple[Sequence[str], Sequence[float]],
    valid: tuple[Sequence[str], Sequence[float]],
    alphas: Sequence[float] = ALPHAS,
) -> tuple[RidgeModel, float, dict[float, float]]:
    """The ridge model of the ``alphas`` with the best validation rho (the smallest alpha
    among ties), that alpha, and the validation rho of each."""
    features, valid_features = one_hot(train[0]), one_hot(valid[0])
    scores, models = {}, {}
    for alpha in alphas:
        models[alpha] = fit_ridge(features, train[1], alpha)
        guess = models[alpha].predict(valid_features).tolist()
        scores[alpha] = spearman(guess, list(valid[1]))
    best = max(alphas, key=lambda a: (-math.inf if math.isnan(scores[a]) else scores[a], -a))
    return models[best], best, scores
