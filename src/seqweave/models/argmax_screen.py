"""A lossless screened argmax of the output layer (``decode.screen``): int8 bounds, fp32 ties.

Greedy, IAD, speculative and GAD verification read only the argmax of each position's
logits ``L = h @ W.T + b`` (V = vocabulary, D = model width), and at batch 1 on a CPU the
float32 product with the (V, D) output weight is the largest of a decoder pass. The screen
computes cheap approximate logits with an int8 copy of ``W`` (exact int32 sums, as
``models/quantize.py``), a rigorous bound on how far each can be from the float32 logit, and
keeps per position only the tokens whose upper bound reaches the best lower bound. The
float32 argmax is always among them (below); when one is left it is the answer, otherwise
the candidates are recomputed in float32 (one product over the union of the ambiguous
positions' candidates, gathered from the same transposed copy the full product reads;
others at -inf; lowest index on ties, as ``argmax``). The result is the argmax of the
float32 logits, not an approximation of it. A product over gathered columns may round
differently from the full one (another kernel, and even the full product rounds a row
differently with other rows beside it), so where the two best recomputed logits of a
position are within twice the float32 rounding bound of each other, the pass takes the
full product of all its positions, the very call the unscreened model makes: its
rounding decides such ties, bit for bit as without the screen. Elsewhere the gap exceeds
what any two float32 evaluations can disagree by, so every evaluation has the same
argmax.

The bound, per token v (row ``W_v``) and position (state ``h``). At build time, in float64
from the float32 weight: ``W_v = s_v q_v + r_v`` with ``s_v = max|W_v| / 127`` and ``q_v``
int8, and ``R_v >= ||r_v||``, ``Q_v >= s_v ||q_v||``, ``N_v >= ||W_v||`` (all 2-norms).
Per position: ``h = t p + u`` with ``t = max|h| / 127`` and ``p`` integers in [-127, 127].
Then exactly ``W_v.h = s_v t (q_v.p) + s_v (q_v.u) + r_v.h``, so by Cauchy-Schwarz

    |W_v.h - s_v t (q_v.p)| <= R_v ||h|| + Q_v ||u||.

Floating point, all bounded by ``sigma * M_v * (||h|| + ||u||)`` or ``sigma * |b_v|``, with
``M_v = N_v + R_v + Q_v`` and ``sigma = (D + 2) 2^-23 + 2^-18``:

- the float32 reference logit itself: any order of the D products and D sums, bias included,
  is within ``gamma_(D+1) (sum_i |h_i W_vi| + |b_v|) <= (D + 2) 2^-24 (||h|| N_v + |b_v|)`` of
  the exact value (the first term of sigma is twice that);
- the screen's own float32 work (the int32 sum times two scales, the radius, the bias, the
  two bounds: a dozen roundings of quantities below ``M_v (||h|| + ||u||) + |b_v|``), each
  at most 2^-24 of it: the 2^-18 term of sigma covers 64 of them;
- ``||h||`` and ``||u||`` are float32 norms of float32 vectors (``u`` is computed as
  ``h - t p``): the true norms are at most the computed ones times
  ``rho = 1 + (D + 8) 2^-22``, plus ``2^-23 ||h||`` for ``u``.

So with radius ``E_v = rho ||h|| (R_v + sigma M_v) + rho (||u|| + 2^-23 ||h||) (Q_v + sigma
M_v) + 2 sigma |b_v| + tiny`` every float32 logit lies in ``[A_v - E_v, A_v + E_v]``, ``A_v``
the approximate logit with its bias; the weight-side coefficients are rounded up when cast
to float32. If ``v*`` is the float32 argmax, ``hi_v* >= L_v* >= L_w >= lo_w`` for all w, so
``v*`` is kept. Positions whose states are not finite or so large that a logit could
overflow take the full product. Typical radii are about 1% of ``||h|| ||W_v||``: one to a
few candidates per position on a trained model (bench/README.md reports the counts).

CPU only (``torch._int_mm``'s CUDA kernel wants other shapes, and there the float product
is cheap); an int8 or compiled output layer keeps its own product (``Seq2SeqBase``
decides). The screen is built on first use and rebuilt when the weight or bias changes
(their version counters), as ``layers.TransposedWeight``.
"""

from __future__ import annotations

import torch
from torch import Tensor

INT8_MAX = 127
OVERFLOW_GUARD = 2.0**100  # ||h|| * max_v M_v beyond this: the full product


def _round_up(values: Tensor) -> Tensor:
    """float64 -> float32, never below the float64 value (2^-20 up covers the cast)."""
    return (values * (1 + 2.0**-20)).float()


class OutputScreen:
    """The int8 copy of an output weight (V, D) with its per-token error coefficients."""

    def __init__(self, weight: Tensor, bias: Tensor | None):
        weight = weight.detach().float()
        V, D = weight.shape
        if D * INT8_MAX * INT8_MAX >= 2**31:
            raise ValueError(f"d_model {D} is too wide for exact int32 sums")
        scale = weight.abs().amax(dim=1).clamp(min=1e-30) / INT8_MAX  # (V,)
        quantized = (weight / scale[:, None]).round().clamp(-INT8_MAX, INT8_MAX)
        exact = weight.double()
        scaled = scale.double()[:, None] * quantized.double()  # exact: 24 x 8 bits
        residual = torch.linalg.vector_norm(exact - scaled, dim=1)  # R_v
        rounded = torch.linalg.vector_norm(scaled, dim=1)  # Q_v
        norm = torch.linalg.vector_norm(exact, dim=1)  # N_v
        total = norm + residual + rounded  # M_v
        sigma = (D + 2) * 2.0**-23 + 2.0**-18
        rho = 1 + (D + 8) * 2.0**-22
        bias64 = torch.zeros(V, dtype=torch.float64) if bias is None else bias.double()
        coefficients = torch.stack(
            [
                rho * (residual + sigma * total) + rho * 2.0**-23 * (rounded + sigma * total),
                rho * (rounded + sigma * total),
            ]
        )  # (2, V): radius = [||h||, ||u||] @ coefficients + offset
        self.coefficients = _round_up(coefficients).to(weight.device)
        offset = 2 * sigma * bias64.abs() + 2.0**-100
        self.offset = _round_up(offset).to(weight.device)  # (V,)
        self.weight = quantized.to(torch.int8).contiguous()  # (V, D), enters transposed
        self.scale = scale  # (V,)
        self.bias = None if bias is None else bias.detach().float().clone()
        self.largest = float(total.max())  # max_v M_v
        # two float32 evaluations of a logit differ by at most tie * ||h|| + bias_tie
        tie = (D + 4) * 2.0**-22
        self.tie = tie * float(norm.max())
        self.bias_tie = 0.0 if bias is None else tie * float(bias64.abs().max())

    def bounds(self, h: Tensor) -> tuple[Tensor, Tensor] | None:
        """h (N, D) float32 -> (approximate logits, radius), each (N, V); None when a state is
        not finite or too large for the bound, or D = 1 (where ``torch._int_mm`` misreads
        the transposed weight's layout): the caller takes the full product."""
        if h.shape[1] < 2:
            return None
        peak = torch.linalg.vector_norm(h, float("inf"), dim=1, keepdim=True)  # (N, 1)
        row_scale = peak.clamp(min=1e-30).div_(INT8_MAX)
        steps = torch.round(h / row_scale).clamp_(-INT8_MAX, INT8_MAX)  # (N, D) integers
        rest = torch.addcmul(h, steps, row_scale, value=-1)  # u = h - t p
        norms = torch.stack(
            [torch.linalg.vector_norm(h, dim=1), torch.linalg.vector_norm(rest, dim=1)], dim=1
        )  # (N, 2)
        if not float(norms[:, 0].max()) * self.largest < OVERFLOW_GUARD:  # also NaN
            return None
        total = torch._int_mm(steps.to(torch.int8), self.weight.t())  # (N, V) exact sums
        scales = row_scale * self.scale  # (N, V)
        if self.bias is None:
            approximate = total * scales
        else:
            approximate = torch.addcmul(self.bias, total, scales)
        radius = torch.addmm(self.offset, norms, self.coefficients)  # (N, V)
        return approximate, radius

    def candidates(self, h: Tensor) -> Tensor:
        """(N, D) -> (N, V) bool: the tokens that may be a position's float32 argmax (all
        of them where the screen does not apply)."""
        bounds = self.bounds(h)
        if bounds is None:
            return torch.ones(h.shape[0], self.scale.shape[0], dtype=torch.bool)
        approximate, radius = bounds
        lower = approximate - radius
        return approximate + radius >= lower.amax(dim=1, keepdim=True)


def screened_argmax(
    h: Tensor, screen: OutputScreen, transposed: Tensor, bias: Tensor | None
) -> Tensor:
    """The argmax (N,) of ``h @ transposed + bias`` for h (N, D) float32, ``transposed``
    (D, V) the output weight's contiguous transposed copy (the one the full product reads)."""
    bounds = screen.bounds(h)
    if bounds is None:
        return _full(h, transposed, bias).argmax(dim=-1)
    approximate, radius = bounds
    lower = approximate - radius
    best = lower.amax(dim=1, keepdim=True)  # (N, 1)
    keep = approximate + radius >= best  # (N, V)
    winner = lower.argmax(dim=1)  # a candidate; the answer where it is the only one
    counts = keep.sum(dim=1)
    ambiguous = (counts > 1).nonzero()[:, 0]
    if ambiguous.numel() == 0:
        return winner
    rows = keep.index_select(0, ambiguous)  # (A, V)
    union = rows.any(dim=0).nonzero()[:, 0]  # (C,) ascending: lowest index wins ties
    columns = transposed.index_select(1, union)  # (D, C)
    states = h.index_select(0, ambiguous)
    if bias is None:
        exact = states @ columns
    else:
        exact = torch.addmm(bias.index_select(0, union), states, columns)  # (A, C)
    exact.masked_fill_(~rows.index_select(1, union), float("-inf"))
    winner[ambiguous] = union[exact.argmax(dim=1)]
    top = exact.topk(2, dim=1).values  # (A, 2): every ambiguous row has two candidates
    tolerance = torch.linalg.vector_norm(states, dim=1) * screen.tie + screen.bias_tie
    if bool((top[:, 0] - top[:, 1] <= tolerance).any()):
        return _full(h, transposed, bias).argmax(dim=-1)  # a tie at rounding level
    return winner


def _full(h: Tensor, transposed: Tensor, bias: Tensor | None) -> Tensor:
    return h @ transposed if bias is None else torch.addmm(bias, h, transposed)


class ScreenCache:
    """An :class:`OutputScreen` built on first use and rebuilt when the weight or the bias
    changes (their version counters), like ``layers.TransposedWeight``."""

    def __init__(self):
        self.screen: OutputScreen | None = None
        self.key: tuple | None = None

    def get(self, weight: Tensor, bias: Tensor | None) -> OutputScreen:
        key = (id(weight), weight._version)
        if bias is not None:
            key += (id(bias), bias._version)
        if self.key != key:
            with torch.inference_mode(False), torch.no_grad():
                self.screen = OutputScreen(weight, bias)
            self.key = key
        return self.screen
