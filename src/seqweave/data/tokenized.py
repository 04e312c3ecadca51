"""From examples to padded training batches.

Sources are framed as the model expects (``[bos]`` if configured, the text,
``[eos]``); targets become decoder inputs ``[start] y`` and outputs ``y [eos]``.
Examples over the length limits are skipped and counted, never truncated: a
truncated target would teach the model to stop mid-sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from seqweave.config import DataConfig, ModelConfig
from seqweave.data.actions import skip_target
from seqweave.data.batching import LengthFilterReport, filter_by_length
from seqweave.data.framing import frame_source
from seqweave.data.readers import Example
from seqweave.tokenizers import Tokenizer


@dataclass
class TokenizedSet:
    name: str
    examples: list[Example]  # the kept examples, aligned with sources and targets
    sources: list[list[int]]  # framed source ids
    targets: list[list[int]]  # target ids without framing
    report: LengthFilterReport

    def lengths(self) -> list[tuple[int, int]]:
        """(source, decoder) lengths per example, for token-budget batching."""
        return [(len(s), len(t) + 1) for s, t in zip(self.sources, self.targets, strict=True)]


def tokenize_set(
    name: str,
    examples: Sequence[Example],
    tokenizer: Tokenizer,
    model_cfg: ModelConfig,
    data_cfg: DataConfig,
) -> TokenizedSet:
    """Tokenize examples and drop (and count) those over the length limits.

    The limits are the data config's, tightened to what the model's positions allow.
    """
    texts = [e.source for e in examples]
    sources = [frame_source(ids, model_cfg) for ids in tokenizer.encode_batch(texts)]
    head = [model_cfg.bos_id] if model_cfg.target_bos else []
    targets = [head + ids for ids in tokenizer.encode_batch([e.target or "" for e in examples])]
    if model_cfg.action_head:  # deletions become <skip> tokens (seqweave.data.actions)
        targets = [
            skip_target(source, target, model_cfg.eos_id, model_cfg.skip_id)
            for source, target in zip(sources, targets, strict=True)
        ]
    max_src = min(data_cfg.max_source_len, model_cfg.max_positions)
    max_tgt = min(data_cfg.max_target_len, model_cfg.max_positions) - 1
    if model_cfg.shares_positions:
        max_src = min(max_src, model_cfg.max_positions // 2)
        max_tgt = min(max_tgt, model_cfg.max_positions - max_src - 1)
    kept, report = filter_by_length(
        [len(s) for s in sources], [len(t) for t in targets], max_src, max_tgt
    )
    return TokenizedSet(
        name=name,
        examples=[examples[i] for i in kept],
        sources=[sources[i] for i in kept],
        targets=[targets[i] for i in kept],
        report=report,
    )


@dataclass
class Batch:
    src: Tensor  # (B, S)
    src_lengths: Tensor  # (B,)
    tgt_in: Tensor  # (B, T) [start] y, padded
    tgt_out: Tensor  # (B, T) y [eos], padded with pad_id
    num_tokens: int  # real target tokens
    # denoising pretraining (seqweave.objectives.e2s2): src is then the corrupted source
    original: Tensor | None = None  # (B, S) the clean source
    corrupted: Tensor | None = None  # (B, S) bool, True where src differs from original
    # packed rows (seqweave.data.packing): which packed sequence each target token is of
    segments: Tensor | None = None  # (B, T)
    # scalar-head models (models/scalars.py): the source's float channel and the values
    # to answer at each <mask> (NaN padded), from tokenizers/mixed_prompt.py
    src_scalars: Tensor | None = None  # (B, S)
    tgt_scalars: Tensor | None = None  # (B, M)

    def to(self, device: torch.device) -> Batch:
        def move(tensor: Tensor | None) -> Tensor | None:
            return None if tensor is None else tensor.to(device)

        return Batch(
            self.src.to(device),
            self.src_lengths.to(device),
            self.tgt_in.to(device),
            self.tgt_out.to(device),
            self.num_tokens,
            move(self.original),
            move(self.corrupted),
            move(self.segments),
            move(self.src_scalars),
            move(self.tgt_scalars),
        )


def collate(sources: Sequence[list[int]], targets: Sequence[list[int]], cfg: ModelConfig) -> Batch:
    """Pad one batch of framed sources and raw targets."""
    B = len(sources)
    S = max(len(s) for s in sources)
    T = max(len(t) for t in targets) + 1
    src = torch.full((B, S), cfg.pad_id, dtype=torch.long)
    tgt_in = torch.full((B, T), cfg.pad_id, dtype=torch.long)
    tgt_out = torch.full((B, T), cfg.pad_id, dtype=torch.long)
    for row, (s, t) in enumerate(zip(sources, targets, strict=True)):
        src[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        tgt_in[row, : len(t) + 1] = torch.tensor([cfg.decoder_start_id, *t], dtype=torch.long)
        tgt_out[row, : len(t) + 1] = torch.tensor([*t, cfg.eos_id], dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)
    num_tokens = sum(len(t) + 1 for t in targets)
    return Batch(src, lengths, tgt_in, tgt_out, num_tokens)
