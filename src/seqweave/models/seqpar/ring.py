"""Ring attention with an online softmax (Liu et al. 2023, after the blockwise softmax of
flash attention).

Key and value shards go round the ring together; each hop attends this rank's queries
to the block it holds and merges the block's output into the running output through
the log-sum-exp of the rows seen so far. No rank ever holds more scores than one block
(B, H, L/N, L/N): L^2/N^2 per hop. Under causal attention, blocks from later ranks are
skipped (their scores would all be masked).

The backward is written out rather than left to autograd, which would keep every
hop's block of probabilities (L^2/N again): it recomputes each block from the saved
log-sum-exp, and the gradients of keys and values travel round the ring with their
block, arriving home after N hops.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqweave.models.seqpar.comm import gather_key_mask, group_rank, group_size, shift
from seqweave.models.seqpar.masks import block_mask, fully_masked, masked_scores


def _probabilities(q, k, mask, lse: Tensor) -> Tensor:
    """A block's attention weights (B, H, Tq, Tk) given the rows' full log-sum-exp."""
    return torch.exp(masked_scores(q, k, mask) - lse[..., None])


class _RingAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, full_mask, causal: bool, group):
        rank, N = group_rank(group), group_size(group)
        Tq, Tk = q.shape[2], k.shape[2]
        out = torch.zeros_like(q)
        lse = torch.full(q.shape[:3], torch.finfo(q.dtype).min, dtype=q.dtype, device=q.device)
        held_k, held_v = k, v
        for hop in range(N):
            source = (rank - hop) % N
            if not fully_masked(causal, rank * Tq, Tq, source * Tk):
                mask = block_mask(full_mask, causal, rank * Tq, Tq, source * Tk, Tk, q.device)
                scores = masked_scores(q, held_k, mask)  # (B, H, Tq, Tk): one block
                block_lse = torch.logsumexp(scores, dim=-1)
                block_out = torch.exp(scores - block_lse[..., None]) @ held_v
                merged = torch.logaddexp(lse, block_lse)
                out = (
                    out * torch.exp(lse - merged)[..., None]
                    + block_out * torch.exp(block_lse - merged)[..., None]
                )
                lse = merged
            if hop < N - 1:
                held_k, held_v = shift(held_k, group), shift(held_v, group)
        ctx.save_for_backward(q, k, v, out, lse, full_mask)
        ctx.causal, ctx.group = causal, group
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse, full_mask = ctx.saved_tensors
        causal, group = ctx.causal, ctx.group
        rank, N = group_rank(group), group_size(group)
        Tq, Tk = q.shape[2], k.shape[2]
        scale = q.shape[-1] ** -0.5
        delta = (grad_out * out).sum(-1, keepdim=True)  # (B, H, Tq, 1)
        grad_q = torch.zeros_like(q)
        held_k, held_v = k, v
        grad_k, grad_v = torch.zeros_like(k), torch.zeros_like(v)  # travel with their block
        for hop in range(N):
            source = (rank - hop) % N
            if not fully_masked(causal, rank * Tq, Tq, source * Tk):
                mask = block_mask(full_mask, causal, rank * Tq, Tq, source * Tk, Tk, q.device)
                probs = _probabilities(q, held_k, mask, lse)
                grad_v = grad_v + probs.transpose(-2, -1) @ grad_out
                grad_scores = probs * (grad_out @ held_v.transpose(-2, -1) - delta) * scale
                grad_q = grad_q + grad_scores @ held_k
                grad_k = grad_k + grad_scores.transpose(-2, -1) @ q
            if hop < N - 1:
                held_k, held_v = shift(held_k, group), shift(held_v, group)
            grad_k, grad_v = shift(grad_k, group), shift(grad_v, group)
        return grad_q, grad_k, grad_v, None, None, None


def ring_attention(
    q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, causal: bool, group=None
) -> Tensor:
    """q (B, H, Tq, Dh), k, v (B, H, Tk, Dh): this rank's shards; key_mask (B, Tk) True at
    real keys, or None. Returns this rank's output shard (B, H, Tq, Dh)."""
    full_mask = gather_key_mask(key_mask, group)
    return _RingAttention.apply(q, k, v, full_mask, causal, group)
