"""The collectives sequence parallelism needs, each with its own backward.

Every rank of a sequence group holds one contiguous shard of each sequence. The
attention variants move blocks between shards in two ways: round the ring (rank r
sends to r + 1 and receives from r - 1) and all-to-all (sequence shards <-> head
shards). Both are linear maps, so their backward is the adjoint map: the ring
shift backward shifts the gradient the other way, the all-to-all backward is the
inverse all-to-all. Writing the two ``autograd.Function``s here keeps autograd
correct on every backend that has point-to-point and all-to-all (gloo on CPU, NCCL
on GPU) without depending on which of ``torch.distributed.nn``'s wrappers a
backend supports.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def group_rank(group) -> int:
    return dist.get_rank(group)


def group_size(group) -> int:
    return dist.get_world_size(group)


def _peer(group, offset: int) -> int:
    """The global rank ``offset`` places further round the ring of ``group``."""
    size = group_size(group)
    peer = (group_rank(group) + offset) % size
    return peer if group is None else dist.get_global_rank(group, peer)


def shift(tensor: Tensor, group, offset: int = 1) -> Tensor:
    """Send ``tensor`` ``offset`` places forward round the ring; return what arrives from
    ``offset`` places back. No autograd (the ring-attention kernel's own backward uses it)."""
    if group_size(group) == 1:  # a ring of one: the tensor comes back to itself
        return tensor
    tensor = tensor.contiguous()
    received = torch.empty_like(tensor)
    ops = [
        dist.P2POp(dist.isend, tensor, _peer(group, offset), group),
        dist.P2POp(dist.irecv, received, _peer(group, -offset), group),
    ]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


class _RingShift(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: Tensor, group) -> Tensor:
        ctx.group = group
        return shift(tensor, group, 1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return shift(grad, ctx.group, -1), None


def ring_shift(tensor: Tensor, group) -> Tensor:
    """Differentiable :func:`shift` by one place: its gradient travels back the other way."""
    return _RingShift.apply(tensor, group)


def _all_to_all(x: Tensor, group) -> Tensor:
    """x (N, ...): chunk j goes to rank j; returns (N, ...) with chunk j from rank j."""
    x = x.contiguous()
    out = torch.empty_like(x)
    dist.all_to_all_single(out, x, group=group)
    return out


def _seq_to_heads(x: Tensor, group) -> Tensor:
    """(B, H, T, Dh) sequence shard of all heads -> (B, H/N, N*T, Dh) all positions of this
    rank's heads."""
    N = group_size(group)
    B, H, T, Dh = x.shape
    chunks = x.view(B, N, H // N, T, Dh).transpose(0, 1)  # (N, B, H/N, T, Dh)
    out = _all_to_all(chunks, group)  # out[j]: rank j's positions of my heads
    return out.permute(1, 2, 0, 3, 4).reshape(B, H // N, N * T, Dh)


def _heads_to_seq(x: Tensor, group) -> Tensor:
    """Inverse of :func:`_seq_to_heads`: (B, H/N, N*T, Dh) -> (B, H, T, Dh)."""
    N = group_size(group)
    B, Hn, L, Dh = x.shape
    chunks = x.view(B, Hn, N, L // N, Dh).permute(2, 0, 1, 3, 4)  # (N, B, H/N, T, Dh)
    out = _all_to_all(chunks, group)  # out[j]: my positions of rank j's heads
    return out.transpose(0, 1).reshape(B, N * Hn, L // N, Dh)


class _SeqToHeads(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        return _seq_to_heads(x, group)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _heads_to_seq(grad, ctx.group), None


class _HeadsToSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        return _heads_to_seq(x, group)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _seq_to_heads(grad, ctx.group), None


def seq_to_heads(x: Tensor, group) -> Tensor:
    """Differentiable all-to-all from a sequence shard to a head shard (Ulysses)."""
    return _SeqToHeads.apply(x, group)


def heads_to_seq(x: Tensor, group) -> Tensor:
    """Differentiable all-to-all from a head shard back to a sequence shard."""
    return _HeadsToSeq.apply(x, group)


def gather_key_mask(key_mask: Tensor | None, group) -> Tensor | None:
    """The key-padding mask of the whole sequence (B, N*S) from each rank's (B, S): a few
    bytes per token, so every variant gathers it once instead of passing it round."""
    if key_mask is None:
        return None
    parts = [torch.empty_like(key_mask, dtype=torch.uint8) for _ in range(group_size(group))]
    dist.all_gather(parts, key_mask.to(torch.uint8).contiguous(), group=group)
    return torch.cat(parts, dim=1).bool()
