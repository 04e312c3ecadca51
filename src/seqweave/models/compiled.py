"""A compiled decoder step (``decode.compile = true``, ``--compile``): inductor C++ kernels.

At batch 1 on a CPU a decoder pass is a few hundred small operators: the matrix products
read the weights once, and around them every layer norm, residual, head split and cache
write is its own dispatched call. ``torch.compile`` traces the decoder layers of one step
into one graph, and inductor turns the elementwise work between the products into a few
fused C++ loops (norms and biases are frozen into the graph, inductor's ``freezing``). The
float products keep the eager kernel (``addmm`` on the contiguous transposed copies of
``layers.TransposedWeight``; inductor's own choice for a transposed weight ran slower). The
int8 path gains most: its per-token quantization and rescaling (``models/quantize.py``),
several elementwise calls per product in eager mode, become one loop before and one after
each integer product, and the int8 output layer is compiled too.

Only steps whose rows all write at the same cache slot and bring the same number of
tokens (``StepPlan.uniform_start`` set, nothing packed: every step at batch 1, greedy at
any batch) run compiled; the others run the eager layers. Cache length and draft length
are dynamic, so one graph serves every length; inductor still builds a separate graph the
first time it sees a size of 1 (one token, one row), so a run compiles two to four graphs,
each costing tens of seconds on first use (the warm-up, measured by ``bench/step_cost.py``).

The compiled kernels round differently from the eager ones (fused float sums in another
order), so compiled logits are close to, not bit-equal with, the eager model's; the tests
hold compiled greedy and IAD tokens equal to eager greedy tokens, and on an int8 model
compiled IAD to compiled greedy. Weights are frozen: compile a model only to decode with
it, after its weights are final.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqweave.errors import ConfigError
from seqweave.models.layers import Linear
from seqweave.models.state import StepPlan

INDUCTOR_OPTIONS = {"freezing": True}


def _decoder_layers(
    network, x: Tensor, keys, values, cross_keys, cross_values, cross_mask, plan, rotary
) -> Tensor:
    """The layer loop of ``EncoderDecoderStack._extend_cache``, for tracing: x (B, K, D)."""
    for i, layer in enumerate(network.decoder_layers):
        cross_kv = (cross_keys[i], cross_values[i])
        x = layer.forward_cached(x, keys[i], values[i], plan, rotary, cross_kv, cross_mask)
    return x


class CompiledDecoder:
    """The compiled layer loop of one encoder-decoder network, and its output product when
    that is int8 (``output``: x (..., D) -> logits (..., V), or None)."""

    def __init__(self, network):
        self.network = network
        compile_options = {"dynamic": True, "options": INDUCTOR_OPTIONS}
        self._layers = torch.compile(_decoder_layers, **compile_options)
        output = _int8_output(network)
        self.output = None if output is None else torch.compile(output, **compile_options)

    @staticmethod
    def accepts(plan: StepPlan) -> bool:
        """Uniform steps only: every row writes at the same slots, nothing packed."""
        return plan.uniform_start is not None and plan.packed is None

    def layers(self, x: Tensor, state, plan: StepPlan, rotary) -> Tensor:
        """x (B, K, D) through every decoder layer, writing the step's keys and values."""
        args = (state.keys, state.values, state.cross_keys, state.cross_values)
        return self._layers(self.network, x, *args, state.cross_mask, plan, rotary)


def _int8_output(network):
    """The int8 output product as a function of x (None for a float network, whose output
    layer stays one eager ``addmm``: compiling a single product only adds a call)."""
    quantized = network._output_transposed.quantized
    return None if quantized is None else (lambda x: quantized(x))


def compile_decoder(network):
    """Give ``network`` a compiled decoder step, in place (again: no change); returns it.

    Compile after quantizing (``models/quantize.py``): the int8 products are traced then.

    Raises:
        ConfigError: a network without the encoder-decoder's cached layer loop (a prefix
            LM, a drafter, a ranking model): there is nothing of it to compile.
    """
    from seqweave.models.transformer import EncoderDecoderStack

    if not isinstance(network, EncoderDecoderStack) or not hasattr(network, "step"):
        raise ConfigError(
            f"decode.compile covers encoder-decoder transformers; {type(network).__name__} "
            "decodes with its eager step (set decode.compile = false)"
        )
    if network.compiled_decoder is None:
        for module in network.modules():
            if isinstance(module, Linear) and module.transposed.quantized is None:
                module.transposed.get(module.weight)  # the (in, out) copy the graph reads
        network.compiled_decoder = CompiledDecoder(network)
        network._output_transposed.compiled = network.compiled_decoder.output
    return network
