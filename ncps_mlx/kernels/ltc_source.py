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
at every step. Each iteration is ncps's update (the synapse's sigmoid is ``ncps_synapse`` of
``HEADER``)

    v_i <- (cm_t v_i + drive_i + sum_k s_ik w_erev_ik) / (base_i + sum_k s_ik w_ik),
    s_ik = sigmoid(sigma_ik (v_src(i,k) - mu_ik)), cm_t = cm UNF / dt,
    drive = leak_current + sensory numerator, base = cm_t + gleak + sensory denominator + eps.

The backward kernel is in :mod:`ncps_mlx.kernels.ltc_backward_source`.

Compile-time constants: ``N`` neurons, ``K`` slots per neuron, ``UNF`` solver iterations,
``NT`` threads, ``G`` lanes per group, ``NPG`` neurons per group, ``SPL`` slots per lane
(``ceil(K / G)``), ``SPB`` outgoing synapses per lane (``ceil(M / G)``), ``ACC`` (1: the
block's synapse-gradient sums in registers), ``RES`` (1: each thread's synapse parameters in
registers for the whole sequence, where they fit; else they stream from memory at every
iteration), ``SPLIT`` (the backward's blocks per sequence: 1, 2 or 4; the forward ignores it)
and ``AHD`` (1: the step inputs read a step ahead).
"""

from __future__ import annotations

from .backend import SEQUENCE_PREAMBLE

__all__ = ["FORWARD_INPUTS", "FORWARD_BODY", "HEADER", "COMMON_INPUTS"]
__all__ += ["kernel_preamble", "solver_iteration", "step_constants"]

HEADER = """
// A synapse's activation sigmoid(sigma (v - mu)) = 1 / (1 + 2^(-log2(e) sigma (v - mu))), from
// sigma scaled by -log2(e) (NCPS_NEG_LOG2E, where it is loaded): one base-2 exponential and one
// reciprocal (the GPUs' special-function instructions, EXP2 and FAST_RCP) instead of expf's
// extended-precision range reduction and a correctly rounded division, which made up most of a
// synapse's instructions. Its error is a few float32 ulps more than sigmoid's (the rounding of
// the scaled exponent, about |x| 1e-7 relative, which the exponent sigma (v - mu) itself
// already has in float32); every kernel computes a synapse's activation with this one function.
#define NCPS_NEG_LOG2E (-1.4426950408889634f)
DEVICE_FN float ncps_synapse(float scaled_sigma, float x) {
  return FAST_RCP(1.0f + EXP2(scaled_sigma * x));
}

DEVICE_FN float ncps_group_sum(float x, int lanes) {  // every lane gets its group's sum
  for (int m = lanes / 2; m > 0; m >>= 1) x += SHUFFLE_XOR(x, m);
  return x;
}
"""

COMMON_INPUTS = [
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

FORWARD_INPUTS = list(COMMON_INPUTS)

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


def step_constants(following: str, has_following: str) -> str:
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
#: whole sequence (loaded once; a padding slot gets weight 0 and source 0): ``sigma`` (scaled
#: by ``NCPS_NEG_LOG2E``, as ``ncps_synapse`` takes it), ``mu``,
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
        r_sigma[at] = inside ? sigma[slot] * NCPS_NEG_LOG2E : 0.0f;
        r_mu[at] = inside ? mu[slot] : 0.0f;
        r_w_erev[at] = inside ? w_erev[slot] : 0.0f;
        r_w[at] = inside ? w[slot] : 0.0f;
        r_src[at] = inside ? (int)src[slot] : 0;
      }
    }
  }
"""


def solver_iteration(read: str, write: str, denominators: str = "") -> str:
    """One solver iteration: reads the potentials from the pointer ``read``, writes the new
    ones to ``write`` and, if given, each neuron's synapse denominator sum to
    ``denominators``. The synapse parameters come from registers (``RES``) or memory."""
    keep = f"{denominators}[i] = den;" if denominators else ""
    resident = f"""
            #pragma unroll
            for (int q = 0; q < SPL; ++q) {{
              const int at = RES ? r * SPL + q : 0;
              const float s = ncps_synapse(r_sigma[at], {read}[r_src[at]] - r_mu[at]);
              num += s * r_w_erev[at];
              den += s * r_w[at];
            }}"""
    streamed = f"""
            for (int q = 0; q < SPL; ++q) {{
              const int k = lane + q * G;
              if (k < K) {{
                const int slot = i * K + k;
                const float x = {read}[(int)src[slot]] - mu[slot];
                const float s = ncps_synapse(sigma[slot] * NCPS_NEG_LOG2E, x);
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


def kernel_preamble(sequence: str) -> str:
    """A kernel's opening lines after ``sequence`` (its thread and sequence indices): the
    thread's group, registers and resident synapses, and ``epsilon``."""
    return sequence + _GROUPS + _RESIDENT_SYNAPSES + "\n  const float epsilon = eps[0];\n"


FORWARD_BODY = (
    kernel_preamble(SEQUENCE_PREAMBLE)
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
    + step_constants("row + batch", "t + 1 < steps")
    + """
      for (int u = 0; u < UNF; ++u) {
"""
    + solver_iteration("v", "v_next")
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
