"""The fused LTC kernels in plain MLX: the inputs and the gradient outputs of the GPU kernels
of :mod:`ncps_mlx.kernels.ltc_source`, computed with the same algorithm (recompute each step's
solver iterations, run them backwards, gather each source's gradient), vectorised over the
batch. It runs anywhere, so the tests on the CPU check the algorithm and the custom gradient
assembled from it (:mod:`ncps_mlx.kernels.ltc`); on a GPU the real kernels are compared with it.
"""

from __future__ import annotations

import mlx.core as mx

__all__ = ["forward", "backward"]


def _step_terms(cfg, a, row_t):
    """``cm_t``, ``base`` and ``drive`` ``(B, N)`` of step ``row_t``."""
    cm_t = a["cm"] * (cfg.unfolds / a["ts"][row_t][:, None])
    base = cm_t + a["gleak"] + a["sens_den"][row_t] + a["eps"]
    return cm_t, base, a["leak"] + a["sens_num"][row_t]


def _activations(cfg, a, v):
    """``x = v_src - mu`` and ``s = sigmoid(sigma x)``, both ``(B, N, K)``."""
    gathered = mx.take(v, a["src"].astype(mx.int32), axis=-1)
    x = gathered.reshape(v.shape[0], cfg.neurons, cfg.slots) - _table(cfg, a["mu"])
    return x, mx.sigmoid(_table(cfg, a["sigma"]) * x)


def _table(cfg, values):
    return values.reshape(cfg.neurons, cfg.slots)


def _iterate(cfg, a, v, cm_t, base, drive):
    _, s = _activations(cfg, a, v)
    num = (s * _table(cfg, a["w_erev"])).sum(-1)
    den = (s * _table(cfg, a["w"])).sum(-1)
    return (cm_t * v + drive + num) / (base + den)


def forward(cfg, a: dict) -> mx.array:
    """The forward kernel: the potentials after every step, ``vs`` ``(T, B, N)``."""
    v, states = a["v0"], []
    for t in range(a["sens_num"].shape[0]):
        cm_t, base, drive = _step_terms(cfg, a, t)
        v_new = v
        for _ in range(cfg.unfolds):
            v_new = _iterate(cfg, a, v_new, cm_t, base, drive)
        v = mx.where(a["valid"][t][:, None] > 0.5, v_new, v)
        states.append(v)
    return mx.stack(states)


def _iteration_gradient(cfg, a, v_in, v_out, g, cm_t, base):
    """Back through one iteration: the gradient of ``v_in`` and the gradients of the
    numerator and denominator ``(B, N)`` and of the synapse tables ``(B, 4, N * K)``."""
    x, s = _activations(cfg, a, v_in)
    w, w_erev, sigma = (_table(cfg, a[name]) for name in ("w", "w_erev", "sigma"))
    total = base + (s * w).sum(-1)
    d_num, d_den = g / total, -g * v_out / total
    dp = (d_num[..., None] * w_erev + d_den[..., None] * w) * s * (1.0 - s)
    d_syn = mx.stack([d_num[..., None] * s, d_den[..., None] * s, -dp * sigma, dp * x], axis=1)
    to_sources = (
        mx.zeros_like(v_in)
        .at[:, a["src"].astype(mx.int32)]
        .add((dp * sigma).reshape(v_in.shape[0], -1))
    )
    return d_num * cm_t + to_sources, d_num, d_den, d_syn.reshape(v_in.shape[0], 4, -1)


def backward(cfg, a: dict) -> dict:
    """The backward kernel's gradient outputs (``BACKWARD_OUTPUTS`` of
    :mod:`ncps_mlx.kernels.ltc_source` but the scratch), zero at padded steps."""
    steps, batch, neurons = a["sens_num"].shape
    dv = mx.zeros((batch, neurons))
    sums = {name: 0.0 for name in ("d_cm", "d_gleak", "d_leak", "d_syn")}
    rows = {name: [] for name in ("d_sens_num", "d_sens_den", "dts")}
    for t in range(steps - 1, -1, -1):
        keep = (a["valid"][t] > 0.5)[:, None]
        cm_t, base, drive = _step_terms(cfg, a, t)
        trajectory = [a["vs"][t - 1] if t > 0 else a["v0"]]
        for _ in range(cfg.unfolds):
            trajectory.append(_iterate(cfg, a, trajectory[-1], cm_t, base, drive))
        g = dv + a["dvs"][t]
        d_drive = d_base = d_cm_t = d_syn = 0.0
        for u in range(cfg.unfolds - 1, -1, -1):
            v_in = trajectory[u]
            g_in, d_num, d_den, syn = _iteration_gradient(
                cfg, a, v_in, trajectory[u + 1], g, cm_t, base
            )
            d_drive, d_base = d_drive + d_num, d_base + d_den
            d_cm_t = d_cm_t + d_num * v_in + d_den
            d_syn, g = d_syn + syn, g_in
        span = a["ts"][t][:, None]
        step = {
            "d_sens_num": d_drive,
            "d_sens_den": d_base,
            "dts": -d_cm_t * a["cm"] * cfg.unfolds / (span * span),
        }
        for name, value in step.items():
            rows[name].append(mx.where(keep, value, 0.0))
        sums["d_leak"] = sums["d_leak"] + mx.where(keep, d_drive, 0.0)
        sums["d_gleak"] = sums["d_gleak"] + mx.where(keep, d_base, 0.0)
        sums["d_cm"] = sums["d_cm"] + mx.where(keep, d_cm_t * cfg.unfolds / span, 0.0)
        sums["d_syn"] = sums["d_syn"] + mx.where(keep[..., None], d_syn, 0.0)
        dv = mx.where(keep, g, dv + a["dvs"][t])
    out = {name: mx.stack(values[::-1]) for name, values in rows.items()}
    return {**out, **sums, "dv0": dv}
