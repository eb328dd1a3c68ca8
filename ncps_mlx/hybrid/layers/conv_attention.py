"""A conv–attention fusion layer: a causal convolution (local patterns) and causal
self-attention (global context) on the same input, mixed per channel by a learned gate."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from .conv import CausalConvBlock
from .self_attention import AttentionCache, CausalSelfAttention
from .wired_linear import WiredLinear

__all__ = ["ConvAttentionFusion"]


class ConvAttentionFusion(nn.Module):
    r"""A causal conv branch and a causal attention branch mixed by a learned per-channel gate.

    With :math:`c = \operatorname{Conv}(x)` (a :class:`~ncps_mlx.hybrid.CausalConvBlock`) and
    :math:`a = \operatorname{Attn}(x)` (a :class:`~ncps_mlx.hybrid.CausalSelfAttention`), both
    applied to the same input:

    .. math::

        g_t = \sigma\big(W_g [c_t; a_t] + b_g\big), \qquad
        y_t = g_t \odot c_t + (1 - g_t) \odot a_t

    ``x``, ``c``, ``a``, ``g`` and ``y`` are ``(B, T, D)``, :math:`[c_t; a_t]` is ``(B, T, 2D)``
    and :math:`W_g` is ``(D, 2D)``. :math:`g_t \to 1` keeps the local (conv) features of a
    channel, :math:`g_t \to 0` the global (attention) ones. Both branches are causal, so
    :math:`y_t` depends on :math:`x_{\le t}` only. The cache is the pair ``(conv cache,
    attention cache)``, so chunked calls and :meth:`step` continue exactly.

    Args:
        d_model (int): Model width ``D``.
        kernel_size (int): Width ``K`` of the causal convolution. Default: ``4``.
        num_heads (int): Attention heads ``H``. Default: ``4``.
        head_dim (int, optional): Head width. Default: ``D // H``.
        window_size (int, optional): Sliding attention window (bounds the KV cache). Default:
            ``None`` (the whole prefix).
        wiring (Wiring, optional): Structure of every projection: the conv block's, the
            attention's and the gate :math:`W_g`.
    """

    def __init__(
        self,
        d_model: int,
        kernel_size: int = 4,
        num_heads: int = 4,
        head_dim: int | None = None,
        window_size: int | None = None,
        wiring=None,
    ):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.conv = CausalConvBlock(self.d_model, kernel_size, wiring=wiring)
        self.attention = CausalSelfAttention(
            self.d_model, num_heads, head_dim, window_size, wiring=wiring
        )
        self.gate = WiredLinear(2 * self.d_model, self.d_model, wiring)

    def make_cache(self, batch: int, dtype=mx.float32) -> tuple[mx.array, AttentionCache]:
        """``(conv cache (batch, K - 1, E), empty attention cache)``: nothing seen yet."""
        return self.conv.make_cache(batch, dtype), self.attention.make_cache(batch, dtype)

    def __call__(self, x: mx.array, cache: tuple | None = None):
        """``x`` ``(B, T, D)`` -> ``(y (B, T, D), cache)``; ``cache`` continues a stream."""
        conv_cache, attention_cache = (None, None) if cache is None else cache
        local, conv_cache = self.conv(x, conv_cache)
        attended, attention_cache = self.attention(x, attention_cache)
        gate = mx.sigmoid(self.gate(mx.concatenate([local, attended], axis=-1)))
        return gate * local + (1 - gate) * attended, (conv_cache, attention_cache)

    def step(self, x_t: mx.array, cache: tuple):
        """One position: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        y, cache = self(x_t[:, None, :], cache)
        return y[:, 0], cache

    def _extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, kernel_size={self.conv.kernel_size}, "
            f"num_heads={self.attention.num_heads}, head_dim={self.attention.head_dim}, "
            f"window_size={self.attention.window_size}"
        )
