"""Ring self-attention as Li et al. (2022, "Sequence Parallelism: Long Sequence Training
from System Perspective") define it.

Each rank keeps its query shard. Key shards go once round the ring; at every hop the
rank scores its queries against the shard it holds, so after N hops it has the full
score rows (B, H, L/N, L) of its queries, and takes their softmax. Value shards then go
round the ring, and each hop adds the probabilities of that shard's columns times its
values. The score memory per rank is therefore L^2/N (per head): what ring attention
(``ring.py``) avoids. The ring shifts are differentiable (``comm.ring_shift``), so the
backward is autograd's and passes the gradients of keys and values back round the ring.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqweave.models.seqpar.comm import gather_key_mask, group_rank, group_size, ring_shift
from seqweave.models.seqpar.masks import block_mask, masked_scores


def ring_self_attention(
    q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, causal: bool, group=None
) -> Tensor:
    """q (B, H, Tq, Dh), k, v (B, H, Tk, Dh): this rank's shards; key_mask (B, Tk) True at
    real keys, or None. Returns this rank's output shard (B, H, Tq, Dh)."""
    rank, N = group_rank(group), group_size(group)
    Tq, Tk = q.shape[2], k.shape[2]
    full_mask = gather_key_mask(key_mask, group)
    blocks: list[Tensor | None] = [None] * N  # score columns by source rank
    held = k
    for hop in range(N):
        source = (rank - hop) % N
        mask = block_mask(full_mask, causal, rank * Tq, Tq, source * Tk, Tk, q.device)
        blocks[source] = masked_scores(q, held, mask)
        if hop < N - 1:
            held = ring_shift(held, group)
    probs = torch.cat(blocks, dim=-1).softmax(dim=-1)  # (B, H, Tq, N*Tk): full rows
    out = None
    held = v
    for hop in range(N):
        source = (rank - hop) % N
        part = probs[..., source * Tk : (source + 1) * Tk] @ held
        out = part if out is None else out + part
        if hop < N - 1:
            held = ring_shift(held, group)
    return out
