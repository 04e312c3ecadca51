"""Multi-head damped exponential moving average (MEGA, Ma et al. 2023), the linear-cost
state-space layer under SeqBoat.

Every model dimension d is expanded into ``heads`` scalar EMAs,

    u_t = beta * x_t,   h_t = alpha * u_t + (1 - alpha * delta) * h_{t-1},   y_t = eta . h_t

with alpha, delta in (0, 1) (sigmoids of free parameters) and beta, eta free, so the
output is a causal convolution of x with the kernel

    k_t = sum_heads eta * alpha * beta * (1 - alpha * delta) ** t,

computed once per length and applied with an FFT: O(T log T) per sequence, no T x T
matrix. The bidirectional variant (for encoders) adds a second, independently
parameterised EMA run from the end of the sequence. A residual ``omega * x`` is added.

Padding: positions where ``real`` is False are zeroed before the convolution, so with
right padding every real position gets exactly what the unpadded sequence gives, in
both directions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MultiHeadEMA(nn.Module):
    """x (B, T, D) -> EMA output (B, T, D); causal, or bidirectional with a second EMA."""

    def __init__(self, d_model: int, heads: int, bidirectional: bool):
        super().__init__()
        directions = 2 if bidirectional else 1
        shape = (directions, d_model, heads)
        self.bidirectional = bidirectional
        # MEGA's initialisation: decays spread over (0, 1), beta around +-1, eta small
        self.alpha = nn.Parameter(torch.randn(shape) * 0.2)
        self.delta = nn.Parameter(torch.randn(shape) * 0.2)
        beta = torch.ones(shape)
        beta[..., 1::2] = -1.0
        self.beta = nn.Parameter(beta + torch.randn(shape) * 0.02)
        self.eta = nn.Parameter(torch.randn(shape) * heads**-0.5)
        self.omega = nn.Parameter(torch.randn(d_model) * 0.2)

    def decays(self) -> tuple[Tensor, Tensor]:
        """(directions, D, heads) input weights alpha * beta * eta and decays 1 - alpha*delta."""
        alpha, delta = torch.sigmoid(self.alpha), torch.sigmoid(self.delta)
        return alpha * self.beta * self.eta, 1.0 - alpha * delta

    def kernel(self, length: int) -> Tensor:
        """(directions, D, length): k_t for t = 0 .. length - 1."""
        weight, decay = self.decays()
        t = torch.arange(length, device=decay.device, dtype=decay.dtype)
        powers = torch.exp(t * torch.log(decay)[..., None])  # (dir, D, heads, T)
        return (weight[..., None] * powers).sum(dim=2)

    def forward(self, x: Tensor, real: Tensor | None = None) -> Tensor:
        """x (B, T, D); real (B, T) True at real tokens (None: all real)."""
        if real is not None:
            x = x * real[..., None].to(x.dtype)
        T = x.shape[1]
        k = self.kernel(T)  # (dir, D, T)
        signal = x.transpose(1, 2)  # (B, D, T)
        y = _causal_conv(signal, k[0])
        if self.bidirectional:
            y = y + _causal_conv(signal.flip(-1), k[1]).flip(-1)
        return y.transpose(1, 2) + self.omega * x


def _causal_conv(signal: Tensor, kernel: Tensor) -> Tensor:
    """y_t = sum_{s <= t} kernel_{t-s} signal_s, per channel; signal (B, D, T), kernel (D, T)."""
    T = signal.shape[-1]
    n = 2 * T
    spectrum = torch.fft.rfft(signal, n=n) * torch.fft.rfft(kernel, n=n)
    return torch.fft.irfft(spectrum, n=n)[..., :T]
