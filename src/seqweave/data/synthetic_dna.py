"""Synthetic genomes and sequencing reads, seeded, for the DNA recipes and tests.

A genome is an order-k Markov chain over {A,C,G,T} whose transition table is
drawn from a Dirichlet prior (so it has real k-mer structure that a Markov
baseline can learn and a language model must match), with motifs planted at
random, non-overlapping places (so a tokenizer has something worth merging and
a model something beyond k-mer statistics to learn). Reads are fragments of
the genome taken from either strand, with substitutions, insertions and
deletions, and optionally ambiguous base calls (N), as a sequencer produces
them. Everything is a pure function of its seed.

Files are written by ``seqweave.data.formats.fasta``; ``reads_to_records`` is where a
simulated read's true place goes into its header (``@read7 start=1234 strand=-``).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from seqweave.data.formats.fasta import SequenceRecord

BASES = "ACGT"
# IUPAC nucleotide codes and their complements (R = A/G pairs with Y = C/T, and so on)
_IUPAC, _PAIRED = "ACGTNRYSWKMBDHV", "TGCANYRSWMKVHDB"
_COMPLEMENT = str.maketrans(_IUPAC + _IUPAC.lower(), _PAIRED + _PAIRED.lower())


class Read(NamedTuple):
    """One read: `start` is the 0-based genome position of the fragment it was
    taken from (forward-strand coordinates, whatever the strand), `strand` is
    "+" or "-" ("-" means `seq` is the reverse complement of that fragment)."""

    name: str
    seq: str
    start: int
    strand: str


def reverse_complement(seq: str) -> str:
    """The other strand, read 5' to 3'; every IUPAC code maps to its complement (N stays N),
    case is kept. The package's one copy: here, the lowest layer that needs it (the read
    simulator); ``seqweave.genomics`` imports it from here."""
    return seq.translate(_COMPLEMENT)[::-1]


def markov_transitions(order: int, seed: int, concentration: float = 0.5) -> list[list[float]]:
    """Cumulative next-base probabilities for each of the 4**order contexts.

    A small Dirichlet concentration makes each context prefer a base or two,
    so the chain has real structure (entropy well below 2 bits per base)."""
    rng = random.Random(f"markov-{order}-{seed}")
    table = []
    for _ in range(4**order):
        weights = [rng.gammavariate(concentration, 1.0) + 1e-9 for _ in BASES]
        total = sum(weights)
        cumulative, running = [], 0.0
        for weight in weights:
            running += weight / total
            cumulative.append(running)
        cumulative[-1] = 1.0
        table.append(cumulative)
    return table


def markov_genome(
    length: int,
    order: int = 3,
    seed: int = 0,
    motifs: Sequence[str] = (),
    motif_spacing: int = 200,
) -> str:
    """A seeded genome: order-`order` Markov background, with each motif in
    `motifs` planted about once every `motif_spacing` * len(motifs) bases
    (so some motif starts about every `motif_spacing` bases), never overlapping.

    Raises:
        ValueError: a bad length or order, or a motif with letters outside ACGT.
    """
    if length < 0 or order < 0:
        raise ValueError(f"length and order must be >= 0, got {length} and {order}")
    for motif in motifs:
        if not motif or set(motif) - set(BASES):
            raise ValueError(f"motifs are non-empty strings over ACGT, got {motif!r}")
    rng = random.Random(f"genome-{seed}")
    table = markov_transitions(order, seed)
    mask = 4**order
    context, bases = 0, []
    uniforms = [rng.random() for _ in range(length)]
    for u in uniforms:
        base = min(bisect.bisect_right(table[context], u), 3)
        bases.append(BASES[base])
        context = (context * 4 + base) % mask
    genome = "".join(bases)
    return _plant(genome, motifs, motif_spacing, rng) if motifs else genome


def _plant(genome: str, motifs: Sequence[str], spacing: int, rng: random.Random) -> str:
    """Overwrite the genome with motifs at random non-overlapping places."""
    chars = list(genome)
    longest = max(len(motif) for motif in motifs)
    count = len(genome) // max(spacing, longest + 1)
    slots = range(0, max(len(genome) - longest, 0), max(spacing, longest + 1))
    starts = rng.sample(list(slots), min(count, len(slots)))
    for start in sorted(starts):
        motif = motifs[rng.randrange(len(motifs))]
        offset = rng.randrange(max(spacing, longest + 1) - len(motif))
        place = min(start + offset, len(chars) - len(motif))
        chars[place : place + len(motif)] = motif
    return "".join(chars)


def mutate(
    fragment: str, sub_rate: float, indel_rate: float, rng: random.Random, n_rate: float = 0.0
) -> str:
    """Sequencing errors: per base, a substitution (to another base) with
    `sub_rate`, an insertion or a deletion (half each) with `indel_rate`, and
    an N call with `n_rate`."""
    out = []
    for base in fragment:
        draw = rng.random()
        if draw < indel_rate / 2:  # deletion
            continue
        if draw < indel_rate:  # insertion before this base
            out.append(rng.choice(BASES))
        if rng.random() < sub_rate:
            base = rng.choice([b for b in BASES if b != base])
        if n_rate and rng.random() < n_rate:
            base = "N"
        out.append(base)
    return "".join(out)


def sample_reads(
    genome: str,
    n: int,
    length: int,
    sub_rate: float = 0.0,
    indel_rate: float = 0.0,
    seed: int = 0,
    n_rate: float = 0.0,
) -> list[Read]:
    """`n` reads of `length` reference bases each, uniformly placed, on a
    random strand, with sequencing errors (see `mutate`); a read's own length
    differs from `length` by its indels.

    Raises:
        ValueError: `length` longer than the genome, or a rate outside [0, 1].
    """
    if not 0 < length <= len(genome):
        raise ValueError(f"read length {length} must be in 1..{len(genome)} (the genome)")
    for rate in (sub_rate, indel_rate, n_rate):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rates are probabilities in [0, 1], got {rate}")
    rng = random.Random(f"reads-{seed}")
    reads = []
    for index in range(n):
        start = rng.randrange(len(genome) - length + 1)
        seq = mutate(genome[start : start + length], sub_rate, indel_rate, rng, n_rate)
        strand = "+" if rng.random() < 0.5 else "-"
        if strand == "-":
            seq = reverse_complement(seq)
        reads.append(Read(f"read{index}", seq, start, strand))
    return reads


def reads_to_records(reads: Iterable[Read], quality: str = "I") -> list[SequenceRecord]:
    """Reads as FASTQ-ready records: the description carries the true place
    (``start=1234 strand=-``) so that aligners can be scored, and every base gets the same
    quality character (the simulator has no quality model). Write them with
    ``seqweave.data.formats.fasta.write_fastq`` (or ``write_fasta``)."""
    return [
        SequenceRecord(
            read.name, f"start={read.start} strand={read.strand}", read.seq, quality * len(read.seq)
        )
        for read in reads
    ]
