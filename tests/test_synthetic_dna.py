"""Tests for the synthetic genomes and reads: seeded, Markov as drawn, errors at their rates."""

import collections
import io
import math

import pytest

from seqweave.data.formats.fasta import parse_fastq, write_fastq
from seqweave.data.synthetic_dna import (
    BASES,
    markov_genome,
    markov_transitions,
    reads_to_records,
    reverse_complement,
    sample_reads,
)


def test_seeded_and_deterministic():
    assert markov_genome(2000, 3, seed=1) == markov_genome(2000, 3, seed=1)
    assert markov_genome(2000, 3, seed=1) != markov_genome(2000, 3, seed=2)
    genome = markov_genome(5000, 2, seed=0)
    assert sample_reads(genome, 50, 100, 0.01, 0.01, seed=4) == sample_reads(
        genome, 50, 100, 0.01, 0.01, seed=4
    )
    assert set(genome) <= set(BASES) and len(genome) == 5000


def test_genome_follows_its_transition_table():
    """Empirical next-base frequencies per context match the drawn table."""
    order, genome = 2, markov_genome(60_000, 2, seed=3)
    table = markov_transitions(order, 3)
    counts = collections.defaultdict(collections.Counter)
    for i in range(order, len(genome)):
        counts[genome[i - order : i]][genome[i]] += 1
    for context, counter in counts.items():
        index = sum(BASES.index(b) * 4 ** (order - 1 - k) for k, b in enumerate(context))
        cumulative = [0.0, *table[index]]
        total = sum(counter.values())
        for b, base in enumerate(BASES):
            expected = cumulative[b + 1] - cumulative[b]
            assert abs(counter[base] / total - expected) < 4 * math.sqrt(0.25 / total) + 0.01


def test_motifs_are_planted():
    motifs = ("TATAAAAGGC", "GGGCGGGACC")
    genome = markov_genome(40_000, 3, seed=0, motifs=motifs, motif_spacing=200)
    background = markov_genome(40_000, 3, seed=0)
    planted = sum(genome.count(m) for m in motifs)
    assert planted >= 0.9 * 40_000 / 200
    assert sum(background.count(m) for m in motifs) < planted / 20
    with pytest.raises(ValueError, match="ACGT"):
        markov_genome(100, 1, motifs=("ACGX",))


def test_error_free_reads_are_fragments_on_their_strand():
    genome = markov_genome(3000, 3, seed=5)
    reads = sample_reads(genome, 200, 80, seed=1)
    assert {r.strand for r in reads} == {"+", "-"}
    for read in reads:
        fragment = genome[read.start : read.start + 80]
        assert read.seq == (fragment if read.strand == "+" else reverse_complement(fragment))


def test_error_rates_are_as_asked():
    genome = markov_genome(20_000, 3, seed=5)
    reads = sample_reads(genome, 400, 100, sub_rate=0.05, seed=2)
    mismatches = 0
    for read in reads:
        seq = read.seq if read.strand == "+" else reverse_complement(read.seq)
        fragment = genome[read.start : read.start + 100]
        mismatches += sum(a != b for a, b in zip(seq, fragment, strict=True))
    assert 0.04 < mismatches / (400 * 100) < 0.06
    indel = sample_reads(genome, 400, 100, indel_rate=0.04, seed=2)
    lengths = [len(r.seq) for r in indel]
    assert min(lengths) < 100 < max(lengths)
    with_n = sample_reads(genome, 100, 100, n_rate=0.02, seed=2)
    assert 0.01 < sum(r.seq.count("N") for r in with_n) / 10_000 < 0.03


def test_reverse_complement_pairs_every_iupac_code_and_is_an_involution():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("RYSWKMBDHV") == "BDHVKMWSRY"  # R=A/G pairs with Y=C/T ...
    assert reverse_complement("acgtnry") == "rynacgt"
    seq = markov_genome(500, 2, 3) + "NRYSWKMBDHVacgtn"
    assert reverse_complement(reverse_complement(seq)) == seq


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="read length"):
        sample_reads("ACGT", 1, 10)
    with pytest.raises(ValueError, match="rates"):
        sample_reads("ACGTACGT", 1, 4, sub_rate=1.5)


def test_reads_as_fastq_carry_their_true_place_and_read_back():
    reads = sample_reads(markov_genome(500, 1, seed=0), 3, 50, seed=0)
    out = io.StringIO()
    assert write_fastq(reads_to_records(reads, quality="#"), out) == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 12
    assert lines[0] == f"@read0 start={reads[0].start} strand={reads[0].strand}"
    back = list(parse_fastq(lines))
    assert [(r.name, r.sequence, r.quality) for r in back] == [
        (read.name, read.seq, "#" * len(read.seq)) for read in reads
    ]
    assert [r.description for r in back] == [f"start={x.start} strand={x.strand}" for x in reads]
