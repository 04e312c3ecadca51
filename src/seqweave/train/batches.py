"""What the training loop reads: one update's micro-batches at a time, held in memory or
streamed from disk.

The loop asks its batch source for the next update (``next_update``) and never sees how the
examples are held:

- ``EpochBatches``: the tokenized training set in memory. Every rank builds the same epoch
  of token-budget batches from the same seed and keeps its stride of each (``shard``), so
  an update equals the single-process update on the same batch.
- ``StreamedBatches`` (``data.stream``): each rank reads its own shards a window at a time
  (``seqweave.data.stream``) and trains on its own batches; the update's token count is
  summed over the ranks, so the loss is normalised by the global count as in memory. The
  stream's position on every rank goes into the checkpoint (``Progress.stream``), so a
  resumed run reads exactly the batches an uninterrupted run reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from seqweave.config import ExperimentConfig
from seqweave.data.batching import shard, token_batches
from seqweave.data.packing import packed_batches
from seqweave.data.readers import parse_jsonl_lines
from seqweave.data.stream import JsonlStream, StreamPosition, find_shards, rank_shards
from seqweave.data.tokenized import TokenizedSet, tokenize_set
from seqweave.errors import CheckpointError
from seqweave.train.distributed import Distributed
from seqweave.train.resume import Progress


@dataclass
class MicroBatch:
    """This rank's examples of one micro-batch: their text (``data.readers.Example``, read
    by the scalar channel) and token ids; ``keys`` identify them (dataset indices in memory,
    line numbers when streamed) and seed the denoising noise."""

    keys: list[int]
    examples: list
    sources: list[list[int]]
    targets: list[list[int]]
    counts: bool = True  # False: a stand-in so that a rank without examples joins the sync


@dataclass
class Update:
    """One optimizer update: this rank's micro-batches and the target tokens (each target
    plus its end token) of the whole update on all ranks."""

    micro: list[MicroBatch] = field(default_factory=list)
    tokens: int = 0


class BatchSource(Protocol):
    def next_update(self, progress: Progress) -> Update:
        """The next update's batches; moves ``progress`` past them (epoch and batch)."""
        ...

    def save_state(self, progress: Progress) -> None:
        """Put what a resume needs into ``progress`` (a collective: every rank calls it)."""
        ...


@dataclass
class EpochBatches:
    """The in-memory training set, an epoch of batches at a time (see the module)."""

    data: TokenizedSet
    config: ExperimentConfig
    dist: Distributed
    _epoch: int = -1
    _batches: list[list[int]] = field(default_factory=list)

    def next_update(self, progress: Progress) -> Update:
        if self._epoch != progress.epoch:
            self._epoch, self._batches = progress.epoch, self._epoch_batches(progress.epoch)
        first = progress.batch_in_epoch
        group = self._batches[first : first + self.config.train.accumulate]
        progress.batch_in_epoch += len(group)
        if progress.batch_in_epoch >= len(self._batches):
            progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
        targets = self.data.targets
        update = Update(tokens=sum(len(targets[i]) + 1 for batch in group for i in batch))
        for batch in group:
            local = shard(batch, self.dist.data_rank, self.dist.data_size)
            counts = bool(local)
            if not counts:  # this rank has no example: it joins the gradient sync with weight 0
                local = batch[:1]
            update.micro.append(
                MicroBatch(
                    local,
                    [self.data.examples[i] for i in local],
                    [self.data.sources[i] for i in local],
                    [targets[i] for i in local],
                    counts,
                )
            )
        return update

    def save_state(self, progress: Progress) -> None:
        """Epoch and batch are all a resume needs: the batches follow from the seed."""

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        data = self.config.data
        seed = self.config.train.seed * 100_003 + epoch
        if data.pack_sequences:  # real tokens per batch; rows are packed when collated
            lengths = [len(t) + 1 for t in self.data.targets]
            return packed_batches(lengths, data.max_tokens, seed)
        return token_batches(
            self.data.lengths(), data.max_tokens, data.max_sentences or None, seed=seed
        )


class StreamedBatches:
    """``data.train``'s shards read a window at a time, this rank's own (see the module)."""

    def __init__(
        self,
        config: ExperimentConfig,
        tokenizer,
        dist: Distributed,
        device: torch.device,
        progress: Progress,
    ):
        self.config, self.tokenizer, self.dist, self.device = config, tokenizer, dist, device
        data = config.data
        shards = rank_shards(find_shards(data.train), dist.data_rank, dist.data_size)
        self.position = self._start(progress)
        stream = JsonlStream(
            shards,
            self._prepare,
            data.stream_window,
            data.max_tokens,
            data.max_sentences or None,
            seed=config.train.seed,
        )
        self._batches = stream.batches(self.position)
        self.kept = self.skipped = 0  # examples read so far, within and over the length limits

    def next_update(self, progress: Progress) -> Update:
        update = Update()
        for _ in range(self.config.train.accumulate):
            items, self.position = next(self._batches)
            keys, examples, sources, targets = (list(c) for c in zip(*items, strict=True))
            update.micro.append(MicroBatch(keys, examples, sources, targets))
        local = sum(len(t) + 1 for micro in update.micro for t in micro.targets)
        update.tokens = int(self.dist.sum(torch.tensor(local, device=self.device)))
        progress.epoch = self.dist.minimum(self.position.epoch, self.device)
        return update

    def save_state(self, progress: Progress) -> None:
        progress.stream = self.dist.gather_objects(self.position.as_dict())

    def _start(self, progress: Progress) -> StreamPosition:
        """Where this rank's stream resumes: its own position in the checkpoint."""
        if progress.stream is None:
            if progress.step:
                raise CheckpointError(
                    "the checkpoint was written without data.stream: resume it without "
                    "data.stream, or start a new run"
                )
            return StreamPosition()
        if len(progress.stream) != self.dist.world_size:
            raise CheckpointError(
                f"the checkpoint streamed with {len(progress.stream)} process(es); resume "
                f"with the same number, not {self.dist.world_size}"
            )
        return StreamPosition(**progress.stream[self.dist.rank])

    def _prepare(self, lines: list[str], name: str, first_line: int):
        """Parse and tokenize one window (one ``encode_batch`` call), dropping and counting
        examples over the length limits as the in-memory path does."""
        data = self.config.data
        examples = parse_jsonl_lines(lines, name, first_line, data.source_field, data.target_field)
        tokenized = tokenize_set(name, examples, self.tokenizer, self.config.model, data)
        self.kept += tokenized.report.kept
        self.skipped += tokenized.report.skipped
        items = [
            (example.line, example, source, target)
            for example, source, target in zip(
                tokenized.examples, tokenized.sources, tokenized.targets, strict=True
            )
        ]
        return items, tokenized.lengths()
