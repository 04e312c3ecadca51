"""Streaming sharded JSON Lines (data/stream.py): every example once per epoch, ranks on
disjoint shards, the token budget kept, and resume from any position equal to the
uninterrupted stream."""

from __future__ import annotations

import itertools
import json

import pytest

from seqweave.data.stream import JsonlStream, StreamPosition, rank_shards
from seqweave.errors import DataError


def write_shards(directory, sizes):
    paths, number = [], 0
    for shard, size in enumerate(sizes):
        path = directory / f"part-{shard:02d}.jsonl"
        lines = []
        for _ in range(size):
            lines.append(json.dumps({"id": number, "source": "x " * (1 + number % 7)}))
            number += 1
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def prepare(lines, name, first_line):
    records = [json.loads(line) for line in lines if line.strip()]
    return [r["id"] for r in records], [len(r["source"].split()) for r in records]


def stream(paths, window=5):
    return JsonlStream(paths, prepare, window=window, max_tokens=12, max_sentences=4, seed=3)


def take(batches, count):
    return list(itertools.islice(batches, count))


def test_every_example_once_per_epoch_within_the_token_budget(tmp_path):
    paths = write_shards(tmp_path, [11, 0, 7])
    seen = []
    for items, position in stream(paths).batches():
        if position.epoch > 0:
            break
        seen.extend(items)
        sizes = [1 + i % 7 for i in items]
        assert len(items) <= 4 and (len(items) == 1 or len(items) * max(sizes) <= 12)
    assert sorted(seen) == list(range(18))


def test_resume_from_any_position_equals_the_uninterrupted_stream(tmp_path):
    paths = write_shards(tmp_path, [9, 6])
    whole = take(stream(paths).batches(), 30)  # into the third epoch
    for cut in range(len(whole) - 1):
        position = StreamPosition(**whole[cut][1].as_dict())  # as a checkpoint stores it
        resumed = take(stream(paths).batches(position), len(whole) - cut - 1)
        assert resumed == whole[cut + 1 :]


def test_epochs_shuffle_differently(tmp_path):
    paths = write_shards(tmp_path, [20])
    batches = take(stream(paths, window=20).batches(), 40)
    epochs = [[items for items, p in batches if p.epoch == e] for e in (0, 1)]
    assert epochs[0] and epochs[0] != epochs[1][: len(epochs[0])]


def test_ranks_read_disjoint_shards_that_cover_the_corpus(tmp_path):
    paths = write_shards(tmp_path, [3, 3, 3, 3, 3])
    mine = [rank_shards(paths, rank, 2) for rank in range(2)]
    assert sorted(mine[0] + mine[1]) == sorted(paths)
    assert not set(mine[0]) & set(mine[1])
    with pytest.raises(DataError, match="at least one per rank"):
        rank_shards(paths[:1], 0, 2)


def test_windows_start_at_their_line_numbers_across_resumes(tmp_path):
    """``prepare`` learns each window's first line, so a malformed record deep in a shard
    is reported by its line, also after a resume."""
    paths = write_shards(tmp_path, [13])
    starts = []

    def spy(lines, name, first_line):
        starts.append((name, first_line, len(lines)))
        return prepare(lines, name, first_line)

    batches = JsonlStream(paths, spy, window=5, max_tokens=12, seed=3).batches()
    whole = take(batches, 12)
    assert starts[:3] == [(str(paths[0]), 1, 5), (str(paths[0]), 6, 5), (str(paths[0]), 11, 3)]
    position = whole[4][1]
    starts.clear()
    take(JsonlStream(paths, spy, window=5, max_tokens=12, seed=3).batches(position), 1)
    assert starts[0][1] == position.line


def test_bytes_that_are_not_utf8_are_named_by_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": 0, "source": "a"}\n{"id": 1, "source": "\xff"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not UTF-8"):
        take(stream([path], window=1).batches(), 2)


def test_a_corpus_without_examples_is_an_error_not_a_hang(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n\n")
    with pytest.raises(DataError, match="no usable example"):
        take(stream([path], window=2).batches(), 1)
