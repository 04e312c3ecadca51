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

Every step runs compiled but a batch's very first one (one cache slot in use: its own
graph, for one pass per batch): uniform steps (every row at the same slot), ragged ones
(rows at different lengths, as in the server's slot cache) and packed ones (drafts of
different lengths). The graph sees one plan shape for all of them: the new keys and values
go to their slots by index (``StepPlan.uniform_start`` dropped: an int slot would be
specialised, one graph per value 0 and 1), and a batch of several rows always brings a
source mask (all true when no source is padded), so a mask that comes and goes does not
double the graphs. Cache, draft and batch sizes are dynamic; dynamo still builds a
separate graph for a size of 1 (one row, one token), so a run compiles up to six graphs
(one row or several; one token, a draft, a packed draft), each costing seconds to tens of
seconds on first use: the warm-up (``bench/step_cost.py`` measures it; ``seqweave serve
--compile`` pays it before it says it is ready, ``serve/warmup.py``). After a warm-up a step
of a shape no graph covers runs eagerly instead of compiling (``settle``): a request never
waits for the compiler.

The encoder's layer loop and final norm go through a graph of their own too (``encoder``,
from ``EncoderDecoderStack.encode``): batch and source length dynamic, several rows always
with a source mask, so one graph serves one source and one several; the warm-up's passes
encode such sources, and ``settle`` covers it the same way (int8 ``gec-bart-anchor``, 1
thread: encoding 1.5-2.1x faster than eager at batch 1 and 32, bench/README.md).

Each call of a compiled function first runs dynamo's guards, which check every input and
weight against what the graph was traced for: skipping most of them saved 0.1-0.5 ms of a
1.4-2 ms one-token int8 pass at batch 1 (bench/README.md). Once a graph has served a call
of one kind (``call_kind``: which sizes are 1, which masks are there, the tensors' layout,
the grad modes), later calls of that kind run with ``skip_guard_eval_unsafe``, which keeps
only the checks that tell this function's graphs apart; a call of a new kind still goes
through every guard (and compiles if it must). If dynamo ever finds no graph for a call of
a served kind it refuses before running anything, and the decoder goes back to guarded
calls for good (``unguarded = False``).

The compiled kernels round differently from the eager ones (fused float sums in another
order), so compiled logits are close to, not bit-equal with, the eager model's; the tests
hold compiled greedy and IAD tokens equal to eager greedy tokens, and on an int8 model
compiled IAD to compiled greedy. Weights are frozen: compile a model only to decode with
it, after its weights are final.
"""

from __future__ import annotations

import dataclasses
import types

import torch
from torch import Tensor

from seqweave.errors import ConfigError
from seqweave.models.layers import Linear
from seqweave.models.state import StepPlan

INDUCTOR_OPTIONS = {"freezing": True}
CPP_WRAPPER = False  # inductor's C++ wrapper: measured, not the default (bench/README.md)
# Sizes that happen to be equal when a graph is traced (a batch of 2 rows and 2 heads) would
# share one symbol, and the graph would then hold only for that coincidence.
NO_DUCK_SHAPES = torch.fx.experimental._config.patch(use_duck_shape=False)


def _encoder_layers(network, x: Tensor, mask, rotary) -> Tensor:
    """The layer loop and final norm of ``EncoderDecoderStack.encode``, for tracing:
    x (B, S, D) embedded sources -> encoder states (B, S, D)."""
    for layer in network.encoder_layers:
        x = layer.forward(x, mask, rotary)
    return x if network.encoder_norm is None else network.encoder_norm(x)


def _decoder_layers(
    network, x: Tensor, keys, values, cross_keys, cross_values, cross_mask, plan, rotary
) -> Tensor:
    """The layer loop of ``EncoderDecoderStack._extend_cache``, for tracing: x (B, K, D)."""
    for i, layer in enumerate(network.decoder_layers):
        cross_kv = (cross_keys[i], cross_values[i])
        x = layer.forward_cached(x, keys[i], values[i], plan, rotary, cross_kv, cross_mask)
    return x


class CompiledDecoder:
    """The compiled layer loops of one encoder-decoder network (``layers``: the decoder's
    step; ``encoder``: the source's pass), and its output product when that is int8
    (``output``: x (..., D) -> logits (..., V), or None)."""

    def __init__(self, network, cpp_wrapper: bool = False):
        self.network = network
        self._served: set[tuple] = set()  # call kinds (``call_kind``) a graph has served
        options = {**INDUCTOR_OPTIONS, "cpp_wrapper": cpp_wrapper}
        compile_options = {"dynamic": True, "options": options}
        self._layers = torch.compile(_own_copy(_decoder_layers), **compile_options)
        self._encoder = torch.compile(_own_copy(_encoder_layers), **compile_options)
        quantized = network._output_transposed.quantized
        self.output = None
        if quantized is not None:  # a float output layer stays one eager ``addmm``
            product = torch.compile(_own_copy(_int8_product), **compile_options)
            self.output = lambda x: self._call(product, (x,), quantized, x)

    stance = "default"  # "eager_on_recompile" once settled: no compiling after a warm-up
    unguarded = True  # skip dynamo's guards on calls of a kind a graph has served

    @staticmethod
    def accepts(plan: StepPlan) -> bool:
        """Every step but a batch's first (one cache slot in use, a graph of its own)."""
        return plan.used > 1

    def settle(self) -> None:
        """From now on a step that no compiled graph covers runs eagerly, not compiled
        (torch's ``eager_on_recompile`` stance, for this decoder's calls only)."""
        self.stance = "eager_on_recompile"

    def layers(self, x: Tensor, state, plan: StepPlan, rotary) -> Tensor:
        """x (B, K, D), or packed (N, D), through every decoder layer, writing the step's
        keys and values."""
        plan = dataclasses.replace(plan, uniform_start=None)  # slots by index: one graph
        cross_mask, source = state.cross_mask, state.cross_keys[0]  # (B, H, S, Dh)
        if cross_mask is None and state.batch_size > 1:  # (B, 1, 1, S), all true
            shape = (source.shape[0], 1, 1, source.shape[2])
            cross_mask = torch.ones(shape, dtype=torch.bool, device=source.device)
        args = (state.keys, state.values, state.cross_keys, state.cross_values, cross_mask)
        tensors = (x, plan.slots, plan.mask, plan.packed, cross_mask, state.keys[0], source)
        return self._call(self._layers, tensors, self.network, x, *args, plan, rotary)

    def encoder(self, x: Tensor, real: Tensor, rotary) -> Tensor:
        """x (B, S, D) embedded sources, real (B, S) true at real positions -> encoder
        states (B, S, D). Several rows always bring a mask, as in ``layers``."""
        mask = None if x.shape[0] == 1 and bool(real.all()) else real[:, None, None, :]
        return self._call(self._encoder, (x, mask), self.network, x, mask, rotary)

    def _call(self, compiled, tensors, *args):
        """A compiled function's call; without dynamo's guards when ``unguarded`` and a
        graph of it has served a call of this kind (``call_kind``) before."""
        kind = (id(compiled), call_kind(tensors, self.network.training)) if self.unguarded else None
        if kind in self._served:
            try:
                with (
                    NO_DUCK_SHAPES,
                    torch.compiler.set_stance(self.stance, skip_guard_eval_unsafe=True),
                ):
                    return compiled(*args)
            except RuntimeError as error:  # no graph for it: dynamo refuses, nothing ran
                if "skip_guard_eval_unsafe" not in str(error):
                    raise
                self.unguarded, kind = False, None  # the kinds do not tell graphs apart
        with NO_DUCK_SHAPES, torch.compiler.set_stance(self.stance):
            out = compiled(*args)
        if kind is not None and self.stance == "default":  # a compiled graph served it
            self._served.add(kind)
        return out


def call_kind(tensors, training: bool) -> tuple:
    """What tells one compiled graph from another: for each tensor (or None), which sizes
    are 1 (dynamo specialises them; the count is the rank), whether it is contiguous and a
    view; the grad modes and the network's training flag. Every other size is symbolic,
    and the rest of a call is made by the same code each time."""
    kind = [torch.is_inference_mode_enabled(), torch.is_grad_enabled(), training]
    for t in tensors:
        if t is None:
            kind.append(None)
        else:
            kind.append((tuple(size == 1 for size in t.shape), t.is_contiguous(), t._base is None))
    return tuple(kind)


def _int8_product(quantized, x: Tensor) -> Tensor:
    """The int8 output product, x (..., D) -> logits (..., V) (``models/quantize.py``)."""
    return quantized(x)


def _own_copy(function):
    """``function`` with a code object of its own: dynamo keeps compiled graphs, and counts
    them against its limit of 8, per code object, so each network gets its own graphs
    (beside it, a second network would leave too few and silently run eagerly)."""
    code = function.__code__.replace()
    return types.FunctionType(code, function.__globals__, function.__name__)


def compile_decoder(network, cpp_wrapper: bool = CPP_WRAPPER):
    """Give ``network`` a compiled encoder and decoder step, in place (again: no change);
    returns it. ``cpp_wrapper``: inductor's C++ wrapper around each graph's kernels instead
    of its Python one (``CPP_WRAPPER``, bench/README.md).

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
        network.compiled_decoder = CompiledDecoder(network, cpp_wrapper)
        network._output_transposed.compiled = network.compiled_decoder.output
    return network
