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
through the L1/L2 caches). With ``AHD`` a step's timespan and sensory sums (and, forward, its
padding flag) are read during the step before, so that their latency does not stall the block
at every step. Each iteration is ncps's update

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
in registers when they are few (``ACC``), else it adds them into the per-sequence output
``d_syn`` at every iteration; per-neuron sums are kept in registers. Where the four sums of
each synapse do not fit in registers but a half or a quarter of them do, ``SPLIT`` (2 or 4)
blocks run each sequence: block ``BLOCK_ID`` runs sequence ``BLOCK_ID / SPLIT`` in full (the
same arithmetic, so the same running gradients, in its own scratch) but keeps only its share
of the four components, ``CPB = 4 / SPLIT`` of them from ``part * CPB`` (``part = BLOCK_ID %
SPLIT``), and writes those rows of ``d_syn``; part 0 writes the other outputs. The caller sums
the per-sequence gradients over the batch.

Compile-time constants: ``N`` neurons, ``K`` slots per neuron, ``UNF`` solver iterations,
``NT`` threads, ``G`` lanes per group, ``NPG`` neurons per group, ``SPL`` slots per lane
(``ceil(K / G)``), ``SPB`` outgoing synapses per lane (``ceil(M / G)``), ``ACC`` (1: the
block's synapse-gradient sums in registers), ``RES`` (1: each thread's synapse parameters in
registers for the whole sequence, where they fit; else they stream from memory at every
iteration), ``SPLIT`` (the backward's blocks per sequence: 1, 2 or 4; the forward ignores it)
and ``AHD`` (1: the step inputs read a step ahead).
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


_GROUPS = """
  const int lane = tid % G;
  const int group = tid / G;
  const int groups = NT / G;
  float cm_t[NPG];
  float base[NPG];
  float drive[NPG];
  // with AHD: row ahead_row's timespan and sensory sums, read a step ahead
  float ahead_span = 1.0f;
  float ahead_num[AHD ? NPG : 1];
  float ahead_den[AHD ? NPG : 1];
  int ahead_row = -1;
"""


def _read_ahead(row: str) -> str:
    """Kernel code reading row ``row``'s timespan and sensory sums into the ``ahead_*``
    registers."""
    return f"""
        ahead_row = {row};
        ahead_span = ts[ahead_row];
        for (int r = 0; r < NPG; ++r) {{
          const int i = min(group + r * groups, N - 1);
          const int at = AHD ? r : 0;
          ahead_num[at] = sens_num[ahead_row * N + i];
          ahead_den[at] = sens_den[ahead_row * N + i];
        }}"""


def _step_constants(following: str, has_following: str) -> str:
    """Kernel code setting ``span`` and the owned neurons' step constants (in registers) of
    ``row`` (an idle group reads neuron N - 1). With ``AHD`` it takes the step inputs read
    ahead, during the previous step, so that their latency overlaps its work (read now if it
    did not: the first step, or after padding), and reads those of row ``following`` if
    ``has_following``; else it reads them from memory."""
    return f"""
      if (AHD && ahead_row != row) {{{_read_ahead("row")}
      }}
      const float span = AHD ? ahead_span : ts[row];
      for (int r = 0; r < NPG; ++r) {{
        const int i = min(group + r * groups, N - 1);
        const int at = AHD ? r : 0;
        cm_t[r] = cm[i] * ((float)UNF / span);
        base[r] = cm_t[r] + gleak[i] + (AHD ? ahead_den[at] : sens_den[row * N + i]) + epsilon;
        drive[r] = leak[i] + (AHD ? ahead_num[at] : sens_num[row * N + i]);
      }}
      if (AHD && {has_following}) {{{_read_ahead(following)}
      }}
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


def _preamble(sequence: str) -> str:
    """A kernel's opening lines after ``sequence`` (its thread and sequence indices): the
    thread's group, registers and resident synapses, and ``epsilon``."""
    return sequence + _GROUPS + _RESIDENT_SYNAPSES + "\n  const float epsilon = eps[0];\n"


FORWARD_BODY = (
    _preamble(SEQUENCE_PREAMBLE)
    + """
  SHARED float va[N];
  SHARED float vb[N];
  for (int i = tid; i < N; i += nt) va[i] = v0[b * N + i];
  BARRIER();
  SHARED_PTR v = va;
  SHARED_PTR v_next = vb;
  float valid_ahead = steps > 0 ? valid[b] : 0.0f;  // step t's flag, read a step ahead
  for (int t = 0; t < steps; ++t) {
    const int row = t * batch + b;
    const bool real = (AHD ? valid_ahead : valid[row]) > 0.5f;
    if (AHD && t + 1 < steps) valid_ahead = valid[row + batch];
    if (real) {
"""
    + _step_constants("row + batch", "t + 1 < steps")
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
              const float s = ncps_sigmoid(sigma[slot] * x);
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
        _preamble(_SPLIT_SEQUENCE_PREAMBLE)
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
        + _step_constants("row - batch", "t > 0")
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
