"""Int8 weights for CPU inference (``--quantize int8``): dynamic quantization of linear layers.

Every seqweave ``Linear`` (attention and feed-forward projections) and the output
projection get an int8 copy of their weight, one scale per output channel. At run time
each *row* of the input (one token) is quantized to int8 with its own scale, the product
runs in integer arithmetic (``torch._int_mm``, exact int32 accumulation) and is scaled back
to float32.

Why per-token scales rather than torch's ``quantize_dynamic`` (one scale per input
tensor): with one scale for the whole input, a token's result depends on the other tokens
of the pass, so a K-token verification pass (IAD, speculative, GAD) or a batch of 32 would
round differently from a one-token greedy step, and the accelerated decoders would no
longer reproduce greedy. With per-token scales and exact integer sums, a token's output
depends on that token alone, as in float32: int8 outputs differ from float32 ones (lossy,
and the bench says so), but IAD on an int8 model equals greedy on the same int8 model.

The float32 weights stay in place (training, saving and the uncached reference path use
them; a quantized model is never saved). Only CPU inference uses the int8 copies.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqweave.errors import ConfigError
from seqweave.models.layers import Linear

QUANTIZATIONS = ("int8",)


class Int8Weight:
    """A (out, in) float weight as int8 (out, in) with one scale per output channel.

    The int8 weight keeps the float weight's (out, in) layout and enters the product
    transposed (a column-major (in, out) operand): torch's integer kernel then runs a
    one-token product 2-3x faster than on a row-major (in, out) copy, with the same exact
    integer sums.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None):
        weight = weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # (out,)
        self.weight = (weight / scale[:, None]).round().to(torch.int8).contiguous()
        self.scale = scale
        self.bias = None if bias is None else bias.detach().float().clone()

    def __call__(self, x: Tensor) -> Tensor:
        """x (..., in) float -> (..., out) float."""
        flat = x.reshape(-1, x.shape[-1])
        peak = torch.linalg.vector_norm(flat, float("inf"), dim=1, keepdim=True)  # (N, 1)
        row_scale = peak.clamp_(min=1e-12).div_(127.0)
        quantized = torch.round(flat / row_scale).to(torch.int8)
        total = torch._int_mm(quantized, self.weight.t())  # (N, out) int32, exact sums
        scales = row_scale * self.scale  # (N, out): a token's scale times a channel's
        out = torch.addcmul(self.bias, total, scales) if self.bias is not None else total * scales
        return out.view(*x.shape[:-1], out.shape[-1])


def quantize(network: nn.Module, scheme: str = "int8") -> nn.Module:
    """Give ``network``'s linear layers and output projection int8 weights, in place.

    Raises:
        ConfigError: an unknown scheme, or a network that is not on the CPU (torch's integer
            matrix product has no general CUDA kernel for these shapes).
    """
    if scheme not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {scheme!r}; valid: {', '.join(QUANTIZATIONS)}")
    device = next(network.parameters()).device
    if device.type != "cpu":
        raise ConfigError(
            f"--quantize {scheme} runs on the CPU only (the model is on {device}); "
            "use --device cpu, or float32 weights on a GPU"
        )
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, Linear):
                module.transposed.quantized = Int8Weight(module.weight, module.bias)
        if hasattr(network, "_output_transposed"):
            output = network.output_tokens if network.output is None else network.output
            bias = network.final_logits_bias
            network._output_transposed.quantized = Int8Weight(output.weight, bias)
    network.quantization = scheme
    return network


def quantize_model(model, scheme: str | None):
    """``seqweave.load``'s model with its network quantized (``scheme`` None: unchanged)."""
    if scheme is not None:
        quantize(model.network, scheme)
    return model
