"""``MambaBlock``: a selective state-space (Mamba) block, chunked scan and recurrent step."""

from __future__ import annotations

import math
from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from ...wirings import Wiring
from .conv import causal_depthwise_conv
from .wired_linear import WiredLinear

__all__ = ["MambaBlock", "MambaCache", "selective_scan", "selective_step"]


class MambaCache(NamedTuple):
    """Streaming state of a :class:`MambaBlock`.

    Attributes:
        conv: The last ``conv_width - 1`` conv inputs, ``(B, conv_width - 1, E)``.
        ssm: The SSM state :math:`h`, ``(B, E, N)``.
    """

    conv: mx.array
    ssm: mx.array


def selective_step(h, x, delta, A, B, C):
    r"""One step of the selective SSM (the reference recurrence).

    :math:`h' = e^{\Delta A} \odot h + (\Delta x) B^T`, :math:`y = h' C`.
    Shapes: ``h`` ``(B, E, N)``, ``x``/``delta`` ``(B, E)``, ``A`` ``(E, N)``, ``B``/``C``
    ``(B, N)``. Returns ``(y (B, E), h')``.
    """
    decay = mx.exp(delta[..., None] * A)
    h = decay * h + (delta * x)[..., None] * B[:, None, :]
    return (h @ C[..., None])[..., 0], h


def _scan_pairs(a, b):
    r"""Inclusive scan of ``h_t = a_t h_{t-1} + b_t`` (from ``h = 0``) along axis ``-3``.

    Recursive doubling: ``log2`` of the axis length vectorised steps; returns the cumulative
    decays :math:`\prod_{s \le t} a_s` and the states. Stable: every ``a`` is in ``(0, 1]``.
    """
    shift, length = 1, a.shape[-3]
    while shift < length:
        width = [(0, 0)] * (a.ndim - 3) + [(shift, 0), (0, 0), (0, 0)]
        b = b + a * mx.pad(b[..., :-shift, :, :], width)
        a = a * mx.pad(a[..., :-shift, :, :], width, constant_values=1.0)
        shift *= 2
    return a, b


def selective_scan(h0, x, delta, A, B, C, chunk_size: int = 32):
    r"""The selective SSM over a whole sequence, as a two-level chunked scan.

    With :math:`a_t = e^{\Delta_t A}` and :math:`b_t = (\Delta_t \odot x_t) B_t^T`, every chunk
    of ``L`` steps is scanned in parallel (all chunks at once), then the chunks' end states are
    scanned the same way from ``h0``, and each step adds its chunk's start state decayed by its
    cumulative :math:`a`. ``O(T \log L + (T / L) \log(T / L))`` work, no loop over time.
    Shapes: ``h0`` ``(B, E, N)``, ``x``/``delta`` ``(B, T, E)``, ``B``/``C`` ``(B, T, N)``.
    Returns ``(y (B, T, E), h_T)``.
    """
    batch, steps, _ = x.shape
    size = min(chunk_size, steps)
    pad = -steps % size
    a = mx.exp(delta[..., None] * A)  # (B, T, E, N)
    b = (delta * x)[..., None] * B[:, :, None, :]
    if pad:  # identity steps (a = 1, b = 0) at the end
        a = mx.pad(a, [(0, 0), (0, pad), (0, 0), (0, 0)], constant_values=1.0)
        b = mx.pad(b, [(0, 0), (0, pad), (0, 0), (0, 0)])
    chunks = (steps + pad) // size
    a, b = _scan_pairs(
        a.reshape(batch, chunks, size, *a.shape[2:]), b.reshape(batch, chunks, size, *b.shape[2:])
    )
    first = b[:, :1, -1] + a[:, :1, -1] * h0[:, None]  # chunk 0's end state, from h0
    _, ends = _scan_pairs(a[:, :, -1], mx.concatenate([first, b[:, 1:, -1]], axis=1))
    starts = mx.concatenate([h0[:, None], ends[:, :-1]], axis=1)
    states = a * starts[:, :, None] + b
    states = states.reshape(batch, chunks * size, *states.shape[3:])[:, :steps]
    return (states * C[:, :, None, :]).sum(-1), ends[:, -1]


def _positive(value, name):
    return check_int(value, name, minimum=1)


class MambaBlock(nn.Module):
    r"""A Mamba (selective SSM) block, ``(B, T, D) -> (B, T, D)``, causal.

    With inner width :math:`E = \text{expand\_factor} \cdot D`, state size :math:`N`, dt rank
    :math:`R` and conv width :math:`W`:

    .. math::

        [x_t, z_t] &= W_{in} u_t \\
        \bar x_t &= \text{SiLU}\Big(c + \textstyle\sum_{k=0}^{W-1} w_k \odot x_{t-W+1+k}\Big) \\
        [\delta_t, B_t, C_t] &= W_x \bar x_t, \qquad
            \Delta_t = \text{softplus}(W_{dt} \delta_t + b_{dt}) \\
        h_t &= \exp(\Delta_t A) \odot h_{t-1} + (\Delta_t \odot \bar x_t) B_t^T,
            \qquad A = -\exp(A_{log}) \\
        y_t &= W_{out}\big((h_t C_t + D \odot \bar x_t) \odot \text{SiLU}(z_t)\big)

    Shapes: ``u`` ``(B, T, D)``; :math:`x, z, \bar x, \Delta` ``(B, T, E)``; :math:`B, C`
    ``(B, T, N)``; :math:`h` ``(B, E, N)``; :math:`A` ``(E, N)``; conv weight ``(E, W)``. As in
    Mamba, :math:`A_{log} = \log(1..N)` per channel, :math:`D = 1`, and :math:`b_{dt}` makes
    :math:`\Delta` start log-uniform in ``[1e-3, 0.1]``.

    ``__call__`` runs a whole sequence with :func:`.selective_scan`; :meth:`step` advances one
    step with :func:`.selective_step`; both take and return a :class:`MambaCache`.

    Args:
        d_model (int): Model width ``D``.
        state_size (int): SSM state size ``N``. Default ``16``.
        expand_factor (int): ``E = expand_factor * D``. Default ``2``.
        conv_width (int): Causal depthwise conv width ``W``. Default ``4``.
        dt_rank (int, optional): Rank ``R`` of the Δ projection. Default ``ceil(D / 16)``.
        wiring (Wiring, optional): Masks the in- and out-projections (:class:`WiredLinear`).
        chunk_size (int): Chunk length of the whole-sequence scan. Default ``32``.
    """

    def __init__(
        self,
        d_model: int,
        state_size: int = 16,
        expand_factor: int = 2,
        conv_width: int = 4,
        dt_rank: int | None = None,
        wiring: Wiring | None = None,
        chunk_size: int = 32,
    ):
        super().__init__()
        self.d_model = _positive(d_model, "d_model")
        self.state_size = _positive(state_size, "state_size")
        self.expand_factor = _positive(expand_factor, "expand_factor")
        self.conv_width = _positive(conv_width, "conv_width")
        self.dt_rank = _positive(
            math.ceil(self.d_model / 16) if dt_rank is None else dt_rank, "dt_rank"
        )
        self.chunk_size = _positive(chunk_size, "chunk_size")
        if wiring is not None and not isinstance(wiring, Wiring):
            raise TypeError(f"wiring must be a Wiring, got {type(wiring).__name__}")
        E, N, R = self.inner_size, self.state_size, self.dt_rank
        self.in_proj = WiredLinear(self.d_model, 2 * E, wiring, bias=False)
        scale = 1.0 / math.sqrt(self.conv_width)
        self.conv_weight = mx.random.uniform(-scale, scale, (E, self.conv_width))
        self.conv_bias = mx.random.uniform(-scale, scale, (E,))
        self.x_proj = WiredLinear(E, R + 2 * N, bias=False)
        self.dt_proj = WiredLinear(R, E, bias=True)
        dt = mx.exp(mx.random.uniform(math.log(1e-3), math.log(0.1), (E,)))
        self.dt_proj.bias = dt + mx.log(-mx.expm1(-dt))  # softplus^-1(dt)
        self.A_log = mx.tile(mx.log(mx.arange(1, N + 1, dtype=mx.float32)), (E, 1))
        self.D = mx.ones((E,))
        self.out_proj = WiredLinear(E, self.d_model, wiring, bias=False)

    @property
    def inner_size(self) -> int:
        return self.expand_factor * self.d_model

    def make_cache(self, batch: int, dtype=mx.float32) -> MambaCache:
        """The empty state of ``batch`` sequences."""
        batch = _positive(batch, "batch")
        return MambaCache(
            mx.zeros((batch, self.conv_width - 1, self.inner_size), dtype),
            mx.zeros((batch, self.inner_size, self.state_size), dtype),
        )

    def _check(self, x, ndim, cache):
        if x.ndim != ndim or x.shape[-1] != self.d_model:
            shape = "(B, T, D)" if ndim == 3 else "(B, D)"
            raise ValueError(
                f"input must have shape {shape} with D = d_model = {self.d_model}, got {x.shape}"
            )
        if cache is None:
            return self.make_cache(x.shape[0], x.dtype)
        if not isinstance(cache, MambaCache) or cache.ssm.shape[0] != x.shape[0]:
            raise ValueError(f"cache must be a MambaCache for batch {x.shape[0]}")
        return cache

    def _conv(self, x, conv_state):
        """Causal depthwise conv + SiLU over ``x`` ``(B, T, E)``, continuing ``conv_state``."""
        padded = mx.concatenate([conv_state, x], axis=1)
        out = causal_depthwise_conv(padded, self.conv_weight, self.conv_bias)
        return nn.silu(out), padded[:, padded.shape[1] - (self.conv_width - 1) :]

    def _selection(self, xc):
        """Input-dependent ``(Δ, B, C)`` from the conv output ``xc`` ``(..., E)``."""
        R, N = self.dt_rank, self.state_size
        low_rank, B, C = mx.split(self.x_proj(xc), [R, R + N], axis=-1)
        return nn.softplus(self.dt_proj(low_rank)), B, C

    def __call__(self, x: mx.array, cache: MambaCache | None = None):
        """``x`` ``(B, T, D)`` -> ``(y (B, T, D), cache)``; ``cache`` continues a sequence."""
        cache = self._check(x, 3, cache)
        xs, z = mx.split(self.in_proj(x), 2, axis=-1)
        xc, conv_state = self._conv(xs, cache.conv)
        delta, B, C = self._selection(xc)
        A = -mx.exp(self.A_log)
        y, h = selective_scan(cache.ssm, xc, delta, A, B, C, self.chunk_size)
        y = (y + self.D * xc) * nn.silu(z)
        return self.out_proj(y), MambaCache(conv_state, h)

    def step(self, x_t: mx.array, cache: MambaCache | None = None):
        """One step: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        cache = self._check(x_t, 2, cache)
        xs, z = mx.split(self.in_proj(x_t), 2, axis=-1)
        xc, conv_state = self._conv(xs[:, None], cache.conv)
        xc = xc[:, 0]
        delta, B, C = self._selection(xc)
        y, h = selective_step(cache.ssm, xc, delta, -mx.exp(self.A_log), B, C)
        y = (y + self.D * xc) * nn.silu(z)
        return self.out_proj(y), MambaCache(conv_state, h)

    def _extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, state_size={self.state_size}, "
            f"expand_factor={self.expand_factor}, conv_width={self.conv_width}, "
            f"dt_rank={self.dt_rank}, chunk_size={self.chunk_size}"
        )
