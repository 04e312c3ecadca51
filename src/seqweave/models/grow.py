"""Grow a trained encoder-decoder, wider and deeper, computing the same function.

Training a Marian-size model (d = 512, 6 + 6 layers) from scratch is out of reach on a
few CPU cores; growing a small trained one and fine-tuning it briefly is not.

``widen`` doubles ``d_model``, the number of heads and ``ffn_dim`` so that the wider
model computes *the same function* (Net2Net, Chen et al. 2016): every residual vector h
becomes [h, h]. A linear layer reading a duplicated vector gets its weight split over
both copies (halved along the input); one writing a duplicated vector has its output
rows duplicated, chunk by chunk for the fused q/k/v and k/v projections, so each head
gets a twin with the same head_dim and attention sees each score twice over the same
values. Layer norms keep their statistics ([h, h] has the mean and variance of h), so
their weights are duplicated. The token embeddings are duplicated and divided by the
growth of the embedding scale (sqrt(d) when ``scale_embedding``). A tied output layer
then reads 2 r h.E instead of h.E (r that division), so the norm that feeds it (the
last decoder layer's output norm, post-LN; the decoder's final norm, pre-LN) is scaled
by 1 / (2 r); an untied output layer is halved along its input instead.

``deepen`` inserts layers that start as identities (zero-initialised residual branches,
as in Fixup or ReZero): a new layer's attention output and fc2 write zeros. A post-LN layer
still re-normalises what it reads, so it is an identity only on an input of mean 0 and
variance 1: the layer before it hands the affine of its output norm (g, b) to the new
layer's output norm and keeps (1, 0); the new layer then reads the normalised n, passes it
through its (1, 0) norms and writes g * n + b, what the old layer wrote (up to the norms'
eps). The new layers' other weights start as copies of the layer they follow, so their
branches have trained features to open up once fine-tuning moves the zeros.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from seqweave.config import ModelConfig
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.models.positions import embedding_scale

# fused projections: how many d-sized blocks their output rows hold
FUSED_CHUNKS = {"attn.qkv": 3, "cross.kv": 2}
GROWABLE_POSITIONS = ("learned", "rope")


def check_growable(cfg: ModelConfig) -> None:
    """Refuse what ``widen`` and ``deepen`` cannot grow, before touching any weight."""
    if cfg.architecture != "transformer":
        raise ConfigError(f"growing needs architecture 'transformer', not {cfg.architecture!r}")
    if cfg.position not in GROWABLE_POSITIONS:
        raise ConfigError(
            f"position {cfg.position!r} cannot be widened exactly (a wider sinusoidal or SeqPE "
            f"vector is not two copies of the narrow one); growable: "
            f"{', '.join(GROWABLE_POSITIONS)}"
        )
    heads = [
        name
        for name, on in (
            ("action_head", cfg.action_head),
            ("contrastive_dim", cfg.contrastive_dim),
            ("restore_head", cfg.restore_head),
            ("scalar_head", cfg.scalar_head),
            ("tag_head", cfg.tag_head),
            ("partial_attention", cfg.partial_attention),
        )
        if on
    ]
    if heads:
        raise ConfigError(f"growing a model with {', '.join(heads)} is not supported")


def _duplicate_rows(weight: Tensor, chunks: int) -> Tensor:
    """(chunks * n, ...) -> (chunks * 2n, ...): each block of rows followed by its copy."""
    blocks = weight.chunk(chunks, dim=0)
    return torch.cat([torch.cat([b, b], dim=0) for b in blocks], dim=0)


def _widen_tensor(name: str, tensor: Tensor, token_factor: float) -> Tensor:
    """One tensor of the narrow state dict -> its widened value (see the module docstring)."""
    if name == "final_logits_bias":
        return tensor
    if name.endswith("tokens.weight") or name == "output.weight":
        factor = token_factor if name.endswith("tokens.weight") else 0.5
        return torch.cat([tensor, tensor], dim=1) * factor  # (V, 2D)
    if name.endswith("positions.weight"):
        return torch.cat([tensor, tensor], dim=1)  # (P, 2D): added to [x, x]
    module = name.rsplit(".", 1)[0]
    chunks = next((n for key, n in FUSED_CHUNKS.items() if module.endswith(key)), 1)
    if tensor.dim() == 1:  # a bias or a layer norm's weight: its output rows duplicated
        return _duplicate_rows(tensor, chunks)
    if tensor.dim() == 2:  # a linear (out, in) reading [x, x]
        halves = torch.cat([tensor, tensor], dim=1) * 0.5
        return _duplicate_rows(halves, chunks)
    raise ConfigError(f"cannot widen {name} of shape {tuple(tensor.shape)}")


def final_norm_name(cfg: ModelConfig) -> str:
    """The norm whose output the output layer reads."""
    if cfg.norm == "pre":
        return "decoder_norm"
    return f"decoder_layers.{cfg.decoder_layers - 1}.ffn_res.norm"


@torch.no_grad()
def widen(model: torch.nn.Module) -> torch.nn.Module:
    """A new model twice as wide (d_model, heads, ffn_dim) computing the same logits.

    Raises:
        ConfigError: a model ``check_growable`` refuses.
    """
    cfg: ModelConfig = model.config
    check_growable(cfg)
    wide_cfg = dataclasses.replace(
        cfg, d_model=2 * cfg.d_model, num_heads=2 * cfg.num_heads, ffn_dim=2 * cfg.ffn_dim
    )
    scales = [embedding_scale(d, cfg.scale_embedding) for d in (cfg.d_model, wide_cfg.d_model)]
    token_factor = scales[0] / scales[1]
    state = {k: _widen_tensor(k, v, token_factor) for k, v in model.state_dict().items()}
    if cfg.tie_output:  # the tied output reads 2 * token_factor * h.E: undo it in the norm
        norm = final_norm_name(cfg)
        for kind in ("weight", "bias"):
            state[f"{norm}.{kind}"] = state[f"{norm}.{kind}"] / (2 * token_factor)
    wide = build_model(wide_cfg)
    wide.load_state_dict(state, strict=True)
    return wide.eval()


def _stack_order(old: int, new: int) -> list[int]:
    """Which old layer each of ``new`` layers copies: spread evenly, each copy right after
    its original (4 -> 6: 0, 1, 1, 2, 3, 3)."""
    if new < old:
        raise ConfigError(f"deepening cannot go from {old} to {new} layers")
    return [-(-(i + 1) * old // new) - 1 for i in range(new)]


# the projections that write a sublayer's output into the residual stream
RESIDUAL_WRITERS = ("attn.out.", "cross.out.", "ffn.fc2.")
OUTPUT_NORM = "ffn_res.norm."  # a post-LN layer's last norm: what the layer outputs


def _identity_layer(state: dict, prefix: str, previous: str, post_norm: bool) -> None:
    """Make layer ``prefix`` (a copy of ``previous``) an identity in ``state``: its
    sublayers write zeros; after a post-LN layer, that layer's output norm hands its
    affine (g, b) to this layer's output norm and keeps (1, 0), so this layer sees the
    normalised n, keeps it through norms of (1, 0), and writes g * n + b as before."""
    for name, tensor in state.items():
        if not name.startswith(prefix):
            continue
        leaf = name.removeprefix(prefix)
        if leaf.startswith(RESIDUAL_WRITERS):
            state[name] = torch.zeros_like(tensor)
        elif post_norm and leaf.endswith(("norm.weight", "norm.bias")):
            unit = torch.ones_like(tensor) if leaf.endswith("weight") else torch.zeros_like(tensor)
            if leaf.startswith(OUTPUT_NORM):
                state[name] = state[previous + leaf]
                state[previous + leaf] = unit
            else:
                state[name] = unit


@torch.no_grad()
def deepen(
    model: torch.nn.Module,
    encoder_layers: int,
    decoder_layers: int,
    encoder_order: list[int] | None = None,
    decoder_order: list[int] | None = None,
) -> torch.nn.Module:
    """A new model with ``encoder_layers`` / ``decoder_layers`` layers computing the same
    logits (up to the layer norms' eps, post-LN): ``*_order[i]`` names the old layer that
    new layer i copies (by default spread evenly). A layer repeating the one before it is
    inserted as an identity (``_identity_layer``), with that layer's weights as its
    starting point for the attention and ffn input projections.

    Raises:
        ConfigError: a model ``check_growable`` refuses, or an order of the wrong length,
            naming a layer that does not exist, or not ascending with no layer left out.
    """
    cfg: ModelConfig = model.config
    check_growable(cfg)
    counts = {"encoder_layers": encoder_layers, "decoder_layers": decoder_layers}
    orders = {
        "encoder_layers": encoder_order or _stack_order(cfg.encoder_layers, encoder_layers),
        "decoder_layers": decoder_order or _stack_order(cfg.decoder_layers, decoder_layers),
    }
    for side, order in orders.items():
        old = getattr(cfg, side)
        if len(order) != counts[side] or sorted(set(order)) != list(range(old)):
            raise ConfigError(f"{side} order {order} must list each of the {old} old layers")
        if order != sorted(order):
            raise ConfigError(f"{side} order {order} must be ascending")
    state = {}
    for name, tensor in model.state_dict().items():
        side, _, rest = name.partition(".")
        if side not in orders:
            state[name] = tensor.clone()
            continue
        index, _, leaf = rest.partition(".")
        for new_index, source in enumerate(orders[side]):
            if source == int(index):
                state[f"{side}.{new_index}.{leaf}"] = tensor.clone()
    for side, order in orders.items():
        for i in range(1, len(order)):
            if order[i] == order[i - 1]:
                _identity_layer(state, f"{side}.{i}.", f"{side}.{i - 1}.", cfg.norm == "post")
    deep = build_model(dataclasses.replace(cfg, **counts))
    deep.load_state_dict(state, strict=True)
    return deep.eval()
