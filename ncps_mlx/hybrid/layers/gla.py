r"""Gated linear attention (GLA, Yang et al. 2024) and the decayed linear-attention scan it shares
with RWKV-6.

Both layers run the recurrence

.. math::

    S_t = \operatorname{diag}(\alpha_t) S_{t-1} + k_t^\top v_t, \qquad
    \alpha_t = \exp(g_t) \in (0, 1]^{d_k}

with a per-head state :math:`S_t \in \mathbb{R}^{d_k \times d_v}`. GLA reads
:math:`o_t = q_t S_t`; RWKV-6 reads :math:`o_t = r_t (S_{t-1} + \operatorname{diag}(u) k_t^\top
v_t)`. :func:`decay_attention_step` is one step of it; :func:`.decay_attention_chunked` is the
chunkwise form, linear in :math:`T`.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from .self_attention import head_dimension
from .wired_linear import WiredLinear

__all__ = ["GatedLinearAttention", "decay_attention_chunked", "decay_attention_step"]


#: Log-decays are clamped here (``e^-30`` is a complete reset in float32): unbounded values
#: (e.g. RWKV's ``-exp(...)`` late in training) would make the chunked cumulative sums
#: overflow while the step form stays finite.
MIN_LOG_DECAY = -30.0


def decay_attention_step(q, k, v, log_decay, state, bonus=None):
    r"""One step of the decayed recurrence. ``q, k, log_decay`` ``(B, H, K)``, ``v`` ``(B, H, V)``,
    ``state`` ``(B, H, K, V)``; returns ``(o (B, H, V), new state)``.

    ``bonus=None`` (GLA): :math:`o_t = q_t S_t`. ``bonus`` ``(H, K)`` (RWKV-6):
    :math:`o_t = q_t (S_{t-1} + \operatorname{diag}(u) k_t^\top v_t)`.
    """
    kv = k[..., :, None] * v[..., None, :]
    new_state = mx.exp(mx.maximum(log_decay, MIN_LOG_DECAY))[..., None] * state + kv
    read = new_state if bonus is None else state + bonus[..., None] * kv
    return (q[..., None, :] @ read)[..., 0, :], new_state


def _segment_sums(g, exclusive):
    r"""Pairwise sums :math:`\sum_{j < m \le i} g_m` (:math:`m < i` when ``exclusive``) along
    axis ``-2`` of ``g`` ``(..., L, K)``, as ``(..., L_i, L_j, K)``; 0 where :math:`i \le j`.

    Summed directly (a masked cumulative sum), never as a difference of running sums: the terms
    share one sign, so each sum is accurate to a relative :math:`L \cdot 2^{-24}`.
    """
    size = g.shape[-2]
    later = (mx.arange(size)[:, None] > mx.arange(size)[None, :])[..., None]
    terms = mx.where(later, g[..., :, None, :], 0.0)  # g_i at (i, j) for every i > j
    return mx.cumsum(terms, axis=-3, inclusive=not exclusive)


def _intra_chunk(q, k, log_decay, bonus, sub_size=8):
    r"""The ``(B, H, N, C, C)`` intra-chunk scores of :func:`.decay_attention_chunked`.

    Secondary chunking (GLA paper, Sec. 4): the chunk is cut into sub-blocks of ``c`` steps. For
    query sub-block :math:`a` and every earlier key, the decay factors through the cumulative
    log-decay :math:`R_a` at the end of block :math:`a - 1`, :math:`e^{\tilde G_i - G_j} =
    e^{\tilde G_i - R_a} e^{R_a - G_j}`, both exponents :math:`\le 0`, so those scores are one
    matmul; only the diagonal sub-blocks need the pairwise decays (:math:`O(C c\, d_k)`). Every
    exponent is a sum of the log-decays it spans (:func:`_segment_sums`), never a difference of
    cumulative sums.
    """
    size = q.shape[-2]
    sub = max(d for d in range(1, min(sub_size, size) + 1) if size % d == 0)
    blocks = size // sub
    shape = (*q.shape[:-2], blocks, sub, q.shape[-1])
    qb, kb, g = (a.reshape(shape) for a in (q, k, log_decay))
    rwkv = bonus is not None
    # off-diagonal sub-blocks, keys before block a: G~_i - R_a within block a, and R_a - G_j =
    # the rest of key j's block b plus the whole blocks between b and a
    query_decay = mx.cumsum(g, axis=-2, inclusive=not rwkv)
    rest = mx.cumsum(g, axis=-2, reverse=True, inclusive=False)
    between = _segment_sums(g.sum(-2), exclusive=True)  # (.., blocks_a, blocks_b, K)
    key_decay = between[..., None, :] + rest[..., None, :, :, :]  # (.., a, b, c, K)
    earlier_block = mx.tril(mx.ones((blocks, blocks), dtype=mx.bool_), k=-1)[..., None, None]
    key_decay = mx.where(earlier_block, key_decay, -mx.inf).reshape(*shape[:-2], size, -1)
    keys = k[..., None, :, :] * mx.exp(key_decay)  # (B, H, N, blocks, C, K)
    off = (qb * mx.exp(query_decay)) @ keys.swapaxes(-1, -2)  # (.., blocks, c, C)
    # diagonal sub-blocks: pairwise relative decays, strictly earlier plus the diagonal term
    earlier = mx.tril(mx.ones((sub, sub), dtype=mx.bool_), k=-1)[..., None]
    relative = mx.where(earlier, _segment_sums(g, exclusive=rwkv), -mx.inf)
    local = (qb[..., :, None, :] * kb[..., None, :, :] * mx.exp(relative)).sum(-1)
    diagonal = (qb * kb if bonus is None else qb * bonus[:, None, None, None, :] * kb).sum(-1)
    local = local + diagonal[..., None] * mx.eye(sub, dtype=q.dtype)  # (.., blocks, c, c)
    own = (
        mx.eye(blocks, dtype=q.dtype)[:, None, :, None] * local[..., :, :, None, :]
    )  # (.., blocks, c, blocks, c)
    scores = off + own.reshape(*off.shape)
    return scores.reshape(*q.shape[:-1], size)


def decay_attention_chunked(q, k, v, log_decay, state, chunk_size, bonus=None):
    r"""The chunkwise form of :func:`decay_attention_step` over a whole sequence.

    ``q, k, log_decay`` ``(B, H, T, K)``, ``v`` ``(B, H, T, V)``, ``state`` ``(B, H, K, V)``.
    Inside a chunk with cumulative log-decays :math:`G_i = \sum_{m \le i} g_m` (from the chunk's
    start) and query decays :math:`\tilde G_i = G_i` (GLA) or :math:`G_{i-1}` (RWKV-6),

    .. math::

        o_i = (q_i \odot e^{\tilde G_i}) S_0
            + \sum_{j < i} \Big(\sum_d q_{id} k_{jd} e^{\tilde G_{id} - G_{jd}}\Big) v_j
            + (q_i \cdot \beta \odot k_i)\, v_i, \qquad
        S_C = \operatorname{diag}(e^{G_C}) S_0 + \sum_j (k_j \odot e^{G_C - G_j})^\top v_j

    with :math:`\beta = 1` (GLA) or :math:`u` (RWKV-6). Every exponent is a *relative* decay
    (:math:`\le 0`), so nothing overflows however strong the decay, and each is summed from the
    log-decays it spans rather than taken as a difference :math:`G_i - G_j`: that difference
    would lose :math:`|G| \cdot 2^{-24}` (``1e-4`` for a chunk of 64 steps of ``-30``) and make
    the result depend on the order in which the backend sums. The intra-chunk scores are
    computed for all chunks at once (``_intra_chunk``, secondary chunking); only the state is
    carried in a loop over the :math:`T / C` chunks. Cost :math:`O(T C d_k + T d_k d_v)`, memory
    :math:`O(T C d_k / c)`. Returns ``(o, state)``; ``T`` need not be a multiple of ``C`` (the
    last chunk is padded with zero keys and zero log-decays, which leave the state unchanged).
    """
    batch, heads, length, _ = q.shape
    size = min(chunk_size, length)
    chunks = -(-length // size)
    pad = chunks * size - length  # zero keys and zero log-decays leave the state unchanged

    def split(a):
        a = mx.pad(a, [(0, 0), (0, 0), (0, pad), (0, 0)]) if pad else a
        return a.reshape(batch, heads, chunks, size, a.shape[-1])

    log_decay = mx.maximum(log_decay, MIN_LOG_DECAY)
    q, k, v, log_decay = split(q), split(k), split(v), split(log_decay)
    query_decay = mx.cumsum(log_decay, axis=3, inclusive=bonus is None)  # G_i or G_{i-1}
    remaining = mx.cumsum(log_decay, axis=3, reverse=True, inclusive=False)  # G_C - G_j
    intra = _intra_chunk(q, k, log_decay, bonus) @ v
    carried = mx.exp(log_decay.sum(axis=3, keepdims=True)).swapaxes(-1, -2)  # (B, H, N, K, 1)
    added = (k * mx.exp(remaining)).swapaxes(-1, -2) @ v  # (B, H, N, K, V)
    starts = []
    for n in range(chunks):  # the only loop: the state from chunk to chunk
        starts.append(state)
        state = carried[:, :, n] * state + added[:, :, n]
    inter = (q * mx.exp(query_decay)) @ mx.stack(starts, axis=2)
    out = (inter + intra).reshape(batch, heads, chunks * size, -1)
    return out[:, :, :length], state


class GatedLinearAttention(nn.Module):
    r"""Gated linear attention (GLA) with a data-dependent, per-channel forget gate.

    .. math::

        q_t, k_t, v_t &= x_t W_q / \sqrt{d_k},\; x_t W_k,\; x_t W_v \\
        \log \alpha_t &= \log\sigma(x_t W_{\alpha 1} W_{\alpha 2} + b_\alpha) / \tau \\
        S_t &= \operatorname{diag}(\alpha_t) S_{t-1} + k_t^\top v_t, \qquad o_t = q_t S_t \\
        y_t &= \big(\operatorname{SiLU}(x_t W_g) \odot \operatorname{RMSNorm}(o_t)\big) W_o

    per head (:math:`H` heads of width :math:`d_k`, state :math:`(d_k, d_v)` with
    :math:`d_v = d_k`; RMSNorm per head). The forget gate is low rank (:math:`D \to 16 \to H
    d_k`) with temperature :math:`\tau = 16` as in the paper. Every projection is a
    :class:`WiredLinear` masked by ``wiring``.

    ``__call__`` is the chunkwise form (:func:`.decay_attention_chunked`: exact intra-chunk
    attention with relative decays, the state carried between chunks, cost linear in ``T``);
    :meth:`step` is the recurrence. Shapes: ``x`` ``(B, T, D)`` (``NLD``), cache ``(B, H, d_k,
    d_k)``.

    Args:
        d_model (int): Model width ``D``.
        num_heads (int): Heads ``H``. Default ``4``.
        head_dim (int, optional): Head width ``d_k``; default ``D // H`` (then ``H`` must divide
            ``D``).
        chunk_size (int): Chunk length of the chunkwise form. Default ``64``.
        wiring (Wiring, optional): Mask of every projection (fully connected when ``None``).
        gate_rank (int): Rank of the forget-gate projection. Default ``16``.
        gate_temperature (float): :math:`\tau`. Default ``16``.
    """

    def __init__(
        self,
        d_model,
        num_heads=4,
        head_dim=None,
        chunk_size=64,
        wiring=None,
        gate_rank=16,
        gate_temperature=16.0,
    ):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.num_heads = check_int(num_heads, "num_heads", minimum=1)
        self.head_dim = head_dimension(self.d_model, self.num_heads, head_dim)
        self.chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
        gate_rank = check_int(gate_rank, "gate_rank", minimum=1)
        if not gate_temperature > 0:
            raise ValueError(f"gate_temperature must be positive, got {gate_temperature!r}")
        self.gate_temperature = float(gate_temperature)
        inner = self.num_heads * self.head_dim
        self.q_proj = WiredLinear(self.d_model, inner, wiring, bias=False)
        self.k_proj = WiredLinear(self.d_model, inner, wiring, bias=False)
        self.v_proj = WiredLinear(self.d_model, inner, wiring, bias=False)
        self.g_proj = WiredLinear(self.d_model, inner, wiring, bias=True)
        self.alpha_down = WiredLinear(self.d_model, gate_rank, wiring, bias=False)
        self.alpha_up = WiredLinear(gate_rank, inner, wiring, bias=True)
        self.norm_weight = mx.ones((self.head_dim,))
        self.out_proj = WiredLinear(inner, self.d_model, wiring, bias=False)

    def make_cache(self, batch: int, dtype=mx.float32) -> mx.array:
        """The zero state ``(batch, H, d_k, d_k)``."""
        return mx.zeros((batch, self.num_heads, self.head_dim, self.head_dim), dtype)

    def _heads(self, x):
        """``(..., H * d_k)`` -> ``(..., H, d_k)``."""
        return x.reshape(*x.shape[:-1], self.num_heads, self.head_dim)

    def project(self, x):
        """``q, k, v, log α`` of ``x`` ``(..., D)``, each ``(..., H, d_k)``."""
        q = self._heads(self.q_proj(x)) / math.sqrt(self.head_dim)
        k = self._heads(self.k_proj(x))
        v = self._heads(self.v_proj(x))
        gate = self.alpha_up(self.alpha_down(x))
        log_alpha = self._heads(nn.log_sigmoid(gate) / self.gate_temperature)
        return q, k, v, log_alpha

    def output(self, x, o):
        """``y = (SiLU(x W_g) ⊙ RMSNorm(o)) W_o`` for ``o`` ``(..., H, d_k)``."""
        normed = mx.fast.rms_norm(o, self.norm_weight, 1e-6).reshape(*o.shape[:-2], -1)
        return self.out_proj(nn.silu(self.g_proj(x)) * normed)

    def __call__(self, x: mx.array, cache=None):
        """``x`` ``(B, T, D)`` -> ``(y (B, T, D), cache)``; ``cache`` continues a sequence."""
        if cache is None:
            cache = self.make_cache(x.shape[0], x.dtype)
        q, k, v, log_alpha = (a.transpose(0, 2, 1, 3) for a in self.project(x))
        o, cache = decay_attention_chunked(q, k, v, log_alpha, cache, self.chunk_size)
        return self.output(x, o.transpose(0, 2, 1, 3)), cache

    def step(self, x_t: mx.array, cache):
        """One step: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        q, k, v, log_alpha = self.project(x_t)
        o, cache = decay_attention_step(q, k, v, log_alpha, cache)
        return self.output(x_t, o), cache

    def _extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, num_heads={self.num_heads}, head_dim={self.head_dim}, "
            f"chunk_size={self.chunk_size}"
        )
