"""The fused LTC kernels' source (fan-in layout, ncps's semi-implicit solver): one body for
Metal and CUDA (see :mod:`ncps_mlx.kernels.backend`).

One thread block runs one sequence of the batch through all ``T`` steps and their ``UNF``
solver iterations. Its ``NT`` threads form groups of ``G`` lanes (``G`` a power of two up to a
warp): a group owns neurons ``i = group, group + NT / G, ...`` (``NPG`` of them) and its lanes
share out their synapse slots, ``k = lane, lane + G, ...`` of the ``(N, K)`` tables
(target-major, padding slots with weight 0), summing the lanes' parts with warp shuffles. The
potentials live in on-chip memory; each owned neuron's step constants (``cm_t``, the
denominator's constant part, the drive) live in registers, and so do the parameters of a
thread's synapse slots where they fit (``RES``; otherwise they stream from device memory
through the L1/L2 caches). Each iteration is ncps's update

    v_i <- (cm_t v_i + drive_i + sum_k s_ik w_erev_ik) / (base_i + sum_k s_ik w_ik),
    s_ik = sigmoid(sigma_ik (v_src(i,k) - mu_ik)), cm_t = cm UNF / dt,
    drive = leak_current + sensory numerator, base = cm_t + gleak + sensory denominator + eps.

The backward kernel walks the steps in reverse. For each step it recomputes the iterations
from the state before the step (kept by the forward), keeping every iterate and every
denominator sum, then runs them backwards in two passes per iteration: per target neuron, the
gradients of its numerator and denominator; per source neuron, over its outgoing synapses (a
fan-out table: ``out_start`` ``(N + 1)``, ``out_slots`` ``(E,)``, the occupied slots sorted by
source, at most ``M`` per source), the synapse parameters' gradients and the source's
gradient, so no thread adds into another's value. Each thread keeps its synapses' gradient sums
in registers when they are few (``ACC``), else in the per-sequence output ``d_syn``; per-neuron
sums are kept in registers. The caller sums the per-sequence gradients over the batch.

Compile-time constants: ``N`` neurons, ``K`` slots per neuron, ``UNF`` solver iterations,
``NT`` threads, ``G`` lanes per group, ``NPG`` neurons per group, ``SPL`` slots per lane
(``ceil(K / G)``), ``SPB`` outgoing synapses per lane (``ceil(M / G)``), ``ACC`` (1: synapse
gradients in registers), ``RES`` (1: each thread's synapse parameters in registers for the
whole sequence, where they fit; else they stream from memory at every iteration).
"""

from __future__ import annotations

from .backend import SEQUENCE_PREAMBLE, reverse_steps

__all__ = ["FORWARD_INPUTS", "FORWARD_BODY", "BACKWARD_INPUTS", "BACKWARD_OUTPUTS"]
__all__ += ["backward_body", "HEADER", "scratch_floats"]

HEADER = """
DEVICE_FN float ncps_sigmoid(float x) { return 1.0f / (1.0f + EXP(-x)); }

DEVICE_FN float ncps_group_sum(float x, int lanes) {  // every lane gets its group's sum
  for (int m = lanes / 2; m > 0; m >>= 1) x += SHUFFLE_XOR(x, m);
  return x;
}
"""

_COMMON_INPUTS = [
    "sens_num",  # (T, B, N) sensory numerator of every step
    "sens_den",  # (T, B, N) sensory denominator
    "v0",  # (B, N) initial potentials
    "ts",  # (T, B) elapsed time of each step
    "valid",  # (T, B) 1 at real steps, 0 at padding
    "w_erev",  # (N * K) w * erev per slot
    "w",  # (N * K)
    "mu",  # (N * K)
    "sigma",  # (N * K)
    "src",  # (N * K) source neuron of each slot, as float
    "cm",  # (N,)
    "gleak",  # (N,)
    "leak",  # (N,) gleak * vleak
    "eps",  # (1,) epsilon
    "sizes",  # int32 (2,): T, B
]

FORWARD_INPUTS = list(_COMMON_INPUTS)

#: Extra inputs of the backward kernel: the forward's states ``vs`` and their cotangents
#: ``dvs`` (both ``(T, B, N)``) and the fan-out table (as floats).
BACKWARD_INPUTS = _COMMON_INPUTS + ["vs", "dvs", "out_start", "out_slots"]

#: Gradients (``d_*``) of the backward kernel, and its device-memory scratch ``scratch``
#: (:func:`scratch_floats` per sequence; unused when the scratch fits on chip).
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
    """Scratch floats of the backward kernel per sequence: every iterate of a step
    (``UNF + 1`` vectors), every iteration's denominator sum (``UNF``), and the running
    gradient and the numerator's and denominator's gradients (3)."""
    return (2 * unfolds + 4) * neurons


_GROUPS = """
  const int lane = tid % G;
  const int group = tid / G;
  const int groups = NT / G;
  float cm_t[NPG];
  float base[NPG];
  float drive[NPG];
"""

#: The owned neurons' step constants, in registers (an idle group reads neuron N - 1).
_STEP_CONSTANTS = """
      const float span = ts[row];
      for (int r = 0; r < NPG; ++r) {
        const int i = min(group + r * groups, N - 1);
        cm_t[r] = cm[i] * ((float)UNF / span);
        base[r] = cm_t[r] + gleak[i] + sens_den[row * N + i] + epsilon;
        drive[r] = leak[i] + sens_num[row * N + i];
      }
"""


#: With ``RES``, each thread keeps the parameters of its synapse slots in registers for the
#: whole sequence (loaded once; a padding slot gets weight 0 and source 0): ``sigma``, ``mu``,
#: ``w_erev``, ``w`` and the source of slot ``q`` of owned neuron ``r`` at ``r * SPL + q``.
_RESIDENT_SYNAPSES = """
  float r_sigma[RES ? NPG * SPL : 1];
  float r_mu[RES ? NPG * SPL : 1];
  float r_w_erev[RES ? NPG * SPL : 1];
  float r_w[RES ? NPG * SPL : 1];
  int r_src[RES ? NPG * SPL : 1];
  if (RES) {
    #pragma unroll
    for (int r = 0; r < NPG; ++r) {
      const int i = group + r * groups;
      #pragma unroll
      for (int q = 0; q < SPL; ++q) {
        const int k = lane + q * G;
        const bool inside = i < N && k < K;
        const int slot = inside ? i * K + k : 0;
        const int at = RES ? r * SPL + q : 0;
        r_sigma[at] = inside ? sigma[slot] : 0.0f;
        r_mu[at] = inside ? mu[slot] : 0.0f;
        r_w_erev[at] = inside ? w_erev[slot] : 0.0f;
        r_w[at] = inside ? w[slot] : 0.0f;
        r_src[at] = inside ? (int)src[slot] : 0;
      }
    }
  }
"""


def _iteration(read: str, write: str, denominators: str = "") -> str:
    """One solver iteration: reads the potentials from the pointer ``read``, writes the new
    ones to ``write`` and, if given, each neuron's synapse denominator sum to
    ``denominators``. The synapse parameters come from registers (``RES``) or memory."""
    keep = f"{denominators}[i] = den;" if denominators else ""
    resident = f"""
            #pragma unroll
            for (int q = 0; q < SPL; ++q) {{
              const int at = RES ? r * SPL + q : 0;
              const float s = ncps_sigmoid(r_sigma[at] * ({read}[r_src[at]] - r_mu[at]));
              num += s * r_w_erev[at];
              den += s * r_w[at];
            }}"""
    streamed = f"""
            for (int q = 0; q < SPL; ++q) {{
              const int k = lane + q * G;
              if (k < K) {{
                const int slot = i * K + k;
                const float s = ncps_sigmoid(sigma[slot] * ({read}[(int)src[slot]] - mu[slot]));
                num += s * w_erev[slot];
                den += s * w[slot];
              }}
            }}"""
    return f"""
      #pragma unroll
      for (int r = 0; r < NPG; ++r) {{
        const int i = group + r * groups;
        float num = 0.0f;
        float den = 0.0f;
        if (i < N) {{
          if (RES) {{{resident}
          }} else {{{streamed}
          }}
        }}
        num = ncps_group_sum(num, G);
        den = ncps_group_sum(den, G);
        if (i < N && lane == 0) {{
          {write}[i] = (cm_t[r] * {read}[i] + drive[r] + num) / (base[r] + den);
          {keep}
        }}
      }}
"""


_PREAMBLE = (
    SEQUENCE_PREAMBLE
    + _GROUPS
    + _RESIDENT_SYNAPSES
    + """
  const float epsilon = eps[0];
"""
)

FORWARD_BODY = (
    _PREAMBLE
    + """
  SHARED float va[N];
  SHARED float vb[N];
  for (int i = tid; i < N; i += nt) va[i] = v0[b * N + i];
  BARRIER();
  SHARED_PTR v = va;
  SHARED_PTR v_next = vb;
  for (int t = 0; t < steps; ++t) {
    const int row = t * batch + b;
    if (valid[row] > 0.5f) {
"""
    + _STEP_CONSTANTS
    + """
      for (int u = 0; u < UNF; ++u) {
"""
    + _iteration("v", "v_next")
    + """        BARRIER();
        SHARED_PTR swap = v;
        v = v_next;
        v_next = swap;
      }
    }
    for (int i = tid; i < N; i += nt) vs[row * N + i] = v[i];
  }
"""
)

_BACKWARD_SYNAPSES = """
      for (int r = 0; r < NPG; ++r) {  // per source: its outgoing synapses
        const int j = group + r * groups;
        float to_source = 0.0f;
        if (j < N) {
          const int start = (int)out_start[j];
          const int end = (int)out_start[j + 1];
          const float vj = x_in[j];
          for (int q = 0; q < SPB; ++q) {
            const int e = start + lane + q * G;
            if (e < end) {
              const int slot = (int)out_slots[e];
              const int i = slot / K;
              const float x = vj - mu[slot];
              const float s = ncps_sigmoid(sigma[slot] * x);
              const float dn = d_num[i];
              const float dd = d_den[i];
              const float dp = (dn * w_erev[slot] + dd * w[slot]) * s * (1.0f - s);
              const float parts[4] = {dn * s, dd * s, -dp * sigma[slot], dp * x};
              for (int c = 0; c < 4; ++c) {
                if (ACC) acc[c][r * SPB + q] += parts[c];
                else d_syn[(b * 4 + c) * N * K + slot] += parts[c];
              }
              to_source += dp * sigma[slot];
            }
          }
        }
        to_source = ncps_group_sum(to_source, G);
        if (j < N && lane == 0) g[j] += to_source;
      }
"""


def backward_body(on_chip: bool) -> str:
    """The backward kernel's body, its scratch in on-chip memory (``on_chip``) or in the
    ``scratch`` output."""
    scratch = (
        "SHARED float scratch_chip[(2 * UNF + 4) * N];\n  SHARED_PTR trj = scratch_chip;"
        if on_chip
        else "GLOBAL_PTR trj = scratch + b * (2 * UNF + 4) * N;"
    )
    pointer = "SHARED_PTR" if on_chip else "GLOBAL_PTR"
    return (
        _PREAMBLE
        + f"""
  {scratch}
  {pointer} dens = trj + (UNF + 1) * N;  // per iteration: sum_k s_ik w_ik
  {pointer} g = dens + UNF * N;  // the running gradient of the potentials
  {pointer} d_num = g + N;
  {pointer} d_den = d_num + N;
"""
        + """
  float acc[4][ACC ? NPG * SPB : 1];
  for (int c = 0; c < 4; ++c)
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
        + _STEP_CONSTANTS
        + """
    BARRIER();
    for (int u = 0; u < UNF; ++u) {  // recompute the iterations of this step
"""
        + _iteration("(trj + u * N)", "(trj + (u + 1) * N)", "(dens + u * N)")
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
        + _BACKWARD_SYNAPSES
        + """      BARRIER();
    }
    for (int r = 0; r < NPG; ++r) {
      const int i = group + r * groups;
      if (i < N && lane == 0) {
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
    if (i < N && lane == 0) {
      d_cm[b * N + i] = sum_cm[r];
      d_gleak[b * N + i] = sum_gleak[r];
      d_leak[b * N + i] = sum_leak[r];
    }
  }
  if (ACC) {
    for (int r = 0; r < NPG; ++r) {
      const int j = group + r * groups;
      if (j < N) {
        const int start = (int)out_start[j];
        const int end = (int)out_start[j + 1];
        for (int q = 0; q < SPB; ++q) {
          const int e = start + lane + q * G;
          if (e < end) {
            const int slot = (int)out_slots[e];
            for (int c = 0; c < 4; ++c) d_syn[(b * 4 + c) * N * K + slot] = acc[c][r * SPB + q];
          }
        }
      }
    }
  }
  for (int i = tid; i < N; i += nt) dv0[b * N + i] = g[i];
"""
    )
