"""The encoder-decoder's teacher-forced pass on sequence shards.

:class:`SequenceParallel` wraps an :class:`~seqweave.models.transformer.EncoderDecoder`
and runs the pass its ``hidden_states`` runs, on this rank's shard of the source and of
the decoder input: position ids are global (``rank * T + i``), the encoder's
self-attention and the decoder's cross-attention get the shard of the source's padding
mask, and the decoder's self-attention is causal over global positions. Every layer
and weight is the wrapped model's own; only the masks differ (``ShardedMask``), so a
checkpoint of the wrapped model is the ordinary single-process model.

``forward`` returns the logits of this rank's target positions (B, T/N, V): the loss of
a rank is its shard's loss, and the gradients of all ranks summed (what data-parallel
averaging does, scaled) are the single-process gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.models.seqpar import ShardedMask
from seqweave.models.seqpar.comm import group_rank, group_size


def shard_length(length: int, size: int) -> int:
    """Positions per rank for a sequence of ``length``, padded to a multiple of ``size``."""
    return -(-length // size)


def sequence_shard(x: Tensor, rank: int, size: int, pad: int) -> Tensor:
    """(B, L) -> this rank's (B, ceil(L/size)) columns, the end padded with ``pad``."""
    T = shard_length(x.shape[1], size)
    x = F.pad(x, (0, T * size - x.shape[1]), value=pad)
    return x[:, rank * T : (rank + 1) * T]


class SequenceParallel(nn.Module):
    """An encoder-decoder whose teacher-forced pass runs on sequence shards."""

    def __init__(self, model: nn.Module, variant: str, group=None):
        super().__init__()
        self.model = model
        self.variant = variant
        self.group = group

    def _positions(self, B: int, T: int, device) -> Tensor:
        start = group_rank(self.group) * T
        return torch.arange(start, start + T, device=device).expand(B, T)

    def _mask(self, key_mask: Tensor | None, causal: bool) -> ShardedMask:
        return ShardedMask(self.variant, key_mask, causal, self.group)

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, S/N) this rank's source shard; src_lengths (B,) of the whole sources ->
        encoder states (B, S/N, D) and the shard's padding mask (B, S/N)."""
        model = self.model
        positions = self._positions(*src.shape, src.device)
        real = positions < src_lengths[:, None]  # (B, S/N)
        mask = self._mask(real, causal=False)
        x = model.encoder_embed.forward(src, positions)
        rotary = model.encoder_embed.rotary(positions)
        for layer in model.encoder_layers:
            x = layer.forward(x, mask, rotary)
        if model.encoder_norm is not None:
            x = model.encoder_norm(x)
        return x, real

    def hidden_states(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Final decoder states (B, T/N, D) of this rank's shard of ``tgt_in``."""
        model = self.model
        memory, real = self.encode(src, src_lengths)
        positions = self._positions(*tgt_in.shape, tgt_in.device)
        causal, cross = self._mask(None, causal=True), self._mask(real, causal=False)
        x = model.decoder_embed.forward(tgt_in, positions)
        rotary = model.decoder_embed.rotary(positions)
        for layer in model.decoder_layers:
            cross_kv = layer.cross.project_memory(memory)
            x = layer.forward(x, causal, rotary, cross_kv, cross)
        return model.final_states(x)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits (B, T/N, V) of this rank's target shard."""
        return self.model.logits(self.hidden_states(src, src_lengths, tgt_in))

    @property
    def size(self) -> int:
        return group_size(self.group)
