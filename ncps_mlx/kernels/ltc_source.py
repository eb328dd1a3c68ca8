"""The fused LTC kernels' source (fan-in layout, ncps's semi-implicit solver): one body for
Metal and CUDA (see :mod:`ncps_mlx.kernels.backend`).

One thread block runs one sequence of the batch through all ``T`` steps and their ``UNF``
solver iterations; a thread owns neurons ``i = THREAD_ID, THREAD_ID + NUM_THREADS, ...`` and
their ``K`` incoming synapse slots (``(N, K)`` tables, target-major, padding slots with weight
0). The potentials live in on-chip memory in the forward kernel; the synapse parameters stream
from device memory. Each iteration is ncps's update

    v_i <- (cm_t v_i + drive_i + sum_k s_ik w_erev_ik) / (base_i + sum_k s_ik w_ik),
    s_ik = sigmoid(sigma_ik (v_src(i,k) - mu_ik)), cm_t = cm UNF / dt,
    drive = leak_current + sensory numerator, base = cm_t + gleak + sensory denominator + eps.

The backward kernel walks the steps in reverse; for each step it recomputes the iterations
from the state before the step (kept in device-memory scratch), then runs them backwards. The
gradient of a source potential gathers the contributions of its outgoing synapses through a
fan-out table (``out_start`` ``(N + 1)``, ``out_slots`` ``(N * K)``: for each source, the slots
it feeds), so no thread adds into another's value. Per-synapse and per-neuron parameter
gradients are accumulated per sequence (one block each, so without atomics) and summed over
the batch by the caller.

Compile-time constants: ``N`` neurons, ``K`` slots per neuron, ``UNF`` solver iterations.
"""

from __future__ import annotations

from .backend import SEQUENCE_PREAMBLE

__all__ = ["FORWARD_INPUTS", "FORWARD_BODY", "BACKWARD_INPUTS", "BACKWARD_OUTPUTS"]
__all__ += ["BACKWARD_BODY", "HEADER"]

HEADER = """
DEVICE_FN float ncps_sigmoid(float x) { return 1.0f / (1.0f + EXP(-x)); }
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
#: ``dvs`` (both ``(T, B, N)``) and the fan-out table.
BACKWARD_INPUTS = _COMMON_INPUTS + ["vs", "dvs", "out_start", "out_slots"]

#: Gradients (``d_*``) and device-memory scratch of the backward kernel: ``traj`` ``(B, UNF + 1,
#: N)`` the iterations of the current step, ``work`` ``(B, 6, N)`` per-neuron running values,
#: ``dsrc`` ``(B, N * K)`` each slot's gradient for its source.
BACKWARD_OUTPUTS = [
    "d_sens_num",  # (T, B, N)
    "d_sens_den",  # (T, B, N)
    "dts",  # (T, B, N) per-neuron parts of the timespan's gradient
    "dv0",  # (B, N)
    "d_cm",  # (B, N)
    "d_gleak",  # (B, N)
    "d_leak",  # (B, N)
    "d_syn",  # (B, 4, N * K): w_erev, w, mu, sigma
    "traj",
    "work",
    "dsrc",
]

def _iteration(read: str, write: str) -> str:
    """One solver iteration of every neuron of the block: reads potentials through ``read``
    (an array expression up to its index, e.g. ``"v["``) and stores the new one at ``write``."""
    gathered = f"{read}(int)src[slot]]"
    return f"""
      for (int i = tid; i < N; i += nt) {{
        const float cm_t = cm[i] * ((float)UNF / span);
        const float base = cm_t + gleak[i] + sens_den[row * N + i] + epsilon;
        const float drive = leak[i] + sens_num[row * N + i];
        float num = 0.0f;
        float den = 0.0f;
        for (int k = 0; k < K; ++k) {{
          const int slot = i * K + k;
          const float s = ncps_sigmoid(sigma[slot] * ({gathered} - mu[slot]));
          num += s * w_erev[slot];
          den += s * w[slot];
        }}
        {write} = (cm_t * {read}i] + drive + num) / (base + den);
      }}
"""


_PREAMBLE = SEQUENCE_PREAMBLE + """
  const float epsilon = eps[0];
"""

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
      const float span = ts[row];
      for (int u = 0; u < UNF; ++u) {
"""
    + _iteration("v[", "v_next[i]")
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

BACKWARD_BODY = (
    _PREAMBLE
    + """
  // work rows: 0 the running gradient dv, 1 the gradient of the current iterate, 2 its
  // direct part, 3-5 per-step sums of the gradients of drive, base and cm_t
  const int wb = b * 6 * N;
  const int tb = b * (UNF + 1) * N;
  for (int i = tid; i < N; i += nt) work[wb + i] = 0.0f;
  for (int t = steps - 1; t >= 0; --t) {
    const int row = t * batch + b;
    if (valid[row] < 0.5f) {  // a padded step carries the state: so does its gradient
      for (int i = tid; i < N; i += nt) work[wb + i] += dvs[row * N + i];
      continue;
    }
    const float span = ts[row];
    for (int i = tid; i < N; i += nt) {
      traj[tb + i] = t > 0 ? vs[(row - batch) * N + i] : v0[b * N + i];
      work[wb + N + i] = work[wb + i] + dvs[row * N + i];
      work[wb + 3 * N + i] = 0.0f;
      work[wb + 4 * N + i] = 0.0f;
      work[wb + 5 * N + i] = 0.0f;
    }
    BARRIER();
    for (int u = 0; u < UNF; ++u) {  // recompute the iterations of this step
      const int in = tb + u * N;
"""
    + _iteration("traj[in + ", "traj[in + N + i]")
    + """      BARRIER();
    }
    for (int u = UNF - 1; u >= 0; --u) {  // and run them backwards
      const int in = tb + u * N;
      for (int i = tid; i < N; i += nt) {
        const float cm_t = cm[i] * ((float)UNF / span);
        const float base = cm_t + gleak[i] + sens_den[row * N + i] + epsilon;
        float den = 0.0f;
        for (int k = 0; k < K; ++k) {
          const int slot = i * K + k;
          den += ncps_sigmoid(sigma[slot] * (traj[in + (int)src[slot]] - mu[slot])) * w[slot];
        }
        const float total = base + den;
        const float g = work[wb + N + i];
        const float d_num = g / total;  // gradient of the numerator
        const float d_den = -g * traj[in + N + i] / total;  // and of the denominator
        work[wb + 3 * N + i] += d_num;
        work[wb + 4 * N + i] += d_den;
        work[wb + 5 * N + i] += d_num * traj[in + i] + d_den;
        work[wb + 2 * N + i] = d_num * cm_t;
        for (int k = 0; k < K; ++k) {
          const int slot = i * K + k;
          const float x = traj[in + (int)src[slot]] - mu[slot];
          const float s = ncps_sigmoid(sigma[slot] * x);
          const float dp = (d_num * w_erev[slot] + d_den * w[slot]) * s * (1.0f - s);
          const int sb = b * 4 * N * K + slot;
          d_syn[sb] += d_num * s;
          d_syn[sb + N * K] += d_den * s;
          d_syn[sb + 2 * N * K] -= dp * sigma[slot];
          d_syn[sb + 3 * N * K] += dp * x;
          dsrc[b * N * K + slot] = dp * sigma[slot];
        }
      }
      BARRIER();
      for (int j = tid; j < N; j += nt) {  // gather each source's outgoing contributions
        float g = work[wb + 2 * N + j];
        const int end = (int)out_start[j + 1];
        for (int e = (int)out_start[j]; e < end; ++e) g += dsrc[b * N * K + (int)out_slots[e]];
        work[wb + N + j] = g;
      }
      BARRIER();
    }
    for (int i = tid; i < N; i += nt) {
      const float d_drive = work[wb + 3 * N + i];
      const float d_base = work[wb + 4 * N + i];
      const float d_cm_t = work[wb + 5 * N + i];
      d_sens_num[row * N + i] = d_drive;
      d_sens_den[row * N + i] = d_base;
      d_leak[b * N + i] += d_drive;
      d_gleak[b * N + i] += d_base;
      d_cm[b * N + i] += d_cm_t * ((float)UNF / span);
      dts[row * N + i] = -d_cm_t * cm[i] * (float)UNF / (span * span);
      work[wb + i] = work[wb + N + i];
    }
    BARRIER();
  }
  for (int i = tid; i < N; i += nt) dv0[b * N + i] = work[wb + i];
"""
)
