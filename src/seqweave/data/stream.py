"""Training examples streamed lazily from sharded JSON Lines, with exact resume.

A corpus larger than memory is a list of JSON Lines shards. Each data-parallel rank
reads its own shards (every ``world_size``-th, ``rank_shards``), one *window* of lines at
a time: the window is parsed and prepared (tokenized) in one call, cut into token-budget
batches exactly as the in-memory path cuts a whole epoch (``token_batches``: sorted by
length, batch order shuffled), and given out batch by batch. Only one window is ever
held, so resident memory does not grow with the corpus.

Every batch comes with the ``StreamPosition`` just after it: the epoch, the shard, the
byte offset and line number where its window starts, and how many of the window's
batches are done. The window's batches depend only on those lines and a seed derived
from (seed, epoch, shard, offset), so re-reading the window from its offset and skipping
the done batches resumes the stream exactly where it stopped: a checkpoint needs only
the position (``seqweave.train.batches`` stores it in the training state).
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from seqweave.data.batching import token_batches
from seqweave.errors import DataError

# (a window's lines as text, the file's name, the line number of the first) -> the
# prepared items and their lengths for batching (over-long lines may be left out)
Prepare = Callable[[list[str], str, int], tuple[list, list[int]]]


@dataclass(frozen=True)
class StreamPosition:
    """Where a stream stands: the next batch is batch ``batch`` of the window that starts
    at byte ``offset`` (line ``line``) of this rank's shard ``shard``, in epoch ``epoch``."""

    epoch: int = 0
    shard: int = 0
    offset: int = 0
    batch: int = 0
    line: int = 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def find_shards(pattern: str) -> list[Path]:
    """The shards ``data.train`` names when streaming: a directory (its ``*.jsonl``), a
    glob pattern, or one file; sorted, so every rank sees the same list.

    Raises:
        DataError: nothing matches.
    """
    path = Path(pattern)
    if path.is_dir():
        found = sorted(path.glob("*.jsonl"))
    elif path.is_file():
        found = [path]
    else:
        found = sorted(Path(p) for p in glob.glob(pattern))
    if not found:
        raise DataError(f"data.train={pattern!r}: no JSON Lines shard found to stream")
    return found


def rank_shards(paths: Sequence[str | Path], rank: int, world_size: int) -> list[Path]:
    """This rank's shards: every ``world_size``-th of the sorted paths, from ``rank``.

    Raises:
        DataError: fewer shards than ranks (a rank would have nothing to read).
    """
    ordered = sorted(Path(p) for p in paths)
    if len(ordered) < world_size:
        raise DataError(
            f"{len(ordered)} shard(s) for {world_size} ranks: every rank reads its own shards, "
            "so there must be at least one per rank"
        )
    return ordered[rank::world_size]


@dataclass
class JsonlStream:
    """Token-budget batches from ``shards``, ``window`` lines at a time (see the module)."""

    shards: Sequence[Path]
    prepare: Prepare
    window: int
    max_tokens: int
    max_sentences: int | None = None
    seed: int = 0

    def batches(
        self, start: StreamPosition = StreamPosition()
    ) -> Iterator[tuple[list, StreamPosition]]:
        """(items of one batch, the position after it), forever, epoch after epoch.

        Raises:
            DataError: a line that is not UTF-8 (file and line), or whatever ``prepare``
                raises for a malformed record; a corpus with no example at all.
        """
        position, whole_epoch, yielded = start, start.shard == start.offset == 0, False
        while True:
            lines, end = self._read_window(position)
            items, lengths = self.prepare(lines, str(self._path(position)), position.line)
            if items:
                seed = hash_seed(self.seed, position)
                order = token_batches(lengths, self.max_tokens, self.max_sentences, seed=seed)
                for number in range(position.batch, len(order)):
                    after = StreamPosition(
                        position.epoch, position.shard, position.offset, number + 1, position.line
                    )
                    yielded = True
                    yield [items[i] for i in order[number]], after
            following = self._next_window(position, end, len(lines))
            if following.epoch > position.epoch:
                if whole_epoch and not yielded:
                    names = ", ".join(str(p) for p in self.shards)
                    raise DataError(f"no usable example in a whole pass over {names}")
                whole_epoch, yielded = True, False
            position = following

    def _path(self, position: StreamPosition) -> Path:
        return Path(self.shards[position.shard])

    def _read_window(self, position: StreamPosition) -> tuple[list[str], int | None]:
        """Up to ``window`` lines from ``position``, and the offset where the next window
        starts (None at the end of the shard)."""
        path = self._path(position)
        lines: list[str] = []
        with path.open("rb") as handle:
            handle.seek(position.offset)
            while len(lines) < self.window:
                raw = handle.readline()
                if not raw:
                    return lines, None
                lines.append(_decode(raw, path, position.line + len(lines)))
            end = handle.tell()
            return lines, end if handle.readline() else None

    def _next_window(self, position: StreamPosition, end: int | None, read: int) -> StreamPosition:
        if end is not None:
            return StreamPosition(position.epoch, position.shard, end, 0, position.line + read)
        if position.shard + 1 < len(self.shards):
            return StreamPosition(position.epoch, position.shard + 1, 0, 0, 1)
        return StreamPosition(position.epoch + 1, 0, 0, 0, 1)


def hash_seed(seed: int, position: StreamPosition) -> int:
    """A window's shuffling seed: the same window of the same epoch shuffles the same."""
    key = f"{seed}:{position.epoch}:{position.shard}:{position.offset}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little")


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 ({error.reason})", path=str(path), line=line) from None
