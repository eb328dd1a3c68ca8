"""The fused LTC's backward kernel source (see :mod:`ncps_mlx.kernels.ltc_source` for the
thread layout, the forward and the compile-time constants).

The backward kernel walks the steps in reverse. For each step it recomputes the iterations
from the state before the step (kept by the forward), keeping every iterate and every
denominator sum, then runs them backwards in two passes per iteration: per target neuron, the
gradients of its numerator and denominator; per source neuron, over its outgoing synapses (a
fan-out table: ``out_start`` ``(N + 1)``, ``out_slots`` ``(E,)``, the occupied slots sorted by
source, at most ``M`` per source), the synapse parameters' gradients and the source's
gradient, so no thread adds into another's value. Each thread keeps its synapses' gradient sums
in registers when they are few (``ACC``), else it adds them into the per-sequence output
``d_syn`` at every iteration; per-neuron sums are kept in registers. Where the four sums of
each synapse do not fit in registers but a half or a quarter of them do, ``SPLIT`` (2 or 4)
blocks run each sequence: block ``BLOCK_ID`` runs sequence ``BLOCK_ID / SPLIT`` in full (the
same arithmetic, so the same running gradients, in its own scratch) but keeps only its share
of the four components, ``CPB = 4 / SPLIT`` of them from ``part * CPB`` (``part = BLOCK_ID %
SPLIT``), and writes those rows of ``d_syn``; part 0 writes the other outputs. The caller sums
the per-sequence gradients over the batch.
"""

from __future__ import annotations

from .backend import reverse_steps
from .ltc_source import COMMON_INPUTS, kernel_preamble, solver_iteration, step_constants

__all__ = ["BACKWARD_INPUTS", "BACKWARD_OUTPUTS", "backward_body", "scratch_floats"]

#: Extra inputs of the backward kernel: the forward's states ``vs`` and their cotangents
#: ``dvs`` (both ``(T, B, N)``) and the fan-out table (as floats).
BACKWARD_INPUTS = COMMON_INPUTS + ["vs", "dvs", "out_start", "out_slots"]

#: Gradients (``d_*``) of the backward kernel, and its device-memory scratch ``scratch``
#: (:func:`scratch_floats` per block, ``(B * SPLIT, ...)``; unused when the scratch fits on
#: chip).
BACKWARD_OUTPUTS = [
    "d_sens_num",  # (T, B, N)
    "d_sens_den",  # (T, B, N)
    "dts",  # (T, B, N) per-neuron parts of the timespan's gradient
    "dv0",  # (B, N)
    "d_cm",  # (B, N)
    "d_gleak",  # (B, N)
    "d_leak",  # (B, N)
    "d_syn",  # (B, 4, N * K): w_erev, w, mu, sigma
    "scratch",
]


def scratch_floats(neurons: int, unfolds: int) -> int:
    """Scratch floats of the backward kernel per block: every iterate of a step
    (``UNF + 1`` vectors), every iteration's denominator sum (``UNF``), and the running
    gradient and the numerator's and denominator's gradients (3)."""
    return (2 * unfolds + 4) * neurons


#: The backward's opening lines: those of :data:`SEQUENCE_PREAMBLE` with ``SPLIT`` blocks a
#: sequence, block ``BLOCK_ID`` running sequence ``b`` for its share ``part`` of the synapse
#: gradients.
_SPLIT_SEQUENCE_PREAMBLE = """
  const int tid = THREAD_ID;
  const int nt = NUM_THREADS;
  const int b = BLOCK_ID / SPLIT;
  const int part = BLOCK_ID % SPLIT;
  const int steps = sizes[0];
  const int batch = sizes[1];
"""


def _backward_synapses(in_registers: bool) -> str:
    """Kernel code adding, per source neuron over its outgoing synapses, the block's
    components of the synapse gradients (``CPB`` of them from ``part * CPB``) into registers
    (``in_registers``, the loops unrolled so that they index registers) or into ``d_syn``,
    and the source's gradient into ``g``."""
    unroll = "#pragma unroll" if in_registers else ""
    add = (
        "acc[c][r * SPB + q] += value;"
        if in_registers
        else "d_syn[(b * 4 + field) * N * K + slot] += value;"
    )
    return f"""
      {unroll}
      for (int r = 0; r < NPG; ++r) {{
        const int j = group + r * groups;
        float to_source = 0.0f;
        if (j < N) {{
          const int start = (int)out_start[j];
          const int end = (int)out_start[j + 1];
          const float vj = x_in[j];
          {unroll}
          for (int q = 0; q < SPB; ++q) {{
            const int e = start + lane + q * G;
            if (e < end) {{
              const int slot = (int)out_slots[e];
              const int i = slot / K;
              const float x = vj - mu[slot];
              const float s = ncps_synapse(sigma[slot] * NCPS_NEG_LOG2E, x);
              const float dn = d_num[i];
              const float dd = d_den[i];
              const float dp = (dn * w_erev[slot] + dd * w[slot]) * s * (1.0f - s);
              #pragma unroll
              for (int c = 0; c < CPB; ++c) {{
                const int field = part * CPB + c;
                const float value = field == 0   ? dn * s
                                    : field == 1 ? dd * s
                                    : field == 2 ? -dp * sigma[slot]
                                                 : dp * x;
                {add}
              }}
              to_source += dp * sigma[slot];
            }}
          }}
        }}
        to_source = ncps_group_sum(to_source, G);
        if (j < N && lane == 0) g[j] += to_source;
      }}
"""


def backward_body(on_chip: bool) -> str:
    """The backward kernel's body, its scratch in on-chip memory (``on_chip``) or in the
    ``scratch`` output."""
    scratch = (
        "SHARED float scratch_chip[(2 * UNF + 4) * N];\n  SHARED_PTR trj = scratch_chip;"
        if on_chip
        else "GLOBAL_PTR trj = scratch + BLOCK_ID * (2 * UNF + 4) * N;"
    )
    pointer = "SHARED_PTR" if on_chip else "GLOBAL_PTR"
    return (
        kernel_preamble(_SPLIT_SEQUENCE_PREAMBLE)
        + f"""
  {scratch}
  {pointer} dens = trj + (UNF + 1) * N;  // per iteration: sum_k s_ik w_ik
  {pointer} g = dens + UNF * N;  // the running gradient of the potentials
  {pointer} d_num = g + N;
  {pointer} d_den = d_num + N;
"""
        + """
  constexpr int CPB = 4 / SPLIT;  // synapse-gradient components of this block
  float acc[CPB][ACC ? NPG * SPB : 1];
  for (int c = 0; c < CPB; ++c)
    for (int r = 0; r < (ACC ? NPG * SPB : 1); ++r) acc[c][r] = 0.0f;
  float sum_cm[NPG];
  float sum_gleak[NPG];
  float sum_leak[NPG];
  for (int r = 0; r < NPG; ++r) {
    sum_cm[r] = 0.0f;
    sum_gleak[r] = 0.0f;
    sum_leak[r] = 0.0f;
  }
"""
        + reverse_steps("g", "N", "dvs")
        + """
    for (int i = tid; i < N; i += nt) {
      trj[i] = t > 0 ? vs[(row - batch) * N + i] : v0[b * N + i];
      g[i] += dvs[row * N + i];
    }
"""
        + step_constants("row - batch", "t > 0")
        + """
    BARRIER();
    for (int u = 0; u < UNF; ++u) {  // recompute the iterations of this step
"""
        + solver_iteration("(trj + u * N)", "(trj + (u + 1) * N)", "(dens + u * N)")
        + f"""      BARRIER();
    }}
    float step_drive[NPG];
    float step_base[NPG];
    float step_cm_t[NPG];
    for (int r = 0; r < NPG; ++r) {{
      step_drive[r] = 0.0f;
      step_base[r] = 0.0f;
      step_cm_t[r] = 0.0f;
    }}
    for (int u = UNF - 1; u >= 0; --u) {{  // and run them backwards
      {pointer} x_in = trj + u * N;
      for (int r = 0; r < NPG; ++r) {{  // per target: its numerator's and denominator's
        const int i = group + r * groups;
        if (i < N && lane == 0) {{
          const float total = base[r] + dens[u * N + i];
          const float gi = g[i];
          const float dn = gi / total;
          const float dd = -gi * x_in[N + i] / total;
          d_num[i] = dn;
          d_den[i] = dd;
          step_drive[r] += dn;
          step_base[r] += dd;
          step_cm_t[r] += dn * x_in[i] + dd;
          g[i] = dn * cm_t[r];  // the direct part; the synapses add theirs below
        }}
      }}
      BARRIER();
"""
        + "      if (ACC) {"
        + _backward_synapses(in_registers=True)
        + "      } else {"
        + _backward_synapses(in_registers=False)
        + """      }
      BARRIER();
    }
    for (int r = 0; r < NPG; ++r) {
      const int i = group + r * groups;
      if (i < N && lane == 0 && part == 0) {
        d_sens_num[row * N + i] = step_drive[r];
        d_sens_den[row * N + i] = step_base[r];
        sum_leak[r] += step_drive[r];
        sum_gleak[r] += step_base[r];
        sum_cm[r] += step_cm_t[r] * ((float)UNF / span);
        dts[row * N + i] = -step_cm_t[r] * cm[i] * (float)UNF / (span * span);
      }
    }
  }
  for (int r = 0; r < NPG; ++r) {
    const int i = group + r * groups;
    if (i < N && lane == 0 && part == 0) {
      d_cm[b * N + i] = sum_cm[r];
      d_gleak[b * N + i] = sum_gleak[r];
      d_leak[b * N + i] = sum_leak[r];
    }
  }
  if (ACC) {
    #pragma unroll
    for (int r = 0; r < NPG; ++r) {
      const int j = group + r * groups;
      if (j < N) {
        const int start = (int)out_start[j];
        const int end = (int)out_start[j + 1];
        #pragma unroll
        for (int q = 0; q < SPB; ++q) {
          const int e = start + lane + q * G;
          if (e < end) {
            const int slot = (int)out_slots[e];
            for (int c = 0; c < CPB; ++c)
              d_syn[(b * 4 + part * CPB + c) * N * K + slot] = acc[c][r * SPB + q];
          }
        }
      }
    }
  }
  if (part == 0)
    for (int i = tid; i < N; i += nt) dv0[b * N + i] = g[i];
"""
    )
