"""A lossless screened argmax of the output layer (``decode.screen``): int8 bounds, fp32 ties.

Greedy, IAD, speculative and GAD verification read only the argmax of each position's
logits ``L = h @ W.T + b`` (V = vocabulary, D = model width), and at batch 1 on a CPU the
float32 product with the (V, D) output weight is the largest of a decoder pass. The screen
computes cheap approximate logits ``A`` with an int8 copy of ``W`` (exact int32 sums, as
``models/quantize.py``) and a rigorous bound ``r`` (one per position) on how far any of them
can be from its float32 logit, and keeps the tokens with ``A_v >= max_w A_w - 2 r``: the
float32 argmax is always among them (below). Where one is left it is the answer, with no
float32 work; otherwise the candidates of the ambiguous positions are recomputed in float32
(one product over the union of their columns, gathered from the transposed copy the full
product reads; a position's non-candidates at -inf). A gathered product may round
differently from the full one (another kernel; even the full product rounds a row
differently with other rows beside it), so where the two best recomputed logits of a
position are closer than two float32 evaluations can disagree, the pass takes the full
product of all its positions, the very call the unscreened model makes, and its rounding
decides, bit for bit as without the screen. Elsewhere every float32 evaluation has the
same argmax. So the screen returns the unscreened argmax, not an approximation of it.

The bound, per token v (row ``W_v``) and position (state ``h``). At build time, in float64
from the float32 weight: ``W_v = s q_v + r_v`` with one scale ``s = max|W| / 127`` and
``q_v`` int8, and ``R_v >= ||r_v||``, ``Q_v >= s ||q_v||``, ``N_v >= ||W_v||`` (2-norms).
Per position: ``h = t p + u`` with ``t = max|h| / 127`` and ``p`` integers in [-127, 127].
Then exactly ``W_v.h = s t (q_v.p) + s (q_v.u) + r_v.h``, so by Cauchy-Schwarz

    |W_v.h - s t (q_v.p)| <= R_v ||h|| + Q_v ||u||.

Floating point, all bounded by ``sigma * M_v * (||h|| + ||u||)`` or ``sigma * |b_v|``, with
``M_v = N_v + R_v + Q_v`` and ``sigma = (D + 2) 2^-23 + 2^-18``:

- the float32 reference logit itself: any order of the D products and D sums, bias included,
  is within ``gamma_(D+1) (sum_i |h_i W_vi| + |b_v|) <= (D + 2) 2^-24 (||h|| N_v + |b_v|)`` of
  the exact value (the first term of sigma is twice that);
- the screen's own float32 work (the int32 sum times two scales, the bias, the radius and
  the threshold: about a dozen roundings of quantities below ``2 M_v (||h|| + ||u||) +
  |b_v|``), each at most 2^-24 of it: the 2^-18 term of sigma covers them;
- ``||h||`` and ``||u||`` are float32 norms of float32 vectors (``u`` is computed as
  ``h - t p``): the true norms are at most the computed ones times
  ``rho = 1 + (D + 8) 2^-22``, plus ``2^-23 ||h||`` for ``u``.

So every float32 logit lies within ``E_v = rho ||h|| (R_v + sigma M_v) + rho (||u|| +
2^-23 ||h||) (Q_v + sigma M_v) + 2 sigma |b_v|`` of ``A_v``, and within ``r``, the same with
each coefficient's maximum over v (rounded up when cast to float32). If ``v*`` is the
float32 argmax, ``A_v* + r >= L_v* >= L_w >= A_w - r`` for all w, so ``v*`` is kept. One
radius per position and one scale for the matrix keep the work over the (N, V) scores to a
max and a comparison of the exact integer sums (``A = s t (q.p)`` without a bias; per-row
scales would not shrink the radius, which the largest row's rounding sets either way).
Two float32 evaluations of one logit differ by at most ``2 gamma_(D+1) (sum_i |h_i W_vi| +
|b_v|)``, so a recomputed top-two gap above ``(D + 4) 2^-22`` times the larger of those sums
leaves no tie to decide. Positions whose states are not finite or so large that a
logit could overflow take the full product. On a trained model one token is left at most
positions (bench/README.md reports the counts).

CPU only (``torch._int_mm``'s CUDA kernel wants other shapes, and there the float product
is cheap), and only at torch's default float32 matmul precision (the bound assumes float32
products); an int8 or compiled output layer keeps its own product (``Seq2SeqBase``
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
    """The int8 copy of an output weight (V, D), one scale for the whole matrix, with the
    coefficients of its error bound."""

    def __init__(self, weight: Tensor, bias: Tensor | None):
        weight = weight.detach().float()
        V, D = weight.shape
        if 2 * D * INT8_MAX * INT8_MAX >= 2**31:  # sums and thresholds fit in int32
            raise ValueError(f"d_model {D} is too wide for exact int32 sums")
        exact = weight.double()
        scale = max(float(exact.abs().max()), 1e-30) / INT8_MAX  # s, float64
        quantized = (exact / scale).round().clamp(-INT8_MAX, INT8_MAX)  # q (V, D)
        scaled = scale * quantized  # s q_v, float64 (rounding: 2^-53, inside the slack)
        residual = torch.linalg.vector_norm(exact - scaled, dim=1)  # R_v
        rounded = torch.linalg.vector_norm(scaled, dim=1)  # Q_v
        total = torch.linalg.vector_norm(exact, dim=1) + residual + rounded  # M_v
        sigma = (D + 2) * 2.0**-23 + 2.0**-18
        rho = 1 + (D + 8) * 2.0**-22
        bias64 = torch.zeros(V, dtype=torch.float64) if bias is None else bias.double()
        of_h = rho * (residual + sigma * total) + rho * 2.0**-23 * (rounded + sigma * total)
        of_u = rho * (rounded + sigma * total)
        # radius r = [||h||, ||u||] @ coefficients + offset, the largest E_v of a position
        self.coefficients = _round_up(torch.stack([of_h.max(), of_u.max()]))
        self.offset = _round_up(2 * sigma * bias64.abs().max() + 2.0**-100)[None]  # (1,)
        self.weight = quantized.to(torch.int8).contiguous()  # (V, D), enters transposed
        self.scale = scale
        exact_zero = bias is None or not bool(bias.any())  # adds nothing to float32 logits
        self.bias = None if exact_zero else bias.detach().float().clone()
        self.largest = float(total.max())  # max_v M_v
        self.slack_factor = 2 * (1 + 2.0**-20) / scale  # 2 / s, up by more than 2 roundings
        self.widest = 2 * D * INT8_MAX * INT8_MAX  # a slack this large keeps every token

    def survivors(self, h: Tensor) -> Tensor | None:
        """h (N, D) float32 -> (N, V) bool: the tokens that may be a position's float32
        argmax (the best approximation always among them); None when a state is not finite
        or too large for the bound, or D = 1 (where ``torch._int_mm`` misreads the
        transposed weight's layout): the caller takes the full product."""
        if h.shape[0] == 0 or h.shape[1] < 2:
            return None
        peak = torch.linalg.vector_norm(h, float("inf"), dim=1, keepdim=True)  # (N, 1)
        row_scale = peak.clamp_(min=1e-30).div_(INT8_MAX)  # t
        steps = torch.div(h, row_scale).round_()  # p: |h / t| <= 127 (1 + 2^-23)
        rest = torch.addcmul(h, steps, row_scale, value=-1)  # u = h - t p
        norms = torch.linalg.vector_norm(torch.stack([h, rest], dim=1), dim=2)  # (N, 2)
        if not float(norms.max()) * self.largest < OVERFLOW_GUARD:  # also NaN
            return None
        radius = torch.addmv(self.offset, norms, self.coefficients)  # (N,)
        sums = torch._int_mm(steps.to(torch.int8), self.weight.t())  # (N, V): A = s t sums
        if self.bias is None:  # compare the exact integer sums: no float pass over (N, V)
            # keep sums >= top - 2 r / (s t), rounded down: top - ceil(2 r / (s t))
            slack = torch.div(radius, row_scale[:, 0]).mul_(self.slack_factor).ceil_()
            slack = slack.clamp_(max=self.widest).to(torch.int32)
            return sums >= (sums.amax(dim=1) - slack)[:, None]
        scores = torch.addcmul(self.bias, sums, row_scale * self.scale)  # A
        threshold = torch.add(scores.amax(dim=1), radius, alpha=-2)
        return scores >= threshold[:, None]

    def candidates(self, h: Tensor) -> Tensor:
        """(N, D) -> (N, V) bool: the tokens that may be a position's float32 argmax (all
        of them where the screen does not apply)."""
        keep = self.survivors(h)
        if keep is None:
            return torch.ones(h.shape[0], self.weight.shape[0], dtype=torch.bool)
        return keep


def screened_argmax(
    h: Tensor, screen: OutputScreen, transposed: Tensor, bias: Tensor | None
) -> Tensor:
    """The argmax (N,) of ``h @ transposed + bias`` for h (N, D) float32, ``transposed``
    (D, V) the output weight's contiguous transposed copy (the one the full product reads):
    the unscreened model's argmax, bit for bit."""
    keep = screen.survivors(h)
    if keep is None:
        return _full(h, transposed, bias).argmax(dim=-1)
    pairs = keep.nonzero()  # (P, 2) by position, then token
    if pairs.shape[0] == h.shape[0]:  # one candidate per position: the answer
        return pairs[:, 1]
    counts = torch.bincount(pairs[:, 0], minlength=h.shape[0])  # (N,), each >= 1
    best = pairs[counts.cumsum(0) - counts, 1]  # each position's first candidate
    ambiguous = (counts > 1).nonzero()[:, 0]
    tokens, tied = recompute(h.index_select(0, ambiguous), keep, ambiguous, transposed, bias)
    if bool(tied.any()):
        return _full(h, transposed, bias).argmax(dim=-1)  # a tie at rounding level
    best[ambiguous] = tokens
    return best


def recompute(
    states: Tensor, keep: Tensor, ambiguous: Tensor, transposed: Tensor, bias: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The float32 argmax (A,) among the kept tokens of positions ``ambiguous`` (A,) with
    states (A, D), and (A,) bool: where the two best are a rounding-level tie, which only
    the full product's own rounding may decide."""
    rows = keep.index_select(0, ambiguous)  # (A, V)
    union = rows.any(dim=0).nonzero()[:, 0]  # (C,)
    columns = transposed.index_select(1, union)  # (D, C)
    spread = states.abs() @ columns.abs()  # (A, C): sum_i |h_i W_vi|
    if bias is None:
        exact = states @ columns
    else:
        exact = torch.addmm(bias.index_select(0, union), states, columns)  # (A, C)
        spread += bias.index_select(0, union).abs()
    allowed = rows.index_select(1, union)
    top = exact.masked_fill_(~allowed, float("-inf")).topk(2, dim=1)
    tie = (states.shape[1] + 4) * 2.0**-22
    tolerance = spread.masked_fill_(~allowed, 0).amax(dim=1) * tie
    return union[top.indices[:, 0]], top.values[:, 0] - top.values[:, 1] <= tolerance


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
