"""Order-k Markov baselines for reads: normalised, and as good as the true chain given data."""

import math

import numpy as np
import pytest

from seqweave.baselines.markov_dna import MarkovDNA, bits_per_base, select_order
from seqweave.data.synthetic_dna import BASES, markov_genome, markov_transitions


def _chunks(genome: str, size: int = 100) -> list[str]:
    return [genome[i : i + size] for i in range(0, len(genome) - size + 1, size)]


def test_probabilities_sum_to_one_over_the_next_symbol():
    reads = _chunks(markov_genome(20_000, 3, seed=1))
    for order in (0, 1, 4):
        model = MarkovDNA(order, beta=0.7).fit(reads)
        for context in ("", "A", "ACG", "TTTTT", "NNA"):
            total = sum(model.probabilities([context + x])[-1] for x in "ACGTN")
            assert total == pytest.approx(1.0)


def test_fitted_chain_matches_the_true_chain_and_the_right_order_wins():
    """On a genome drawn from an order-2 chain, the fitted order-2 model scores held-out
    reads within 0.02 bits per base of the true transition table, and beats order 1."""
    genome = markov_genome(300_000, 2, seed=4)
    reads = _chunks(genome)
    train, valid = reads[:2500], reads[2500:]
    table = markov_transitions(2, 4)
    true_bits, bases = 0.0, 0
    for read in valid:
        for i in range(2, len(read)):
            context = BASES.index(read[i - 2]) * 4 + BASES.index(read[i - 1])
            cumulative = [0.0, *table[context]]
            b = BASES.index(read[i])
            true_bits -= math.log2(cumulative[b + 1] - cumulative[b])
            bases += 1
    fitted = MarkovDNA(2).fit(train)
    per_base = fitted.probabilities(valid).reshape(len(valid), -1)[:, 2:]
    assert -np.log2(per_base).sum() / bases == pytest.approx(true_bits / bases, abs=0.02)
    best, scores = select_order(train, valid, orders=range(1, 5))
    assert scores[1] > scores[2] + 0.05 and best >= 2
    assert bits_per_base(fitted, valid) == pytest.approx(scores[2])


def test_unfitted_model_refuses_to_score():
    with pytest.raises(ValueError, match="fit"):
        MarkovDNA(2).bits(["ACGT"])
