"""Sequence parallelism: one sequence split across the ranks of a process group.

Rank r of a group of N holds positions ``r*T .. (r+1)*T - 1`` of every sequence (the
sequence padded to a multiple of N). Everything in a Transformer but attention is
per position, so only attention has to see the other shards; ``ATTENTION`` holds the
three ways to do that, each with the signature
``(q, k, v, key_mask, causal, group) -> this rank's output shard``:

- ``ring_self``: ring self-attention of Li et al. (keys round the ring to build full
  score rows, softmax, then values round the ring); score memory L^2/N per rank.
- ``ring``: ring attention with an online softmax (log-sum-exp merge per block); score
  memory one block, L^2/N^2, per hop.
- ``ulysses``: all-to-all from sequence shards to head shards, local attention, and back.

The model's layers reach them through :class:`ShardedMask`: the sequence-parallel model
(``model.py``) passes one where the single-process model passes a boolean mask, and
``layers.attend`` hands the call over to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from seqweave.models.seqpar.ring import ring_attention
from seqweave.models.seqpar.ring_self import ring_self_attention
from seqweave.models.seqpar.ulysses import ulysses_attention

Attention = Callable[..., Tensor]

ATTENTION: dict[str, Attention] = {
    "ring_self": ring_self_attention,
    "ring": ring_attention,
    "ulysses": ulysses_attention,
}


@dataclass(frozen=True)
class ShardedMask:
    """What a sharded attention call needs besides q, k, v: the variant, this rank's shard
    of the key-padding mask (B, Tk) (None: no padding), whether it is causal, and the group.
    """

    variant: str
    key_mask: Tensor | None
    causal: bool
    group: object = None

    def attend(self, q: Tensor, k: Tensor, v: Tensor, dropout_p: float) -> Tensor:
        if dropout_p > 0:  # the config refuses it; this guards direct use
            raise ValueError("sequence-parallel attention has no attention dropout")
        return ATTENTION[self.variant](q, k, v, self.key_mask, self.causal, self.group)


__all__ = ["ATTENTION", "ShardedMask", "ring_attention", "ring_self_attention", "ulysses_attention"]
