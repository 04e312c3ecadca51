"""Embed, search, align: place each read on the reference (Embed-Search-Align).

1. Embed: the reference windows (once, when the aligner is built) and each read on
   both strands, the read and its reverse complement.
2. Search: the top-k windows of each strand's embedding in the vector index.
3. Align: Smith-Waterman (parasail, striped SIMD) of that strand of the read against
   each of its candidate windows; the best local alignment places the read.

The embedding is any function from sequences to unit vectors (``Embed``): the trained
encoder, or in tests an oracle that makes retrieval exact, so that the search and the
alignment are checked apart from what the encoder has learnt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from seqweave.data.formats.fasta import SequenceRecord
from seqweave.data.synthetic_dna import reverse_complement
from seqweave.errors import ConfigError
from seqweave.genomics.fragments import Fragments
from seqweave.genomics.index import build_index, search

Embed = Callable[[list[str]], np.ndarray]  # sequences -> (N, D) float32 unit rows


@dataclass(frozen=True)
class Scoring:
    """Local alignment scores (minimap2's short-read preset scores alike: +2, -4, 4+2k...)."""

    match: int = 2
    mismatch: int = -4
    gap_open: int = 6  # parasail: the cost of a gap's first base
    gap_extend: int = 2


@dataclass(frozen=True)
class Hit:
    """Where a read lies. ``position`` is the 0-based forward-strand place of the read's
    first base on the reference strand it matches (the alignment start minus the bases
    clipped before it); ``contig_start``/``contig_end`` bound the aligned bases."""

    read: str
    read_length: int
    contig: str  # "*" when no candidate aligned
    position: int
    contig_start: int
    contig_end: int
    strand: str  # "+" or "-"
    score: int
    fragment: int  # index of the window it was aligned in, -1 when unplaced
    candidates: tuple[int, ...]  # windows retrieved, both strands, best first


def _parasail():
    try:
        import parasail
    except ImportError:
        raise ConfigError(
            "local alignment needs parasail: pip install 'seqweave[genomics]'"
        ) from None
    return parasail


class Aligner:
    """A reference's windows in a vector index, and reads placed against it."""

    def __init__(
        self, fragments: Fragments, embed: Embed, index_kind: str = "flat",
        scoring: Scoring = Scoring(),
    ):  # fmt: skip
        if not len(fragments):
            raise ConfigError("the reference has no windows to index")
        self.fragments = fragments
        self.embed = embed
        self.scoring = scoring
        self.index = build_index(embed(fragments.seqs), index_kind)
        parasail = _parasail()
        self._matrix = parasail.matrix_create("ACGTN", scoring.match, scoring.mismatch)

    def retrieve(self, seqs: Sequence[str], top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Window indices (R, 2, k) for each read's forward and reverse-complement embedding,
        and their similarities (R, 2, k)."""
        both = [s for seq in seqs for s in (seq, reverse_complement(seq))]
        scores, ids = search(self.index, self.embed(both), top_k)
        R = len(seqs)
        return ids.reshape(R, 2, -1), scores.reshape(R, 2, -1)

    def place(
        self, reads: Sequence[SequenceRecord], top_k: int = 5, chunk: int = 4096
    ) -> list[Hit]:
        """One hit per read: the best Smith-Waterman alignment over its candidates."""
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        hits = []
        for first in range(0, len(reads), chunk):  # bounded memory for any number of reads
            batch = reads[first : first + chunk]
            ids, _ = self.retrieve([r.sequence for r in batch], top_k)
            hits += [self._best(read, ids[i]) for i, read in enumerate(batch)]
        return hits

    def _best(self, read: SequenceRecord, ids: np.ndarray) -> Hit:
        """ids (2, k): candidate windows for the forward read and its reverse complement."""
        parasail = _parasail()
        s = self.scoring
        best = None
        for row, strand in enumerate("+-"):
            query = read.sequence if strand == "+" else reverse_complement(read.sequence)
            profile = parasail.profile_create_16(query, self._matrix)
            for window in ids[row]:
                if window < 0:
                    continue
                ref = self.fragments.seqs[window]
                score = parasail.sw_striped_profile_16(profile, ref, s.gap_open, s.gap_extend).score
                if best is None or score > best[0]:
                    best = (score, strand, int(window), query)
        candidates = tuple(dict.fromkeys(int(w) for w in ids.T.reshape(-1) if w >= 0))
        if best is None or best[0] <= 0:
            return Hit(read.name, len(read.sequence), "*", -1, -1, -1, "+", 0, -1, candidates)
        score, strand, window, query = best
        return self._hit(read, query, strand, window, score, candidates)

    def _hit(self, read, query, strand, window, score, candidates) -> Hit:
        """Trace the chosen alignment back to coordinates on the contig."""
        parasail = _parasail()
        s = self.scoring
        ref = self.fragments.seqs[window]
        result = parasail.sw_trace_striped_16(query, ref, s.gap_open, s.gap_extend, self._matrix)
        query_start, ref_start = _alignment_start(result.cigar)
        offset = self.fragments.starts[window]
        contig = self.fragments.names[self.fragments.contigs[window]]
        return Hit(
            read.name, len(read.sequence), contig, offset + ref_start - query_start,
            offset + ref_start, offset + result.end_ref + 1, strand, score, window, candidates,
        )  # fmt: skip


def _alignment_start(cigar) -> tuple[int, int]:
    """(query, reference) 0-based start of the first aligned pair. parasail's traceback
    can begin with gap operations when the alignment starts at 0; they are skipped."""
    query, ref = cigar.beg_query, cigar.beg_ref
    for op in cigar.seq:
        length, kind = cigar.decode_len(op), chr(cigar.decode_op(op)[0])
        if kind == "D":
            ref += length
        elif kind == "I":
            query += length
        else:
            break
    return query, ref
