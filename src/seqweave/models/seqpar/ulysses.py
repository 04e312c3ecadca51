"""Ulysses sequence parallelism (Jacobs et al. 2023, DeepSpeed-Ulysses).

An all-to-all turns each rank's sequence shard of all heads into all positions of H/N
heads; attention then runs locally over the whole sequence (the ordinary fused kernel),
and a second all-to-all turns the output back into sequence shards. Communication is
two all-to-alls of q, k, v and the output, independent of the ring's N hops; the score
memory per rank is L^2 * H/N, and the head count must be a multiple of N.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from seqweave.models.seqpar.comm import gather_key_mask, group_size, heads_to_seq, seq_to_heads
from seqweave.models.seqpar.masks import block_mask


def ulysses_attention(
    q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, causal: bool, group=None
) -> Tensor:
    """q (B, H, Tq, Dh), k, v (B, H, Tk, Dh): this rank's shards; key_mask (B, Tk) True at
    real keys, or None. Returns this rank's output shard (B, H, Tq, Dh).

    Raises:
        ValueError: the number of heads is not a multiple of the group's size.
    """
    N = group_size(group)
    if q.shape[1] % N:
        raise ValueError(f"Ulysses needs the heads ({q.shape[1]}) to be a multiple of {N}")
    full_mask = gather_key_mask(key_mask, group)
    q, k, v = seq_to_heads(q, group), seq_to_heads(k, group), seq_to_heads(v, group)
    L, S = q.shape[2], k.shape[2]
    mask = block_mask(full_mask, causal, 0, L, 0, S, q.device)
    return heads_to_seq(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), group)
