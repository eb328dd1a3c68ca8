"""The fused wired-CfC kernels in plain MLX: the same inputs and outputs as the GPU kernels of
:mod:`ncps_mlx.kernels.wired_cfc_source`, computed with MLX operations (vectorised over the
batch, one step and one layer at a time). The tests on the CPU run it to check the custom
gradient that :mod:`ncps_mlx.kernels.wired_cfc` assembles from the kernels' outputs; on a GPU
the real kernels are compared with the reference path instead.

Each neuron's update and its derivative are the dense CfC emulation's
(:mod:`ncps_mlx.kernels.cfc_emulation`), applied to one layer at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx

from .cfc_emulation import heads_gradient, new_state

__all__ = ["forward", "backward"]


class _Layer(NamedTuple):
    """One layer as the dense emulation's update sees it (its ``cfg``), and where it lies."""

    hidden: int
    mode: int
    start: int  # its neurons [start, stop) of the state
    stop: int
    base: int  # its weight rows: neurons [base, stop)
    weight: int  # the offset of its block in ``w``


def _layers(cfg) -> list[_Layer]:
    offsets, blocks = cfg.offsets(), cfg.weight_offsets()
    return [
        _Layer(stop - start, cfg.mode, start, stop, offsets[max(index - 1, 0)], blocks[index])
        for index, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:], strict=True))
    ]


def _weight(cfg, arrays, layer: _Layer) -> mx.array:
    """Layer ``layer``'s ``(rows, K * N_l)`` block of the flat weights."""
    rows, width = layer.stop - layer.base, cfg.heads * layer.hidden
    return arrays["w"][layer.weight : layer.weight + rows * width].reshape(rows, width)


def _heads(cfg, arrays, layer: _Layer, xproj_t, new, old):
    """The layer's heads ``(B, K * N_l)`` from the new state of the layer before (in ``new``)
    and its own old state (in ``old``), both ``(B, N)``."""
    inputs = mx.concatenate([new[:, layer.base : layer.start], old[:, layer.start : layer.stop]], 1)
    if layer.start == 0:
        first = xproj_t
    else:
        start = cfg.heads * (layer.start - cfg.layer_sizes[0])
        first = arrays["bias"][start : start + cfg.heads * layer.hidden]
    return first + inputs @ _weight(cfg, arrays, layer)


def _neurons(arrays, layer: _Layer, t: int) -> tuple[dict, mx.array]:
    """Mode pure's ``amp``/``wtau`` of the layer's neurons and their spans ``(B, N_l)``."""
    part = slice(layer.start, layer.stop)
    constants = {"amp": arrays["amp"][part], "wtau": arrays["wtau"][part]}
    return constants, arrays["ts"][t][:, None] * arrays["tscale"][part]


def forward(cfg, arrays: dict, record: bool = False) -> dict:
    """The forward kernel: the state after every step, ``hs`` ``(T, B, N)``, and with
    ``record`` every step's heads, ``heads`` ``(T, B, K * N)`` in layer order (zeros at padded
    steps, as the kernel leaves them; a ``(1,)`` zero without ``record``)."""
    h, states, heads = arrays["h0"], [], []
    for t in range(arrays["xproj"].shape[0]):
        new, step_heads = h, []
        for layer in _layers(cfg):
            g = _heads(cfg, arrays, layer, arrays["xproj"][t], new, h)
            constants, span = _neurons(arrays, layer, t)
            state = new_state(layer, constants, g, span)
            new = mx.concatenate([new[:, : layer.start], state, new[:, layer.stop :]], axis=1)
            step_heads.append(g)
        keep = arrays["valid"][t][:, None] > 0.5
        h = mx.where(keep, new, h)
        states.append(h)
        heads.append(mx.where(keep, mx.concatenate(step_heads, axis=1), 0.0))
    return {"hs": mx.stack(states), "heads": mx.stack(heads) if record else mx.zeros((1,))}


def backward(cfg, arrays: dict) -> dict:
    """The backward kernel: the outputs named in ``BACKWARD_OUTPUTS``
    (:mod:`ncps_mlx.kernels.wired_cfc_source`) from the recorded heads, zeros at padded steps
    as the kernel leaves them."""
    layers, k = _layers(cfg), cfg.heads
    pure = cfg.mode == 2
    dold = mx.zeros_like(arrays["h0"])
    rows = {"d_heads": [], "dts": [], "damp": [], "dwtau": []}
    for t in range(arrays["dhs"].shape[0] - 1, -1, -1):
        keep = arrays["valid"][t][:, None] > 0.5
        dnew = [(dold + arrays["dhs"][t])[:, a.start : a.stop] for a in layers]
        found = {name: [None] * len(layers) for name in (*rows, "dold")}
        for index in range(len(layers) - 1, -1, -1):
            layer = layers[index]
            g = arrays["heads"][t][:, k * layer.start : k * layer.stop]
            constants, span = _neurons(arrays, layer, t)
            dg, dts, damp, dwtau = heads_gradient(layer, constants, g, span, dnew[index])
            for name, value in (("d_heads", dg), ("dts", dts), ("damp", damp), ("dwtau", dwtau)):
                found[name][index] = None if value is None else mx.where(keep, value, 0.0)
            dinputs = found["d_heads"][index] @ _weight(cfg, arrays, layer).T
            previous = layer.start - layer.base
            if index > 0:
                dnew[index - 1] = dnew[index - 1] + dinputs[:, :previous]
            found["dold"][index] = dinputs[:, previous:]
        dold = mx.where(keep, mx.concatenate(found["dold"], axis=1), dold + arrays["dhs"][t])
        for name in rows:
            if name == "d_heads" or name == "dts" or pure:
                rows[name].append(mx.concatenate(found[name], axis=1))
    out = {"dh0": dold}
    for name, values in rows.items():
        if values:
            out[name] = mx.stack(values[::-1])
    return out
