"""Causal multi-head self-attention with RoPE, an optional sliding window and a KV cache."""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from .wired_linear import WiredLinear

__all__ = ["AttentionCache", "CausalSelfAttention", "split_heads", "merge_heads"]

#: Most ``batch * ceil(num_heads / 4)`` per :func:`mlx.core.fast.rope` call. MLX 0.32's CUDA
#: RoPE kernel spreads that product over the z axis of its thread blocks and, when
#: ``head_dim / 2`` and the number of positions are small (one position per decoding step),
#: makes that axis 128 or more threads long where CUDA allows 64: the launch fails with
#: "cudaGraphAddKernelNode ... invalid argument" from a batch of 128 (4 heads) up. Rows rotate
#: independently, so a larger batch is rotated in slices, with the same result.
ROPE_MAX_ROWS = 64


def split_heads(projected: mx.array, num_heads: int) -> mx.array:
    """``(B, T, H * d_h)`` -> ``(B, H, T, d_h)``."""
    batch, length, width = projected.shape
    return projected.reshape(batch, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def merge_heads(heads: mx.array) -> mx.array:
    """``(B, H, T, d_h)`` -> ``(B, T, H * d_h)``."""
    batch, num_heads, length, head_dim = heads.shape
    return heads.transpose(0, 2, 1, 3).reshape(batch, length, num_heads * head_dim)


def head_dimension(d_model: int, num_heads: int, head_dim: int | None) -> int:
    """``head_dim``, or ``d_model // num_heads`` when it is None (then it must divide)."""
    if head_dim is None:
        if d_model % num_heads:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by num_heads ({num_heads}) "
                "when head_dim is not given"
            )
        head_dim = d_model // num_heads
    return check_int(head_dim, "head_dim", minimum=1)


@dataclass
class AttentionCache:
    """Keys and values seen so far, for streaming.

    Attributes:
        keys (mx.array): ``(B, H, S, head_dim)`` rotated keys of the last ``S`` positions.
        values (mx.array): ``(B, H, S, head_dim)`` their values.
        offset (int): Number of positions consumed so far (the position of the next token).

    With a sliding window the layer trims both arrays to the last ``window_size`` positions after
    every call, so ``S <= window_size`` and memory stays bounded however long the stream; without
    a window they grow by one position per token.
    """

    keys: mx.array
    values: mx.array
    offset: int = 0


class CausalSelfAttention(nn.Module):
    r"""Multi-head causal self-attention whose projections are wiring-masked.

    For each head :math:`h`, with :math:`q_t = R_t W_q^{(h)} x_t`, :math:`k_s = R_s W_k^{(h)}
    x_s` (:math:`R_t` the rotary embedding of position :math:`t`) and :math:`v_s = W_v^{(h)} x_s`:

    .. math::

        o_t^{(h)} = \sum_{s \in S_t} \operatorname{softmax}_s\!\Big(
            \frac{q_t^\top k_s}{\sqrt{d_h}}\Big) v_s, \qquad
        S_t = \{s : t - w < s \le t\}, \qquad
        y_t = W_o [o_t^{(1)}; \dots; o_t^{(H)}]

    where :math:`w` is ``window_size`` (:math:`w = \infty` without a window). Shapes: ``x`` is
    ``(B, T, D)``; queries, keys and values are ``(B, H, T, d_h)``. Positions continue from the
    cache's ``offset``, so chunked calls and :meth:`step` reproduce the whole-sequence call.

    Args:
        d_model (int): Model width ``D``.
        num_heads (int): Number of heads ``H``. Default: ``4``.
        head_dim (int, optional): Head width ``d_h``. Default: ``D // H``.
        window_size (int, optional): Attend to the last ``window_size`` positions only (the
            current one included). Default: ``None`` (the whole prefix).
        wiring (Wiring, optional): Structure of the ``q``/``k``/``v``/``out`` projections.
        rope (bool): Whether to rotate queries and keys (RoPE). Default: ``True``.
        rope_base (float): RoPE base frequency. Default: ``10000``.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int = 4,
        head_dim: int | None = None,
        window_size: int | None = None,
        wiring=None,
        rope: bool = True,
        rope_base: float = 10000.0,
    ):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.num_heads = check_int(num_heads, "num_heads", minimum=1)
        self.head_dim = head_dimension(self.d_model, self.num_heads, head_dim)
        self.window_size = None if window_size is None else check_int(window_size, "window_size", 1)
        if rope and self.head_dim % 2:
            derived = "" if head_dim is not None else " (d_model // num_heads)"
            raise ValueError(f"head_dim{derived} must be even for RoPE, got {self.head_dim}")
        self.rope, self.rope_base = bool(rope), float(rope_base)
        inner = self.num_heads * self.head_dim
        self.q_proj = WiredLinear(self.d_model, inner, wiring)
        self.k_proj = WiredLinear(self.d_model, inner, wiring)
        self.v_proj = WiredLinear(self.d_model, inner, wiring)
        self.out_proj = WiredLinear(inner, self.d_model, wiring)

    def make_cache(self, batch: int, dtype=mx.float32) -> AttentionCache:
        """An empty cache for ``batch`` sequences (no positions seen)."""
        shape = (check_int(batch, "batch", 1), self.num_heads, 0, self.head_dim)
        empty = mx.zeros(shape, dtype)
        return AttentionCache(empty, empty, 0)

    def _rotate(self, x: mx.array, offset: int) -> mx.array:
        """RoPE of ``x`` ``(B, H, T, d_h)`` from position ``offset``, in slices of the batch
        that MLX's CUDA kernel can launch (see :data:`ROPE_MAX_ROWS`)."""
        if not self.rope:
            return x
        rows = max(1, ROPE_MAX_ROWS // -(-self.num_heads // 4))
        rotated = [
            mx.fast.rope(
                x[start : start + rows],
                self.head_dim,
                traditional=False,
                base=self.rope_base,
                scale=1.0,
                offset=offset,
            )
            for start in range(0, x.shape[0], rows)
        ]
        return rotated[0] if len(rotated) == 1 else mx.concatenate(rotated)

    def _mask(self, queries: int, keys: int) -> mx.array:
        """``(queries, keys)`` boolean mask: the last ``queries`` of ``keys`` positions."""
        query_pos = mx.arange(keys - queries, keys)[:, None]
        key_pos = mx.arange(keys)[None, :]
        allowed = key_pos <= query_pos
        if self.window_size is not None:
            allowed = allowed & (query_pos - key_pos < self.window_size)
        return allowed

    def __call__(self, x: mx.array, cache: AttentionCache | None = None):
        """``x`` ``(B, T, D)`` -> ``(y (B, T, D), cache)``; ``cache`` continues a stream."""
        length, offset = x.shape[1], 0 if cache is None else cache.offset
        queries = self._rotate(split_heads(self.q_proj(x), self.num_heads), offset)
        keys = self._rotate(split_heads(self.k_proj(x), self.num_heads), offset)
        values = split_heads(self.v_proj(x), self.num_heads)
        if cache is not None and cache.keys.shape[2]:  # no empty operand for an empty cache
            keys = mx.concatenate([cache.keys, keys], axis=2)
            values = mx.concatenate([cache.values, values], axis=2)
        attended = mx.fast.scaled_dot_product_attention(
            queries,
            keys,
            values,
            scale=self.head_dim**-0.5,
            mask=self._mask(length, keys.shape[2]),
        )
        merged = merge_heads(attended)
        if self.window_size is not None:
            keys, values = keys[:, :, -self.window_size :], values[:, :, -self.window_size :]
        return self.out_proj(merged), AttentionCache(keys, values, offset + length)

    def step(self, x_t: mx.array, cache: AttentionCache):
        """One token: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        y, cache = self(x_t[:, None, :], cache)
        return y[:, 0], cache

    def _extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, num_heads={self.num_heads}, head_dim={self.head_dim}, "
            f"window_size={self.window_size}, rope={self.rope}"
        )
