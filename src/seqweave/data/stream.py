"""Training examples streamed lazily from sharded JSON Lines, with exact resume.

A corpus larger than memory is a list of JSON Lines shards. Each data-parallel rank
reads its own shards (every ``world_size``-th, ``rank_shards``), one *window* of lines at
a time: the window is parsed, cut into token-budget batches exactly as the in-memory path
cuts a whole epoch (``token_batches``: sorted by length, batch order shuffled), and given
out batch by batch. Only one window is ever held, so resident memory does not grow with
the corpus.

Every batch comes with the ``StreamPosition`` just after it: the epoch, the shard, the
byte offset where its window starts and how many of the window's batches are done. The
window's batches depend only on those lines and a seed derived from (seed, epoch, shard,
offset), so re-reading the window from its offset and skipping the done batches resumes
the stream exactly where it stopped: a checkpoint needs only the position.

Not yet wired into ``seqweave.train``: the trainer still reads ``data.train`` into memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seqweave.data.batching import token_batches
from seqweave.errors import DataError

# A line's JSON object -> (item, length for batching), or None to skip it (over-long)
Prepare = Callable[[dict[str, Any]], tuple[Any, int] | None]


@dataclass(frozen=True)
class StreamPosition:
    """Where a stream stands: the next batch is batch ``batch`` of the window that starts
    at byte ``offset`` of this rank's shard ``shard``, in epoch ``epoch``."""

    epoch: int = 0
    shard: int = 0
    offset: int = 0
    batch: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


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
        """(items of one batch, the position after it), forever, epoch after epoch."""
        position = start
        while True:
            items, lengths, end = self._read_window(position)
            if items:
                seed = hash_seed(self.seed, position)
                order = token_batches(lengths, self.max_tokens, self.max_sentences, seed=seed)
                for number in range(position.batch, len(order)):
                    after = StreamPosition(
                        position.epoch, position.shard, position.offset, number + 1
                    )
                    yield [items[i] for i in order[number]], after
            position = self._next_window(position, end)

    def _read_window(self, position: StreamPosition) -> tuple[list, list[int], int | None]:
        """The prepared items and lengths of the window at ``position``, and the offset
        where the next window starts (None at the end of the shard)."""
        path = self.shards[position.shard]
        items, lengths, lines = [], [], 0
        with path.open("rb") as handle:
            handle.seek(position.offset)
            while lines < self.window:
                at = handle.tell()
                line = handle.readline()
                if not line:
                    return items, lengths, None
                lines += 1
                if not line.strip():
                    continue
                prepared = self.prepare(_parse(line, path, at))
                if prepared is not None:
                    items.append(prepared[0])
                    lengths.append(prepared[1])
            end = handle.tell()
            return items, lengths, end if handle.readline() else None

    def _next_window(self, position: StreamPosition, end: int | None) -> StreamPosition:
        if end is not None:
            return StreamPosition(position.epoch, position.shard, end, 0)
        if position.shard + 1 < len(self.shards):
            return StreamPosition(position.epoch, position.shard + 1, 0, 0)
        return StreamPosition(position.epoch + 1, 0, 0, 0)


def hash_seed(seed: int, position: StreamPosition) -> int:
    """A window's shuffling seed: the same window of the same epoch shuffles the same."""
    key = f"{seed}:{position.epoch}:{position.shard}:{position.offset}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little")


def _parse(line: bytes, path: Path, offset: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: the line at byte {offset} is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: the line at byte {offset} is not a JSON object")
    return value
