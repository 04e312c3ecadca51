"""A reference cut into overlapping windows: the units the index stores.

Windows of ``length`` bases start every ``stride`` bases on each contig, and the last
window of a contig ends at its end, so every stretch of at most ``length - stride``
bases lies whole inside some window. Reads shorter than that overlap (indels
included) can always be aligned in full against one retrieved window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seqweave.data.formats.fasta import SequenceRecord
from seqweave.errors import ConfigError


@dataclass(frozen=True)
class Fragments:
    """Parallel lists: window i is ``seqs[i]``, taken from ``contigs[i]`` at ``starts[i]``."""

    names: list[str]  # contig names, in file order
    contigs: list[int]  # index into names
    starts: list[int]  # 0-based start on the contig's forward strand
    seqs: list[str]

    def __len__(self) -> int:
        return len(self.seqs)

    def contains(self, i: int, contig: str, start: int, end: int) -> bool:
        """Whether window i holds the whole span [start, end) of ``contig``."""
        return (
            self.names[self.contigs[i]] == contig
            and self.starts[i] <= start
            and end <= self.starts[i] + len(self.seqs[i])
        )


def fragment(records: Sequence[SequenceRecord], length: int, stride: int) -> Fragments:
    """Overlapping windows over every record (a contig shorter than ``length`` is one window).

    Raises:
        ConfigError: ``stride`` is not in 1..length.
    """
    if not 0 < stride <= length:
        raise ConfigError(f"fragment stride must be in 1..{length}, got {stride}")
    contigs, starts, seqs = [], [], []
    for index, record in enumerate(records):
        n = len(record.sequence)
        offsets = list(range(0, max(n - length, 0) + 1, stride))
        if offsets[-1] + length < n:
            offsets.append(n - length)
        for offset in offsets:
            contigs.append(index)
            starts.append(offset)
            seqs.append(record.sequence[offset : offset + length])
    return Fragments([r.name for r in records], contigs, starts, seqs)
