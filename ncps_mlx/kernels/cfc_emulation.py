"""The fused CfC kernels in plain MLX: the same inputs and outputs as the GPU kernels of
:mod:`ncps_mlx.kernels.cfc_source`, computed with MLX operations (vectorised over the batch,
one step at a time). It runs anywhere, so the tests on the CPU check the custom gradient that
is assembled from the kernels' outputs (:mod:`ncps_mlx.kernels.cfc`); on a GPU the real
kernels are compared with it.
"""

from __future__ import annotations

import mlx.core as mx

from .cfc_source import ACTIVATION_CODES

__all__ = ["forward", "backward", "new_state", "heads_gradient"]


def _activation(kind: int, p: mx.array) -> mx.array:
    if kind == ACTIVATION_CODES["lecun_tanh"]:
        return 1.7159 * mx.tanh(0.666 * p)
    if kind == ACTIVATION_CODES["tanh"]:
        return mx.tanh(p)
    if kind == ACTIVATION_CODES["relu"]:
        return mx.maximum(p, 0.0)
    if kind == ACTIVATION_CODES["silu"]:
        return p * mx.sigmoid(p)
    return 0.5 * p * (1.0 + mx.erf(p * 0.7071067811865476))


def _activation_slope(kind: int, p: mx.array) -> mx.array:
    if kind == ACTIVATION_CODES["lecun_tanh"]:
        return 1.7159 * 0.666 * (1.0 - mx.tanh(0.666 * p) ** 2)
    if kind == ACTIVATION_CODES["tanh"]:
        return 1.0 - mx.tanh(p) ** 2
    if kind == ACTIVATION_CODES["relu"]:
        return (p > 0).astype(p.dtype)
    if kind == ACTIVATION_CODES["silu"]:
        s = mx.sigmoid(p)
        return s * (1.0 + p * (1.0 - s))
    return 0.5 * (1.0 + mx.erf(p * 0.7071067811865476)) + p * 0.3989422804014327 * mx.exp(
        -0.5 * p * p
    )


def _heads(cfg, arrays, xproj_t, h):
    """One step's heads ``(B, KH)`` and the backbone's pre-activations (a list of ``(B, U)``)."""
    first = xproj_t + h @ arrays["w_rec"]
    if cfg.layers == 0:
        return first, []
    pres = [first]
    z = _activation(cfg.activation, first)
    for layer in range(cfg.layers - 1):
        pres.append(arrays["bb_b"][layer] + z @ arrays["bb_w"][layer])
        z = _activation(cfg.activation, pres[-1])
    return arrays["head_b"] + z @ arrays["head_w"], pres


def new_state(cfg, arrays, g, span):
    """The state ``(B, H)`` after a step of length ``span`` from its heads ``g`` (``cfg``'s
    ``hidden`` units and ``mode``; ``arrays`` holds mode pure's ``amp`` and ``wtau``)."""
    hidden = cfg.hidden
    if cfg.mode == 2:
        amp, wtau = arrays["amp"], arrays["wtau"]
        return -amp * mx.exp(-span * (mx.abs(wtau) + mx.abs(g))) * g + amp
    f1, f2 = mx.tanh(g[:, :hidden]), mx.tanh(g[:, hidden : 2 * hidden])
    s = mx.sigmoid(g[:, 2 * hidden : 3 * hidden] * span + g[:, 3 * hidden :])
    return f1 + s * f2 if cfg.mode == 1 else f1 * (1.0 - s) + s * f2


def forward(cfg, arrays: dict, record: bool = False) -> dict:
    """The forward kernel: the state after every step, ``hs`` ``(T, B, H)``, and with
    ``record`` every step's backbone pre-activations and activations (``pre``, ``acts``, both
    ``(L, T, B, U)``) and heads (``heads`` ``(T, B, KH)``); ``(1,)`` zeros for what is not
    recorded, as the kernel leaves them."""
    h, states, pres, heads = arrays["h0"], [], [], []
    for t in range(arrays["xproj"].shape[0]):
        g, pre = _heads(cfg, arrays, arrays["xproj"][t], h)
        h_new = new_state(cfg, arrays, g, arrays["ts"][t][:, None])
        h = mx.where(arrays["valid"][t][:, None] > 0.5, h_new, h)
        states.append(h)
        pres.append(pre)
        heads.append(g)
    out = {"hs": mx.stack(states)}
    placeholder = mx.zeros((1,))
    out["heads"] = mx.stack(heads) if record else placeholder
    out["pre"] = (
        mx.stack([mx.stack(p) for p in pres], axis=1) if record and cfg.layers else placeholder
    )
    out["acts"] = _activation(cfg.activation, out["pre"]) if record and cfg.layers else placeholder
    return out


def heads_gradient(cfg, arrays, g, span, dht):
    """``(dg, dts, damp, dwtau)`` of one step: the gradients of the heads and per-unit
    partials of the timespan and of mode pure's ``A`` and ``w_tau``."""
    hidden = cfg.hidden
    if cfg.mode == 2:
        amp, wtau = arrays["amp"], arrays["wtau"]
        rate = mx.abs(wtau) + mx.abs(g)
        e = mx.exp(-span * rate)
        du = dht * amp * g * e
        dg = -dht * amp * e + du * span * mx.sign(g)
        return dg, du * rate, dht * (1.0 - e * g), du * span * mx.sign(wtau)
    f1, f2 = mx.tanh(g[:, :hidden]), mx.tanh(g[:, hidden : 2 * hidden])
    gate = g[:, 2 * hidden : 3 * hidden]
    s = mx.sigmoid(gate * span + g[:, 3 * hidden :])
    df1 = dht if cfg.mode == 1 else dht * (1.0 - s)
    ds = dht * f2 if cfg.mode == 1 else dht * (f2 - f1)
    dp = ds * s * (1.0 - s)
    dg = mx.concatenate([df1 * (1 - f1 * f1), dht * s * (1 - f2 * f2), dp * span, dp], axis=-1)
    return dg, dp * gate, None, None


def _backbone_gradient(cfg, arrays, dg, pres):
    """The gradients of the backbone's pre-activations, first layer first (a list of ``(B,
    U)``), from the heads' gradient ``dg`` and the step's pre-activations ``pres`` ``(L, B, U)``."""
    dz = (dg @ arrays["head_w"].T) * _activation_slope(cfg.activation, pres[-1])
    grads = [dz]
    for layer in range(cfg.layers - 1, 0, -1):
        dz = (dz @ arrays["bb_w"][layer - 1].T) * _activation_slope(cfg.activation, pres[layer - 1])
        grads.insert(0, dz)
    return grads


def backward(cfg, arrays: dict) -> dict:
    """The backward kernel: the outputs named in ``BACKWARD_OUTPUTS``
    (:mod:`ncps_mlx.kernels.cfc_source`) from the forward's record, with zeros at padded
    steps, as the kernel leaves them."""
    steps, batch, _ = arrays["xproj"].shape
    dh = zeros = mx.zeros((batch, cfg.hidden))
    rows = {name: [] for name in ("d_first", "d_pre", "d_heads", "dts", "damp", "dwtau")}
    for t in range(steps - 1, -1, -1):
        keep = arrays["valid"][t][:, None] > 0.5
        dht = dh + arrays["dhs"][t]
        g = arrays["heads"][t]
        dg, dts, damp, dwtau = heads_gradient(cfg, arrays, g, arrays["ts"][t][:, None], dht)
        dg = mx.where(keep, dg, 0.0)
        if cfg.layers:
            grads = _backbone_gradient(cfg, arrays, dg, arrays["pre"][:, t])
            rows["d_heads"].append(dg)
            rows["d_pre"].append(mx.stack(grads[1:]) if cfg.layers > 1 else None)
            first = grads[0]
        else:
            first = dg
        rows["d_first"].append(first)
        for name, value in (("dts", dts), ("damp", damp), ("dwtau", dwtau)):
            rows[name].append(None if value is None else mx.where(keep, value, zeros))
        dh = mx.where(keep, first @ arrays["w_rec"].T, dht)
    out = {"dh0": dh}
    for name, values in rows.items():
        if values and values[0] is not None:
            out[name] = mx.stack(values[::-1], axis=1 if name == "d_pre" else 0)
    return out
