"""One-hot protein baselines (baselines/proteins.py): the window features against a plain
loop, and heads that must learn what the features make learnable."""

from __future__ import annotations

import random

import pytest
import torch

from seqweave.baselines.proteins import (
    OUTSIDE,
    SYMBOLS,
    HeadSettings,
    ResidueTagger,
    letter_ids,
    q3,
    sequence_features,
    train_head,
    window_features,
)
from seqweave.errors import DataError
from seqweave.tokenizers.alphabets import PROTEIN_ALPHABET

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def _protein(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(AMINO) for _ in range(length))


def test_window_features_are_the_one_hot_letters_around_each_residue():
    sequence, half = "MKVLAW", 2
    features = window_features(sequence, half)
    assert features.shape == (len(sequence), (2 * half + 1) * SYMBOLS)
    for residue in range(len(sequence)):
        for offset in range(-half, half + 1):
            at = residue + offset
            symbol = PROTEIN_ALPHABET.index(sequence[at]) if 0 <= at < len(sequence) else OUTSIDE
            block = features[residue, (offset + half) * SYMBOLS : (offset + half + 1) * SYMBOLS]
            assert block.tolist() == [float(i == symbol) for i in range(SYMBOLS)]


def test_letters_are_mapped_as_documented_and_others_refused():
    assert letter_ids("mkUb*").tolist() == letter_ids("MKXX").tolist()
    for bad in ("MK7", "MK L", "MK*V", "MK-V"):
        with pytest.raises(DataError, match="not an amino-acid letter"):
            letter_ids(bad)
    with pytest.raises(ValueError, match="equally long"):
        sequence_features(["MK", "MKV"])


def test_a_tagger_learns_a_labelling_that_reads_the_neighbours():
    """H where the previous residue is hydrophobic, E where the next one is G, else C: a
    linear head over the window can represent it exactly, so unseen proteins score 1.0."""

    def label(sequence: str) -> str:
        out = []
        for i in range(len(sequence)):
            if i > 0 and sequence[i - 1] in "AILMFVW":
                out.append("H")
            elif i + 1 < len(sequence) and sequence[i + 1] == "G":
                out.append("E")
            else:
                out.append("C")
        return "".join(out)

    rng = random.Random(0)
    fit = [_protein(rng, 40) for _ in range(40)]
    new = [_protein(rng, 50) for _ in range(10)]
    settings = HeadSettings(hidden=0, epochs=40, batch_size=800, lr=5e-2, seed=1)
    tagger = ResidueTagger(half=2, settings=settings).fit(fit, [label(s) for s in fit])
    predicted = tagger.predict(new)
    assert [len(p) for p in predicted] == [50] * 10
    assert q3([label(s) for s in new], predicted) == 1.0


def test_a_regression_head_recovers_a_linear_fitness():
    rng = random.Random(1)
    sequences = [_protein(rng, 8) for _ in range(400)]
    weights = torch.randn(8 * SYMBOLS, generator=torch.Generator().manual_seed(2))
    features = sequence_features(sequences)
    values = features @ weights + 3.0
    predict = train_head(
        features[:300], values[:300], 0, HeadSettings(epochs=100, batch_size=300, lr=5e-2)
    )
    guess = predict(features[300:])
    assert torch.corrcoef(torch.stack([guess, values[300:]]))[0, 1] > 0.98


def test_q3_counts_missing_labels_as_wrong():
    assert q3(["HHEC", "CC"], ["HHEC", "C"]) == pytest.approx(5 / 6)
