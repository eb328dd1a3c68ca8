"""The fused wired-CfC kernels' source: one body for Metal and CUDA (see
:mod:`ncps_mlx.kernels.backend`).

A :class:`~ncps_mlx.cells.WiredCfCCell` is a chain of backbone-free CfC layers. Its state is
the layers' states concatenated in layer order: layer ``l`` holds the neurons
``[off_l, off_{l+1})``. At every step layer ``l``'s heads (ff1, ff2, time_a, time_b; ff1 alone
in mode pure: ``K`` = 4 or 1 per neuron) read the *new* state of layer ``l - 1`` and the *old*
state of layer ``l``: the rows ``[off_{l-1}, off_{l+1})`` of the state vector, contiguous. So
each layer has one weight block ``(rows_l, K * N_l)`` (in, out), masked by the wiring before
the launch; layer 0's block holds only its own state's rows, its sensory part is the input
``xproj`` (one matrix product for all steps, bias included, before the launch).

One thread block runs one sequence of the batch through all steps. The forward runs the
layers as a wavefront: at tick ``tau`` layer ``l`` computes step ``tau - l``, so all layers
work at once and a tick ends with one barrier (``T + L - 1`` ticks instead of ``2 L`` barriers
a step). That works because layer ``l`` at step ``t`` reads only the state the previous tick
left: layer ``l - 1``'s state of step ``t`` and its own of step ``t - 1``. Two state buffers in
shared memory alternate by tick (read the last tick's, write this tick's). A group of ``LN``
lanes owns a neuron (``NPG`` of them where the block is too small): its lanes split the
neuron's weight rows, computing all ``K`` heads of the neuron at once from weights in registers
(``RES``) or streamed from the transposed blocks ``w_t``; the group sums them with warp shuffles
and its first lane applies the update, so no heads pass through shared memory. The next tick's
elapsed times, padding flags and sensory heads are loaded while the current tick computes.

The backward walks the steps in reverse with two shared gradients, ``dnew`` (of the step's new
state) and ``dold`` (of the state before it): for ``l = L-1 .. 0`` it reads layer ``l``'s
heads from the forward's record, turns ``dnew`` of layer ``l`` into the heads' gradients (the
dense kernel's formulas,
:func:`~ncps_mlx.kernels.cfc_source.state_update_gradient`), writes them to ``d_heads`` and
sends them back through the weight block: the rows of layer ``l - 1`` add to its ``dnew``,
those of layer ``l`` make its ``dold``. The caller turns ``d_heads`` into the weight gradients
with one matrix product per layer, so nothing is accumulated with atomics.

Layer sizes are run-time data (``sizes``: ``T``, ``B``, the offsets ``off_0 .. off_L`` and the
weight blocks' offsets in ``w``), so wirings of equal totals share a compiled kernel. Compile-time
constants (the ``template``): ``N`` neurons, ``L`` layers, ``K`` heads per neuron, ``MODE``
(0 default, 1 no_gate, 2 pure), ``NT`` threads, ``RES`` (weights in registers), ``CMAX`` (the
weights a thread keeps per head and neuron, forward, or per layer, backward); forward also
``LN``, ``NPG`` and ``RECORD``, backward ``NMAX``, the widest layer.
"""

from __future__ import annotations

from .backend import SEQUENCE_PREAMBLE, reverse_steps
from .cfc_source import HEADER, state_update, state_update_gradient
from .matvec_source import block_matvec

__all__ = ["HEADER", "FORWARD_INPUTS", "FORWARD_BODY", "BACKWARD_INPUTS", "BACKWARD_OUTPUTS"]
__all__ += ["BACKWARD_BODY", "PRIMAL_INPUTS", "FORWARD_OUTPUTS"]

_COMMON_INPUTS = [
    "xproj",  # (T, B, K * N_0) sensory part of layer 0's heads, all steps, bias included
    "h0",  # (B, N) initial state
    "ts",  # (T, B) elapsed time of each step
    "valid",  # (T, B) 1 at real steps, 0 at padding (the state is carried)
    "w",  # layer l's (rows_l, K * N_l) block, (in, out), flat at sizes[3 + L + l]
    "bias",  # (K * (N - N_0),) the biases of layers >= 1, layer l's at K * (off_l - off_1)
    "tscale",  # (N,) each neuron's factor on the elapsed time
    "amp",  # (N,) A of mode pure
    "wtau",  # (N,) w_tau of mode pure
    "sizes",  # int32 (3 + 2L,): T, B, off_0 .. off_L, the weight blocks' offsets
]

#: The inputs the custom function differentiates (all but ``sizes``).
PRIMAL_INPUTS = _COMMON_INPUTS[:-1]

#: Every weight block transposed in place (``(K * N_l, rows_l)``), which the forward streams
#: when its weights do not fit in registers (a ``(1,)`` placeholder otherwise).
FORWARD_INPUTS = _COMMON_INPUTS + ["w_t"]

#: The forward kernel's outputs: the states, and with ``RECORD`` every step's heads ``(T, B,
#: K * N)``, laid out as ``d_heads`` (a ``(1,)`` placeholder without).
FORWARD_OUTPUTS = ["hs", "heads"]

#: Extra inputs of the backward kernel: the recorded heads and the states' cotangents ``dhs``
#: ``(T, B, N)``.
BACKWARD_INPUTS = FORWARD_INPUTS + ["heads", "dhs"]

BACKWARD_OUTPUTS = ["d_heads", "dh0", "dts", "damp", "dwtau"]

#: Loads every layer's place (``sizes``) into registers, before the backward's time loop.
_LAYER_TABLE = """
  int layer_lo[L];
  int layer_hi[L];
  int layer_base[L];
  int layer_wo[L];
  #pragma unroll
  for (int l = 0; l < L; ++l) {
    layer_lo[l] = sizes[2 + l];
    layer_hi[l] = sizes[3 + l];
    layer_base[l] = l > 0 ? sizes[1 + l] : sizes[2 + l];
    layer_wo[l] = sizes[3 + L + l];
  }
"""

#: Layer ``l``'s place, in the (unrolled) layer loop.
_LAYER = """
      const int lo = layer_lo[l];  // the layer's neurons [lo, hi)
      const int hi = layer_hi[l];
      const int nl = hi - lo;
      const int kn = K * nl;
      const int base = layer_base[l];  // its weight rows: neurons [base, hi)
      const int rows = hi - base;
      const int wo = layer_wo[l];
"""


#: Opens a loop over layer ``l``'s neurons: ``j`` within the layer, ``u`` in the state, and
#: the neuron's elapsed time ``span`` (the step's ``step_span``, over its time scale).
_LAYER_NEURONS = """
      for (int j = tid; j < nl; j += nt) {
        const int u = lo + j;
        const float span = step_span * tscale[u];
"""


def _layer_matvec(
    outputs: str, inputs: str, weight_t: str, x: str, epilogue: str, start: str = "0.0f"
) -> str:
    """Layer ``l``'s product ``acc_j = start + sum_i x(i) * W[i, j]`` for ``j < outputs``, running
    ``epilogue`` once per output: from the registers :func:`_resident_load` filled (``RES``),
    or streamed from memory (:func:`~ncps_mlx.kernels.matvec_source.block_matvec`).
    ``weight_t`` is ``W[i, j]`` in ``j`` and ``i``, ``x`` the input ``i``; in the layer loop,
    unrolled (``l`` indexes registers)."""
    return f"""
      if (RES) {{
        int lanes = 1;
        while (lanes < 32 && ({outputs}) * lanes * 2 <= NT) lanes *= 2;
        const int j = tid / lanes;
        const int lane = tid % lanes;
        float acc = lane == 0 && j < ({outputs}) ? ({start}) : 0.0f;
        #pragma unroll
        for (int c = 0; c < CMAX; ++c) {{
          const int i = lane + c * lanes;
          if (i < ({inputs})) acc += wr[RES ? l * CMAX + c : 0] * ({x});
        }}
        for (int m = lanes / 2; m > 0; m >>= 1) acc += SHUFFLE_XOR(acc, m);
        if (j < ({outputs}) && lane == 0) {{
          {epilogue}
        }}
      }} else {{
{block_matvec(outputs, inputs, f"({x}) * {weight_t}", epilogue, start)}
      }}
"""


def _resident_load(outputs: str, inputs: str, weight_t: str) -> str:
    """Kernel code declaring ``wr``, a thread's registers of every layer's product (``CMAX``
    per layer, the layout of :func:`_layer_matvec`), and loading them when ``RES``."""
    return (
        """
  float wr[RES ? L * CMAX : 1];
  if (RES) {
    #pragma unroll
    for (int l = 0; l < L; ++l) {
"""
        + _LAYER
        + f"""
      int lanes = 1;
      while (lanes < 32 && ({outputs}) * lanes * 2 <= NT) lanes *= 2;
      const int j = tid / lanes;
      #pragma unroll
      for (int c = 0; c < CMAX; ++c) {{
        const int i = tid % lanes + c * lanes;
        const bool inside = j < ({outputs}) && i < ({inputs});
        wr[RES ? l * CMAX + c : 0] = inside ? {weight_t} : 0.0f;
      }}
    }}
  }}
"""
    )


#: Each thread's neurons (``NPG``, in register arrays): neuron ``n = group + r * groups``, its
#: layer's place (see :data:`_LAYER`), its elapsed-time scale, biases and mode-pure constants,
#: and its weights (``RES``: every head's ``CMAX`` inputs of the thread's lane, ``wr[(r * K +
#: k) * CMAX + c]`` for input ``lane + c * LN``). A neuron past ``N`` gets layer ``steps + L``,
#: so it is never active.
_FORWARD_NEURONS = """
  const int lane = tid % LN;
  const int group = tid / LN;
  const int groups = NT / LN;
  const int first_width = sizes[3];
  int n_layer[NPG];
  int n_lo[NPG];
  int n_width[NPG];
  int n_base[NPG];
  int n_rows[NPG];
  int n_wo[NPG];
  float n_scale[NPG];
  float n_amp[NPG];
  float n_wtau[NPG];
  float n_start[NPG * K];
  float wr[RES ? NPG * K * CMAX : 1];
  #pragma unroll
  for (int r = 0; r < NPG; ++r) {
    const int n = group + r * groups;
    int l = 0;
    while (l < L - 1 && n >= sizes[3 + l]) ++l;
    const int lo = sizes[2 + l];
    const int hi = sizes[3 + l];
    const int base = l > 0 ? sizes[1 + l] : lo;
    n_layer[r] = n < N ? l : steps + L;
    n_lo[r] = lo;
    n_width[r] = hi - lo;
    n_base[r] = base;
    n_rows[r] = n < N ? hi - base : 0;
    n_wo[r] = sizes[3 + L + l];
    const int u = min(n, N - 1);
    n_scale[r] = tscale[u];
    n_amp[r] = MODE == 2 ? amp[u] : 0.0f;
    n_wtau[r] = MODE == 2 ? wtau[u] : 0.0f;
    #pragma unroll
    for (int k = 0; k < K; ++k) {
      const int out = k * (hi - lo) + n - lo;  // the head's column in the layer's block
      n_start[r * K + k] = l > 0 && n < N && lane == 0 ? bias[K * (lo - first_width) + out] : 0.0f;
      #pragma unroll
      for (int c = 0; c < CMAX; ++c) {
        const int i = lane + c * LN;
        if (RES) {
          const int at = RES ? (r * K + k) * CMAX + c : 0;
          wr[at] = i < n_rows[r] ? w[n_wo[r] + i * K * (hi - lo) + out] : 0.0f;
        }
      }
    }
  }
"""

#: Loads step ``t = tick - layer`` of each neuron into ``p_valid``, ``p_span`` and ``p_start``
#: (the sensory heads, layer 0; the biases, later layers) for the tick after the current one.
_TICK_LOADS = """
    #pragma unroll
    for (int r = 0; r < NPG; ++r) {
      const int t = {tick} - n_layer[r];
      p_valid[r] = 0.0f;
      p_span[r] = 0.0f;
      if (t >= 0 && t < steps) {
        const int row = t * batch + b;
        p_valid[r] = valid[row];
        p_span[r] = ts[row] * n_scale[r];
        #pragma unroll
        for (int k = 0; k < K; ++k) {
          const int out = k * n_width[r] + group + r * groups - n_lo[r];
          p_start[r * K + k] = n_layer[r] > 0 ? n_start[r * K + k]
              : lane == 0 ? xproj[row * K * first_width + out] : 0.0f;
        }
      }
    }
"""


def _head(k: int) -> str:
    """Head ``k`` of the current neuron in the forward's registers (0 past ``K``)."""
    return f"(K > {k} ? acc[K > {k} ? {k} : 0] : 0.0f)"


FORWARD_BODY = (
    SEQUENCE_PREAMBLE
    + _FORWARD_NEURONS
    + """
  SHARED float buffers[2 * N];  // the state after even and after odd ticks
  for (int i = tid; i < N; i += nt) {
    buffers[i] = h0[b * N + i];
    buffers[N + i] = buffers[i];
  }
  float p_valid[NPG];
  float p_span[NPG];
  float p_start[NPG * K];
"""
    + _TICK_LOADS.replace("{tick}", "0")
    + """
  BARRIER();
  for (int tick = 0; tick < steps + L - 1; ++tick) {
    SHARED_PTR h_old = buffers + ((tick + 1) % 2) * N;  // what the last tick left
    SHARED_PTR h_new = buffers + (tick % 2) * N;
    float c_valid[NPG];
    float c_span[NPG];
    float c_start[NPG * K];
    #pragma unroll
    for (int r = 0; r < NPG; ++r) {
      c_valid[r] = p_valid[r];
      c_span[r] = p_span[r];
      #pragma unroll
      for (int k = 0; k < K; ++k) c_start[r * K + k] = p_start[r * K + k];
    }
"""
    + _TICK_LOADS.replace("{tick}", "tick + 1")
    + """
    #pragma unroll
    for (int r = 0; r < NPG; ++r) {
      const int n = group + r * groups;
      const int t = tick - n_layer[r];
      const bool active = t >= 0 && t < steps;
      const bool real = active && c_valid[r] > 0.5f;
      float acc[K];
      #pragma unroll
      for (int k = 0; k < K; ++k) acc[k] = real ? c_start[r * K + k] : 0.0f;
      if (real) {
        #pragma unroll
        for (int c = 0; c < CMAX; ++c) {
          const int i = lane + c * LN;
          if (i < n_rows[r]) {
            const float x = h_old[n_base[r] + i];
            #pragma unroll
            for (int k = 0; k < K; ++k) {
              const int out = k * n_width[r] + n - n_lo[r];
              acc[k] += x * (RES ? wr[RES ? (r * K + k) * CMAX + c : 0]
                                 : w_t[n_wo[r] + out * n_rows[r] + i]);
            }
          }
        }
      }
      #pragma unroll
      for (int k = 0; k < K; ++k)
        for (int m = LN / 2; m > 0; m >>= 1) acc[k] += SHUFFLE_XOR(acc[k], m);
      if (active && lane == 0) {
        const int row = t * batch + b;
        const float span = c_span[r];
        float state = h_old[n];
        if (real) {
"""
    + state_update(
        width="",
        unit="n",
        heads=tuple(_head(k) for k in range(4)),
        pure=("n_amp[r]", "n_wtau[r]"),
    )
    + """
          state = hn;
          if (RECORD) {
            #pragma unroll
            for (int k = 0; k < K; ++k)
              heads[(row * N + n_lo[r]) * K + k * n_width[r] + n - n_lo[r]] = acc[k];
          }
        }
        h_new[n] = state;
        hs[row * N + n] = state;
      }
    }
    BARRIER();
  }
"""
)

BACKWARD_BODY = (
    SEQUENCE_PREAMBLE
    + _LAYER_TABLE
    + _resident_load("rows", "kn", "w[wo + j * kn + i]")
    + """
  SHARED float dnew[N];  // gradient of the state after step t
  SHARED float dold[N];  // gradient of the state before it
  SHARED float g[K * NMAX];
  SHARED float dg[K * NMAX];
"""
    + reverse_steps("dold", "N", "dhs")
    + """
    const float step_span = ts[row];
    for (int j = tid; j < N; j += nt) dnew[j] = dold[j] + dhs[row * N + j];
    #pragma unroll
    for (int l = L - 1; l >= 0; --l) {
"""
    + _LAYER
    + """
      for (int k = tid; k < kn; k += nt) g[k] = heads[(row * N + lo) * K + k];
      BARRIER();
"""
    + _LAYER_NEURONS
    + """
        const float dht = dnew[u];
"""
    + state_update_gradient(width="nl", unit="u", out="row * N + u")
    + """
      }
      BARRIER();
      for (int k = tid; k < kn; k += nt) d_heads[(row * N + lo) * K + k] = dg[k];
"""
    + _layer_matvec(
        "rows",
        "kn",
        "w[wo + j * kn + i]",
        "dg[i]",
        "if (base + j < lo) dnew[base + j] += acc; else dold[base + j] = acc;",
    )
    + """
      // No barrier here: the next layer's record load touches none of dg, dnew, dold, and
      // its gradient starts after the barrier that follows that load.
    }
    BARRIER();
  }
  for (int j = tid; j < N; j += nt) dh0[b * N + j] = dold[j];
"""
)
