"""One-hot protein baselines: the features TAPE's "one-hot" row and Qian and Sejnowski's 1988
network read, with a linear or one-hidden-layer head.

- **Per residue** (secondary structure): each residue is described by the one-hot letters of
  a window centred on it (``half`` residues each side, 6 as in Qian and Sejnowski's 13-residue
  window), an extra symbol marking positions past either end; a head scores the labels.
- **Per protein** (GB1 fitness): the one-hot letters of the whole sequence, flattened (every
  GB1 variant has the same length), or any fixed-size features, e.g. pooled encoder states;
  a head regresses the standardised value.

Heads train with AdamW on mini-batches, seeded, for a fixed number of epochs;
nothing here looks at validation data. The one-hot ridge regression for GB1 (closed form,
alpha chosen on validation) is ``baselines/ridge.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.data.proteins import clean_protein
from seqweave.tokenizers.alphabets import PROTEIN_ALPHABET

LETTERS = {letter: i for i, letter in enumerate(PROTEIN_ALPHABET)}
OUTSIDE = len(PROTEIN_ALPHABET)  # the symbol of window positions past either end
SYMBOLS = OUTSIDE + 1


def letter_ids(sequence: str) -> Tensor:
    """(L,) the index of each residue in ``PROTEIN_ALPHABET``, after the package's documented
    mapping (``data.proteins.clean_protein``: lower case to upper, B/Z/J/U/O to X, a final
    ``*`` dropped).

    Raises:
        DataError: a character that is no amino-acid letter (digit, space, gap, inner ``*``).
    """
    return torch.tensor([LETTERS[c] for c in clean_protein(sequence, "sequence")])


def window_features(sequence: str, half: int = 6) -> Tensor:
    """(L, (2 half + 1) * SYMBOLS) one-hot letters of the window around each residue."""
    padded = F.pad(letter_ids(sequence), (half, half), value=OUTSIDE)  # (L + 2 half,)
    windows = padded.unfold(0, 2 * half + 1, 1)  # (L, 2 half + 1)
    return F.one_hot(windows, SYMBOLS).flatten(1).float()


def sequence_features(sequences: Sequence[str]) -> Tensor:
    """(N, L * SYMBOLS) the flattened one-hot letters of equally long sequences."""
    lengths = {len(s) for s in sequences}
    if len(lengths) != 1:
        raise ValueError(f"sequence_features needs equally long sequences, got {sorted(lengths)}")
    ids = torch.stack([letter_ids(s) for s in sequences])  # (N, L)
    return F.one_hot(ids, SYMBOLS).flatten(1).float()


@dataclass(frozen=True)
class HeadSettings:
    hidden: int = 0  # 0: linear; else one hidden layer of this size (ReLU)
    epochs: int = 20
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 1


def build_head(features: int, outputs: int, hidden: int) -> nn.Module:
    if hidden == 0:
        return nn.Linear(features, outputs)
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def train_head(features: Tensor, targets: Tensor, classes: int, settings: HeadSettings):
    """A head fitted to ``features`` (N, F): cross-entropy over ``classes`` labels for long
    ``targets`` (N,), or mean squared error of standardised float ``targets`` when
    ``classes`` is 0. Returns a function from features (M, F) to label ids or values (M,)."""
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    head = build_head(features.shape[1], max(classes, 1), settings.hidden)
    regression = classes == 0
    mean, std = (targets.mean(), targets.std().clamp_min(1e-8)) if regression else (0.0, 1.0)
    goal = (targets - mean) / std if regression else targets
    optimiser = torch.optim.AdamW(
        head.parameters(), settings.lr, weight_decay=settings.weight_decay
    )
    for _ in range(settings.epochs):
        order = torch.randperm(len(features), generator=generator)
        for first in range(0, len(order), settings.batch_size):
            rows = order[first : first + settings.batch_size]
            scores = head(features[rows])
            if regression:
                loss = F.mse_loss(scores[:, 0], goal[rows])
            else:
                loss = F.cross_entropy(scores, goal[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    head.eval()

    @torch.no_grad()
    def predict(new: Tensor) -> Tensor:
        scores = head(new)
        return scores[:, 0] * std + mean if regression else scores.argmax(-1)

    return predict


class ResidueTagger:
    """One-hot windows + a linear or MLP head: one label per residue."""

    def __init__(self, labels: str = "HEC", half: int = 6, settings: HeadSettings | None = None):
        self.labels, self.half = labels, half
        self.settings = settings or HeadSettings()
        self._predict = None

    def fit(self, sequences: Sequence[str], targets: Sequence[str]) -> ResidueTagger:
        index = {label: i for i, label in enumerate(self.labels)}
        features = torch.cat([window_features(s, self.half) for s in sequences])
        truth = torch.tensor([index[c] for t in targets for c in t], dtype=torch.long)
        if len(truth) != len(features):
            raise ValueError("every target needs one label per residue")
        self._predict = train_head(features, truth, len(self.labels), self.settings)
        return self

    def predict(self, sequences: Sequence[str]) -> list[str]:
        if self._predict is None:
            raise RuntimeError("fit the tagger first")
        outputs = []
        for sequence in sequences:
            ids = self._predict(window_features(sequence, self.half))
            outputs.append("".join(self.labels[i] for i in ids.tolist()))
        return outputs


def q3(targets: Sequence[str], predicted: Sequence[str]) -> float:
    """Per-residue accuracy over all residues (a missing or extra label counts wrong)."""
    right = sum(
        sum(a == b for a, b in zip(t, p, strict=False))
        for t, p in zip(targets, predicted, strict=True)
    )
    return right / max(sum(len(t) for t in targets), 1)
