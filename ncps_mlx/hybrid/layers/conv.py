"""A gated causal conv block: pointwise in, depthwise causal conv over time, pointwise out."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from .wired_linear import WiredLinear

__all__ = ["CausalConvBlock"]


def causal_depthwise_conv(padded: mx.array, weight: mx.array, bias: mx.array) -> mx.array:
    r"""``c_t = b + \sum_{j=0}^{K-1} w_j \odot u_{t-K+1+j}`` along axis 1.

    ``padded`` is ``(B, K - 1 + T, E)`` (the ``K - 1`` previous inputs, then the new ones),
    ``weight`` ``(E, K)``, ``bias`` ``(E,)``; returns ``(B, T, E)``.
    """
    kernel = weight.shape[1]
    length = padded.shape[1] - kernel + 1
    out = bias
    for j in range(kernel):
        out = out + padded[:, j : j + length] * weight[:, j]
    return out


class CausalConvBlock(nn.Module):
    r"""A GLU-gated causal depthwise convolution between two wiring-masked projections.

    With :math:`[u_t; g_t] = W_{in} x_t + b_{in}` (each of width :math:`E = \text{expand}
    \cdot D`) and per-channel kernels :math:`w_0, \dots, w_{K-1}`:

    .. math::

        c_t = b_c + \sum_{j=0}^{K-1} w_j \odot u_{t-K+1+j}, \qquad
        y_t = W_{out} \big(c_t \odot \sigma(g_t)\big) + b_{out}

    with :math:`u_s = 0` for :math:`s < 0`. ``x`` is ``(B, T, D)``, ``u``, ``g`` and ``c`` are
    ``(B, T, E)``. The cache is the last ``K - 1`` projected inputs :math:`u`, ``(B, K - 1, E)``
    (zeros at the start), so chunked calls and :meth:`step` continue exactly.

    Args:
        d_model (int): Model width ``D``.
        kernel_size (int): Convolution width ``K`` (over time). Default: ``4``.
        expand (int): Inner width factor, ``E = expand * D``. Default: ``2``.
        wiring (Wiring, optional): Structure of the two projections.
    """

    def __init__(self, d_model: int, kernel_size: int = 4, expand: int = 2, wiring=None):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        self.expand = check_int(expand, "expand", minimum=1)
        self.inner = self.expand * self.d_model
        self.in_proj = WiredLinear(self.d_model, 2 * self.inner, wiring)
        scale = 1.0 / math.sqrt(self.kernel_size)
        self.conv_weight = mx.random.uniform(-scale, scale, (self.inner, self.kernel_size))
        self.conv_bias = mx.zeros((self.inner,))
        self.out_proj = WiredLinear(self.inner, self.d_model, wiring)

    def make_cache(self, batch: int, dtype=mx.float32) -> mx.array:
        """Zeros ``(batch, K - 1, E)``: no inputs seen."""
        return mx.zeros((check_int(batch, "batch", 1), self.kernel_size - 1, self.inner), dtype)

    def __call__(self, x: mx.array, cache: mx.array | None = None):
        """``x`` ``(B, T, D)`` -> ``(y (B, T, D), cache)``; ``cache`` continues a stream."""
        if cache is None:
            cache = self.make_cache(x.shape[0], x.dtype)
        u, gate = mx.split(self.in_proj(x), 2, axis=-1)
        padded = mx.concatenate([cache, u], axis=1)
        conv = causal_depthwise_conv(padded, self.conv_weight, self.conv_bias)
        new_cache = padded[:, padded.shape[1] - (self.kernel_size - 1) :]
        return self.out_proj(conv * mx.sigmoid(gate)), new_cache

    def step(self, x_t: mx.array, cache: mx.array):
        """One position: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        y, cache = self(x_t[:, None, :], cache)
        return y[:, 0], cache

    def _extra_repr(self) -> str:
        return f"d_model={self.d_model}, kernel_size={self.kernel_size}, expand={self.expand}"
