"""The fused CfC kernels' source: one body for Metal and CUDA (see :mod:`ncps_mlx.kernels.backend`).

One thread block of ``NT`` threads runs one sequence of the batch through all ``T`` steps; the
state, the backbone's activations and the heads live in on-chip shared memory. The weights of
each product stay in registers for the whole sequence where they fit (a thread's share is
loaded once, before the time loop), and stream from device memory (through the caches) where
they do not: see :mod:`ncps_mlx.kernels.matvec_source`. The products are named ``FIRST`` (the
state's part of the first layer), ``LAYER`` (backbone layers after the first), ``HEAD`` (the
fused heads) and, backward, ``HEAD_T``, ``LAYER_T``, ``FIRST_T`` (their transposes).

Compile-time constants (the ``template`` of the launch): ``H`` state size, ``D0`` width of the
first layer (``U`` with a backbone, ``KH`` without), ``U`` backbone width, ``L`` backbone layers,
``KH`` fused head width (``4H``; ``H`` in mode pure), ``MODE`` (0 default, 1 no_gate, 2 pure),
``ACT`` (the backbone activation, see ``ACTIVATION_CODES``), ``ZMAX = max(D0, U)``, ``NT``
threads per block, ``RECORD`` (forward: 1 to record what the backward needs) and each
product's layout constants (:meth:`~ncps_mlx.kernels.matvec_source.Product.template`).

The forward kernel writes the state after every step, ``hs`` ``(T, B, H)``; with ``RECORD`` it
also writes every step's backbone pre-activations and activations and its heads. The backward
kernel walks the steps in reverse from that record (nothing is recomputed) and writes what the
weight gradients need as matrices over all ``(t, b)``: the gradients of the first layer's and
every backbone layer's pre-activations and of the heads. The caller turns those into weight
gradients with one matrix product each (as cuDNN does), so no gradient is accumulated with
atomics.
"""

from __future__ import annotations

from .backend import SEQUENCE_PREAMBLE, reverse_steps
from .matvec_source import resident_load, resident_matvec

__all__ = ["ACTIVATION_CODES", "HEADER", "FORWARD_INPUTS", "FORWARD_BODY", "BACKWARD_INPUTS"]
__all__ += [
    "BACKWARD_OUTPUTS",
    "BACKWARD_BODY",
    "PRIMAL_INPUTS",
    "FORWARD_OUTPUTS",
    "state_update",
    "state_update_gradient",
]

#: Backbone activations the kernels compute, by their name in :class:`~ncps_mlx.cells.CfCCell`.
ACTIVATION_CODES = {"lecun_tanh": 0, "tanh": 1, "relu": 2, "silu": 3, "gelu": 4}

HEADER = """
DEVICE_FN float ncps_sigmoid(float x) { return 1.0f / (1.0f + EXP(-x)); }

DEVICE_FN float ncps_erf(float x) {  // Abramowitz & Stegun 7.1.26, |error| < 1.5e-7
  const float s = x < 0.0f ? -1.0f : 1.0f;
  const float a = ABS(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
      + t * (-1.453152027f + t * 1.061405429f))));
  return s * (1.0f - p * EXP(-a * a));
}

DEVICE_FN float ncps_act(float p, int kind) {
  if (kind == 0) return 1.7159f * TANH(0.666f * p);
  if (kind == 1) return TANH(p);
  if (kind == 2) return p > 0.0f ? p : 0.0f;
  if (kind == 3) return p * ncps_sigmoid(p);
  return 0.5f * p * (1.0f + ncps_erf(p * 0.7071067811865476f));
}

DEVICE_FN float ncps_dact(float p, int kind) {
  if (kind == 0) { const float u = TANH(0.666f * p); return 1.7159f * 0.666f * (1.0f - u * u); }
  if (kind == 1) { const float u = TANH(p); return 1.0f - u * u; }
  if (kind == 2) return p > 0.0f ? 1.0f : 0.0f;
  if (kind == 3) { const float s = ncps_sigmoid(p); return s * (1.0f + p * (1.0f - s)); }
  return 0.5f * (1.0f + ncps_erf(p * 0.7071067811865476f))
      + p * 0.3989422804014327f * EXP(-0.5f * p * p);
}

DEVICE_FN float ncps_sign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); }
"""

_COMMON_INPUTS = [
    "xproj",  # (T, B, D0) input part of the first layer, all steps
    "h0",  # (B, H) initial state
    "ts",  # (T, B) elapsed time of each step
    "valid",  # (T, B) 1 at real steps, 0 at padding (the state is carried)
    "w_rec",  # (H, D0) state part of the first layer, (in, out)
    "bb_w",  # (max(L - 1, 1), U, U) backbone layers after the first, (in, out)
    "bb_b",  # (max(L - 1, 1), U)
    "head_w",  # (U, KH) fused heads, (in, out) (unused without a backbone)
    "head_b",  # (KH,)
    "amp",  # (H,) A of mode pure
    "wtau",  # (H,) w_tau of mode pure
    "sizes",  # int32 (2,): T, B
]

#: The inputs the custom function differentiates (all but ``sizes``).
PRIMAL_INPUTS = _COMMON_INPUTS[:-1]

#: The weights transposed to ``(out, in)``: resident weights are loaded from these forward and
#: streamed from them backward (see :mod:`~ncps_mlx.kernels.matvec_source`).
TRANSPOSED_INPUTS = ["w_rec_t", "bb_w_t", "head_w_t"]

FORWARD_INPUTS = _COMMON_INPUTS + TRANSPOSED_INPUTS

#: The forward kernel's outputs: the states, and with ``RECORD`` what the backward needs of
#: every step (``(1,)`` placeholders without).
FORWARD_OUTPUTS = ["hs", "pre", "acts", "heads"]

#: Extra inputs of the backward kernel: the recorded forward and the states' cotangents.
BACKWARD_INPUTS = FORWARD_INPUTS + ["pre", "heads", "dhs"]

BACKWARD_OUTPUTS = ["d_first", "d_pre", "d_heads", "dh0", "dts", "damp", "dwtau"]


def state_update(
    width: str, unit: str, heads: tuple[str, ...] | None = None, pure: tuple[str, str] | None = None
) -> str:
    """C lines that set ``float hn``, the new state of one neuron after a step of length
    ``span``, from its heads in the shared vector ``g``: ``g[j]``, ``g[width + j]``,
    ``g[2 * width + j]``, ``g[3 * width + j]`` (ff1, ff2, time_a, time_b; mode pure: ``g[j]``
    alone, with ``amp[unit]`` and ``wtau[unit]``). Shared by the dense and the wired kernels.

    ``heads`` (the four expressions, or one in mode pure) and ``pure`` (those of ``amp`` and
    ``wtau``) replace the reads from ``g``, ``amp`` and ``wtau``, e.g. with registers."""
    f1, f2, gate, bias = heads or tuple(f"g[{k} * {width} + j]" for k in range(4))
    a, tau = pure or (f"amp[{unit}]", f"wtau[{unit}]")
    return f"""
      float hn;
      if (MODE == 2) {{
        const float f = {f1};
        const float e = EXP(-span * (ABS({tau}) + ABS(f)));
        hn = -({a}) * e * f + ({a});
      }} else {{
        const float f1 = TANH({f1});
        const float f2 = TANH({f2});
        const float s = ncps_sigmoid({gate} * span + {bias});
        hn = MODE == 1 ? f1 + s * f2 : f1 * (1.0f - s) + s * f2;
      }}
"""


def state_update_gradient(width: str, unit: str, out: str) -> str:
    """C lines of the derivative of :func:`state_update`: from ``dht``, the gradient of the
    neuron's new state, they set its heads' gradients in the shared vector ``dg`` (laid out as
    ``g``) and write the partials of the step's ``span`` to ``dts[out]`` and, in mode pure, of
    ``amp[unit]`` and ``wtau[unit]`` to ``damp[out]`` and ``dwtau[out]``."""
    return f"""
      if (MODE == 2) {{
        const float f = g[j];
        const float a = amp[{unit}];
        const float rate = ABS(wtau[{unit}]) + ABS(f);
        const float e = EXP(-span * rate);
        const float du = dht * a * f * e;  // u = span * rate, h = a - a * f * exp(-u)
        damp[{out}] = dht * (1.0f - e * f);
        dts[{out}] = du * rate;
        dwtau[{out}] = du * span * ncps_sign(wtau[{unit}]);
        dg[j] = -dht * a * e + du * span * ncps_sign(f);
      }} else {{
        const float f1 = TANH(g[j]);
        const float f2 = TANH(g[{width} + j]);
        const float gate = g[2 * {width} + j];
        const float s = ncps_sigmoid(gate * span + g[3 * {width} + j]);
        const float df1 = MODE == 1 ? dht : dht * (1.0f - s);
        const float ds = MODE == 1 ? dht * f2 : dht * (f2 - f1);
        const float dp = ds * s * (1.0f - s);
        dg[j] = df1 * (1.0f - f1 * f1);
        dg[{width} + j] = dht * s * (1.0f - f2 * f2);
        dg[2 * {width} + j] = dp * span;
        dg[3 * {width} + j] = dp;
        dts[{out}] = dp * gate;
      }}
"""


_PREAMBLE = (
    SEQUENCE_PREAMBLE
    + """
  SHARED float g[KH];
  SHARED float za[ZMAX];
  SHARED float zb[ZMAX];
"""
)


def _next_layer(current: str, following: str) -> str:
    """After a backbone layer's product: a barrier, then the layer's output array becomes the
    next layer's input (the two shared pointers swap)."""
    return f"""
      BARRIER();
      SHARED_PTR swap = {current};
      {current} = {following};
      {following} = swap;
"""


def _record(layer: str) -> str:
    """With ``RECORD``, write a backbone layer's pre-activation and activation at ``row``."""
    return f"""
        if (RECORD) {{
          pre[(({layer}) * steps * batch + row) * U + j] = acc;
          acts[(({layer}) * steps * batch + row) * U + j] = z;
        }}"""


FORWARD_BODY = (
    _PREAMBLE
    + "  SHARED float h[H];\n"
    + resident_load("FIRST", "w_rec_t")
    + resident_load("LAYER", "bb_w_t")
    + resident_load("HEAD", "head_w_t")
    + """
  for (int j = tid; j < H; j += nt) h[j] = h0[b * H + j];
  BARRIER();
  for (int t = 0; t < steps; ++t) {
    const int row = t * batch + b;
    const float span = ts[row];
    const bool keep = valid[row] > 0.5f;
"""
    + resident_matvec(
        "FIRST",
        "w_rec",
        "h",
        """if (L > 0) {
          const float z = ncps_act(acc, ACT);"""
        + _record("0")
        + """
          za[j] = z;
        } else {
          g[j] = acc;
          if (RECORD) heads[row * KH + j] = acc;
        }""",
        start="xproj[row * D0 + j]",
    )
    + """
    BARRIER();
    SHARED_PTR zin = za;
    SHARED_PTR zout = zb;
    #pragma unroll
    for (int l = 1; l < L; ++l) {
"""
    + resident_matvec(
        "LAYER",
        "bb_w",
        "zin",
        """const float z = ncps_act(acc, ACT);"""
        + _record("l")
        + """
        zout[j] = z;""",
        copy="l - 1",
        start="bb_b[(l - 1) * U + j]",
    )
    + _next_layer("zin", "zout")
    + """
    }
    if (L > 0) {
"""
    + resident_matvec(
        "HEAD",
        "head_w",
        "zin",
        """g[j] = acc;
        if (RECORD) heads[row * KH + j] = acc;""",
        start="head_b[j]",
    )
    + """
      BARRIER();
    }
    for (int j = tid; j < H; j += nt) {
"""
    + state_update(width="H", unit="j")
    + """
      if (!keep) hn = h[j];
      h[j] = hn;
      hs[row * H + j] = hn;
    }
    BARRIER();
  }
"""
)

BACKWARD_BODY = (
    _PREAMBLE
    + """
  SHARED float dh[H];
  SHARED float dg[KH];
"""
    + resident_load("HEAD_T", "head_w")
    + resident_load("LAYER_T", "bb_w")
    + resident_load("FIRST_T", "w_rec")
    + reverse_steps("dh", "H", "dhs")
    + """
    for (int k = tid; k < KH; k += nt) g[k] = heads[row * KH + k];
    BARRIER();
    const float span = ts[row];
    for (int j = tid; j < H; j += nt) {
      const float dht = dh[j] + dhs[row * H + j];
"""
    + state_update_gradient(width="H", unit="j", out="row * H + j")
    + """
    }
    BARRIER();
    SHARED_PTR dz = dg;
    if (L > 0) {
      for (int k = tid; k < KH; k += nt) d_heads[row * KH + k] = dg[k];
      dz = za;
"""
    + resident_matvec(
        "HEAD_T",
        "head_w_t",
        "dg",
        "dz[j] = acc * ncps_dact(pre[((L - 1) * steps * batch + row) * U + j], ACT);",
    )
    + """
      BARRIER();
      SHARED_PTR dz_next = zb;
      #pragma unroll
      for (int l = L - 1; l >= 1; --l) {
        for (int i = tid; i < U; i += nt) d_pre[((l - 1) * steps * batch + row) * U + i] = dz[i];
"""
    + resident_matvec(
        "LAYER_T",
        "bb_w_t",
        "dz",
        "dz_next[j] = acc * ncps_dact(pre[((l - 1) * steps * batch + row) * U + j], ACT);",
        copy="l - 1",
    )
    + _next_layer("dz", "dz_next")
    + """
      }
    }
    for (int j = tid; j < D0; j += nt) d_first[row * D0 + j] = dz[j];
"""
    + resident_matvec("FIRST_T", "w_rec_t", "dz", "dh[j] = acc;")
    + """
    BARRIER();
  }
  for (int j = tid; j < H; j += nt) dh0[b * H + j] = dh[j];
"""
)
