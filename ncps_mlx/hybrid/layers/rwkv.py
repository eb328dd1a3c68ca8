r"""An RWKV-6 ("Finch") block: time-mix with data-dependent decay, then channel-mix."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from .gla import decay_attention_chunked, decay_attention_step
from .wired_linear import WiredLinear

__all__ = ["RWKVBlock", "RWKVCache"]


class RWKVCache(NamedTuple):
    """The streaming state of an :class:`RWKVBlock`.

    Attributes:
        time_shift: ``(B, D)`` the last input of the time-mix (its token shift).
        state: ``(B, H, K, K)`` the per-head recurrent state :math:`S`.
        channel_shift: ``(B, D)`` the last input of the channel-mix.
    """

    time_shift: mx.array
    state: mx.array
    channel_shift: mx.array


def token_shift(x, last):
    """``x`` ``(B, T, D)`` shifted one step right, ``last`` ``(B, D)`` filling step 0."""
    return mx.concatenate([last[:, None, :], x[:, :-1, :]], axis=1)


class RWKVBlock(nn.Module):
    r"""An RWKV-6 block: time-mix (data-dependent decay) followed by channel-mix.

    With the token shift :math:`\Delta_t = x_{t-1} - x_t` and, for each of
    :math:`\ast \in \{r, k, v, g, w\}`, RWKV-6's data-dependent interpolation (``ddlerp``)

    .. math::

        x^\ast_t = x_t + \Delta_t \odot \big(\mu_\ast + \tanh\!\big((x_t + \Delta_t \odot \mu_x)
            M\big)_\ast P_\ast\big)

    (one shared low-rank ``M`` of ``5 x mix_rank`` outputs, split in five, each part with its own
    ``P_*``), the time-mix is (per head of size :math:`K`)

    .. math::

        r_t, k_t, v_t &= x^r_t W_r,\; x^k_t W_k,\; x^v_t W_v, \qquad
        g_t = \operatorname{SiLU}(x^g_t W_g) \\
        w_t &= \exp\!\big(-\exp(d + \tanh(x^w_t A) B)\big) \\
        S_t &= \operatorname{diag}(w_t) S_{t-1} + k_t^\top v_t, \qquad
        o_t = r_t \big(S_{t-1} + \operatorname{diag}(u) k_t^\top v_t\big) \\
        a_t &= \big(\operatorname{GroupNorm}_H(o_t) \odot g_t\big) W_o

    and, on :math:`h_t = x_t + a_t` normalised (:math:`\hat h_t = \operatorname{LN}(h_t)`), the
    channel-mix with its own shift and mixes :math:`\nu_k, \nu_r`:

    .. math::

        c_t = \sigma(\hat h^r_t W_r') \odot \big(\operatorname{ReLU}(\hat h^k_t W_k')^2\big) W_v'

    The block returns the update :math:`a_t + c_t`, so ``x + block(x)`` is RWKV-6's residual block
    without its first LayerNorm. (Wrapped as ``x + block(LN(x))`` by a pre-norm stack, the
    channel-mix sees :math:`\operatorname{LN}(\operatorname{LN}(x) + a)` where RWKV-6 has
    :math:`\operatorname{LN}(x + a)`.) Both the ``ddlerp`` token shift and the decay :math:`w_t`
    are data-dependent as in RWKV-6 (low-rank ``M, P_*`` and ``A, B``); the channel-mix uses
    static mixes, as RWKV-6 does. Only the initialisation is simpler than the reference code
    (ramps over channels, small random low-rank weights). GroupNorm is per head and per time
    step (a LayerNorm over each head's :math:`K` channels, eps ``64e-5``). Every
    projection is a :class:`WiredLinear` masked by ``wiring``.

    ``__call__`` uses the chunkwise scan :func:`~ncps_mlx.hybrid.layers.gla.decay_attention_chunked`
    (linear in ``T``); :meth:`step` the recurrence. Shapes: ``x`` ``(B, T, D)``, cache an
    :class:`RWKVCache`.

    Args:
        d_model (int): Model width ``D`` (a multiple of ``head_size``).
        head_size (int): Head size ``K``. Default ``64``.
        wiring (Wiring, optional): Mask of every projection (fully connected when ``None``).
        chunk_size (int): Chunk length of the chunkwise form. Default ``64``.
        ffn_hidden (int, optional): Channel-mix width; default ``int(3.5 * D)``.
        decay_rank (int): Rank of the decay projection ``A, B``. Default ``64``.
        mix_rank (int): Rank of each ``ddlerp`` projection ``M_*, P_*``. Default ``32``.
    """

    def __init__(
        self,
        d_model,
        head_size=64,
        wiring=None,
        chunk_size=64,
        ffn_hidden=None,
        decay_rank=64,
        mix_rank=32,
    ):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.head_size = check_int(head_size, "head_size", minimum=1)
        if self.d_model % self.head_size:
            raise ValueError(f"d_model ({d_model}) must be a multiple of head_size ({head_size})")
        self.num_heads = self.d_model // self.head_size
        self.chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
        hidden = check_int(
            int(3.5 * self.d_model) if ffn_hidden is None else ffn_hidden, "ffn_hidden", minimum=1
        )
        rank = check_int(decay_rank, "decay_rank", minimum=1)
        mix_rank = check_int(mix_rank, "mix_rank", minimum=1)
        d = self.d_model
        ramp = mx.arange(d) / max(d - 1, 1)
        self.time_mix = mx.stack([ramp, ramp, 0.5 * ramp + 0.25, ramp, ramp])  # r, k, v, g, w
        self.mix_base = ramp
        self.mix_down = WiredLinear(d, 5 * mix_rank, wiring, bias=False)
        self.mix_up = [WiredLinear(mix_rank, d, wiring, bias=False) for _ in range(5)]
        for up in self.mix_up:
            up.weight = 0.1 * up.weight
        self.receptance = WiredLinear(d, d, wiring, bias=False)
        self.key = WiredLinear(d, d, wiring, bias=False)
        self.value = WiredLinear(d, d, wiring, bias=False)
        self.gate = WiredLinear(d, d, wiring, bias=False)
        self.decay_down = WiredLinear(d, rank, wiring, bias=False)
        self.decay_up = WiredLinear(rank, d, wiring, bias=False)
        self.decay_up.weight = 0.1 * self.decay_up.weight
        self.decay_base = -6.0 + 5.0 * ramp**0.7  # log(-log w) at zero input: slow..fast
        self.bonus = 0.5 * mx.ones((self.num_heads, self.head_size))
        self.norm_weight = mx.ones((d,))
        self.norm_bias = mx.zeros((d,))
        self.output = WiredLinear(d, d, wiring, bias=False)
        self.channel_norm = nn.LayerNorm(d)
        self.channel_mix = mx.stack([ramp, ramp])  # k, r
        self.channel_key = WiredLinear(d, hidden, wiring, bias=False)
        self.channel_value = WiredLinear(hidden, d, wiring, bias=False)
        self.channel_receptance = WiredLinear(d, d, wiring, bias=False)

    def make_cache(self, batch: int, dtype=mx.float32) -> RWKVCache:
        """Zero shifts and state for ``batch`` sequences."""
        zeros = mx.zeros((batch, self.d_model), dtype)
        state = mx.zeros((batch, self.num_heads, self.head_size, self.head_size), dtype)
        return RWKVCache(zeros, state, zeros)

    def _heads(self, x):
        return x.reshape(*x.shape[:-1], self.num_heads, self.head_size)

    def time_inputs(self, x, previous):
        """``r, k, v, log w`` ``(..., H, K)`` and the gate ``g`` ``(..., D)`` of ``x``."""
        delta = previous - x
        low = mx.split(mx.tanh(self.mix_down(x + delta * self.mix_base)), 5, axis=-1)
        parts = zip(self.time_mix, self.mix_up, low, strict=True)
        xr, xk, xv, xg, xw = (x + delta * (mu + up(z)) for mu, up, z in parts)
        log_decay = -mx.exp(self.decay_base + self.decay_up(mx.tanh(self.decay_down(xw))))
        heads = (self.receptance(xr), self.key(xk), self.value(xv), log_decay)
        return (*map(self._heads, heads), nn.silu(self.gate(xg)))

    def time_output(self, o, g):
        """``(GroupNorm(o) ⊙ g) W_o`` for ``o`` ``(..., H, K)``."""
        mean = o.mean(-1, keepdims=True)
        normed = (o - mean) * mx.rsqrt(o.var(-1, keepdims=True) + 64e-5)
        normed = normed.reshape(*o.shape[:-2], -1) * self.norm_weight + self.norm_bias
        return self.output(normed * g)

    def channel_output(self, h, previous):
        """The channel-mix of the normalised ``h`` given the previous one."""
        hk, hr = (h + mu * (previous - h) for mu in self.channel_mix)
        value = self.channel_value(mx.square(nn.relu(self.channel_key(hk))))
        return mx.sigmoid(self.channel_receptance(hr)) * value

    def __call__(self, x: mx.array, cache: RWKVCache | None = None):
        """``x`` ``(B, T, D)`` -> ``(update (B, T, D), cache)``; ``cache`` continues a sequence."""
        if cache is None:
            cache = self.make_cache(x.shape[0], x.dtype)
        r, k, v, log_w, g = self.time_inputs(x, token_shift(x, cache.time_shift))
        r, k, v, log_w = (a.transpose(0, 2, 1, 3) for a in (r, k, v, log_w))
        o, state = decay_attention_chunked(
            r, k, v, log_w, cache.state, self.chunk_size, bonus=self.bonus
        )
        a = self.time_output(o.transpose(0, 2, 1, 3), g)
        h = self.channel_norm(x + a)
        c = self.channel_output(h, token_shift(h, cache.channel_shift))
        return a + c, RWKVCache(x[:, -1], state, h[:, -1])

    def step(self, x_t: mx.array, cache: RWKVCache):
        """One step: ``x_t`` ``(B, D)`` -> ``(update_t (B, D), cache)``."""
        r, k, v, log_w, g = self.time_inputs(x_t, cache.time_shift)
        o, state = decay_attention_step(r, k, v, log_w, cache.state, bonus=self.bonus)
        a = self.time_output(o, g)
        h = self.channel_norm(x_t + a)
        c = self.channel_output(h, cache.channel_shift)
        return a + c, RWKVCache(x_t, state, h)

    def _extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, head_size={self.head_size}, num_heads={self.num_heads}, "
            f"chunk_size={self.chunk_size}"
        )
