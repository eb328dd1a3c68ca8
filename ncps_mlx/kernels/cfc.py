"""The fused CfC sequence: the whole time loop of a :class:`~ncps_mlx.cells.CfCCell` in one
kernel launch forward and one backward, with a custom gradient.

:data:`fused_cfc` takes what the reference loop takes (the cell's
:class:`~ncps_mlx.cells.Prepared` inputs and :class:`~ncps_mlx.cells.cfc.CfCParams`, the initial
state, timespans and padding) and returns the state after every step. Forward, it runs the
kernel of :mod:`ncps_mlx.kernels.cfc_source`; its
``vjp`` runs the backward kernel and turns what it writes into the gradients of every input with
one matrix product per weight. The first use of each configuration on a GPU is checked against
the reference path (:class:`~ncps_mlx.kernels.backend.SelfCheck`).
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx

from ..cells.cfc import CfCCell, CfCParams
from . import cfc_emulation
from .backend import (
    FusedSequence,
    KernelSource,
    check_against_steps,
    first_input_primals,
    launch,
    per_step,
    states_of,
    too_large_for_chip,
)
from .cfc_source import (
    ACTIVATION_CODES,
    BACKWARD_BODY,
    BACKWARD_INPUTS,
    BACKWARD_OUTPUTS,
    FORWARD_BODY,
    FORWARD_INPUTS,
    FORWARD_OUTPUTS,
    HEADER,
    PRIMAL_INPUTS,
)
from .matvec_source import Product, plan_products

__all__ = ["CfCKernelConfig", "unsupported", "fused_cfc", "CHECK_TOLERANCE"]

MODES = {"default": 0, "no_gate": 1, "pure": 2}

#: The inputs of the custom function, in order (``sizes`` is made from the shapes).
_PRIMALS = PRIMAL_INPUTS


class CfCKernelConfig(NamedTuple):
    """Compile-time sizes of a fused CfC kernel (see :mod:`ncps_mlx.kernels.cfc_source`)."""

    hidden: int
    first: int
    units: int
    layers: int
    heads: int
    mode: int
    activation: int

    @classmethod
    def of(cls, cell: CfCCell) -> CfCKernelConfig:
        hidden, layers = cell.hidden_size, cell.backbone_layers
        heads = hidden if cell.mode == "pure" else 4 * hidden
        units = cell.backbone[0].weight.shape[0] if layers else 1
        mode, activation = MODES[cell.mode], ACTIVATION_CODES[cell.backbone_activation]
        return cls(hidden, units if layers else heads, units, layers, heads, mode, activation)

    def threads(self) -> int:
        """Threads per block: twice the widest product's outputs (so a product with fewer
        outputs than threads spreads each over several lanes), in whole warps, at most 1,024."""
        widest = max(self.first, self.units, self.heads)
        return min(1024, max(32, 2 ** (2 * widest - 1).bit_length()))

    def products(self, direction: str) -> list[Product]:
        """The weight products of the ``"forward"`` or ``"backward"`` kernel, with which of
        them keep their weights in registers (see :mod:`~ncps_mlx.kernels.matvec_source`)."""
        shapes = [
            ("FIRST", self.hidden, self.first, 1),
            ("LAYER", self.units, self.units, max(self.layers - 1, 0)),
            ("HEAD", self.units, self.heads, 1 if self.layers else 0),
        ]
        if direction == "backward":
            shapes = [(f"{name}_T", outputs, inputs, n) for name, inputs, outputs, n in shapes]
        return plan_products(shapes, self.threads())

    def template(self, direction: str, record: bool = False) -> list[tuple[str, int]]:
        """The compile-time constants of the ``"forward"`` (``record``: for a backward) or
        ``"backward"`` kernel."""
        names = ("H", "D0", "U", "L", "KH", "MODE", "ACT")
        constants = [*zip(names, self, strict=True), ("ZMAX", max(self.first, self.units))]
        constants += [("NT", self.threads()), ("RECORD", int(record))]
        for product in self.products(direction):
            constants += product.template()
        return constants

    def shared_bytes(self) -> int:
        """On-chip memory of the backward kernel (the larger of the two)."""
        return 4 * (2 * self.heads + 2 * max(self.first, self.units) + self.hidden)


def unsupported(cell, training: bool) -> str | None:
    """Why ``cell`` has no fused kernel in this call, or None if it has one."""
    if type(cell) is not CfCCell:
        return f"no fused kernel for {type(cell).__name__} yet (dense CfCCell only)"
    if training and cell.backbone_dropout > 0.0:
        return "backbone_dropout in training mode (the fused kernel draws no random numbers)"
    return too_large_for_chip(CfCKernelConfig.of(cell).shared_bytes())


# ---------------------------------------------------------------------------- launches
FORWARD = KernelSource("ncps_cfc_forward", FORWARD_INPUTS, FORWARD_OUTPUTS, FORWARD_BODY, HEADER)
BACKWARD = KernelSource(
    "ncps_cfc_backward", BACKWARD_INPUTS, BACKWARD_OUTPUTS, BACKWARD_BODY, HEADER
)


def _launch(backend: str, source: KernelSource, template: list, cfg, arrays: dict, shapes):
    steps, batch, _ = arrays["xproj"].shape
    bb_w = arrays["bb_w"]  # a (1,) placeholder with fewer than two backbone layers
    arrays = dict(
        arrays,
        sizes=mx.array([steps, batch], dtype=mx.int32),
        w_rec_t=mx.contiguous(arrays["w_rec"].T),
        bb_w_t=mx.contiguous(bb_w.transpose(0, 2, 1)) if bb_w.ndim == 3 else bb_w,
        head_w_t=mx.contiguous(arrays["head_w"].T),
    )
    return launch(backend, source, template, batch, cfg.threads(), arrays, shapes)


def _run_forward(backend: str, cfg: CfCKernelConfig, arrays: dict, record: bool = False) -> dict:
    """The forward kernel's outputs (:data:`~ncps_mlx.kernels.cfc_source.FORWARD_OUTPUTS`),
    with ``record`` those a backward needs."""
    if backend == "emulated":
        return cfc_emulation.forward(cfg, arrays, record)
    steps, batch, _ = arrays["xproj"].shape
    rows, units = (steps, batch), cfg.units
    recorded = record and cfg.layers > 0
    shapes = {
        "hs": (*rows, cfg.hidden),
        "pre": (cfg.layers, *rows, units) if recorded else (1,),
        "acts": (cfg.layers, *rows, units) if recorded else (1,),
        "heads": (*rows, cfg.heads) if record else (1,),
    }
    return _launch(backend, FORWARD, cfg.template("forward", record), cfg, arrays, shapes)


def _backward_shapes(cfg: CfCKernelConfig, steps: int, batch: int) -> dict:
    rows, hidden, units = (steps, batch), cfg.hidden, cfg.units
    pure = cfg.mode == MODES["pure"]
    return {
        "d_first": (*rows, cfg.first),
        "d_pre": (cfg.layers - 1, *rows, units) if cfg.layers > 1 else (1,),
        "d_heads": (*rows, cfg.heads) if cfg.layers > 0 else (1,),
        "dh0": (batch, hidden),
        "dts": (*rows, hidden),
        "damp": (*rows, hidden) if pure else (1,),
        "dwtau": (*rows, hidden) if pure else (1,),
    }


def _run_backward(backend: str, cfg: CfCKernelConfig, arrays: dict) -> dict:
    if backend == "emulated":
        return cfc_emulation.backward(cfg, arrays)
    steps, batch, _ = arrays["xproj"].shape
    shapes = _backward_shapes(cfg, steps, batch)
    return _launch(backend, BACKWARD, cfg.template("backward"), cfg, arrays, shapes)


# ---------------------------------------------------------------------------- the custom function
def _weight_gradients(cfg: CfCKernelConfig, arrays: dict, grads: dict) -> dict:
    """Gradients of the weights from the backward kernel's per-step outputs."""
    steps, batch, hidden = arrays["hs"].shape
    rows = steps * batch
    previous = mx.concatenate([arrays["h0"][None], arrays["hs"][:-1]]).reshape(rows, hidden)
    first = grads["d_first"].reshape(rows, cfg.first)
    out = {"w_rec": previous.T @ first}
    if cfg.layers > 1:
        acts = arrays["acts"][:-1].reshape(cfg.layers - 1, rows, cfg.units)
        pre = grads["d_pre"].reshape(cfg.layers - 1, rows, cfg.units)
        out["bb_w"] = acts.transpose(0, 2, 1) @ pre
        out["bb_b"] = pre.sum(axis=1)
    if cfg.layers > 0:
        heads = grads["d_heads"].reshape(rows, cfg.heads)
        out["head_w"] = arrays["acts"][-1].reshape(rows, cfg.units).T @ heads
        out["head_b"] = heads.sum(axis=0)
    if cfg.mode == MODES["pure"]:
        out["amp"] = grads["damp"].sum(axis=(0, 1))
        out["wtau"] = grads["dwtau"].sum(axis=(0, 1))
    return out


def _gradients(backend: str, cfg: CfCKernelConfig, arrays: dict, states, cotangent) -> dict:
    """The VJP: the inputs' gradients by name from the backward kernel's outputs."""
    arrays = dict(arrays, hs=states, dhs=cotangent)
    record = _run_forward(backend, cfg, arrays, record=True)
    arrays = dict(arrays, pre=record["pre"], acts=record["acts"], heads=record["heads"])
    grads = _run_backward(backend, cfg, arrays)
    return {
        "xproj": grads["d_first"],
        "h0": grads["dh0"],
        "ts": grads["dts"].sum(axis=-1),
        **_weight_gradients(cfg, arrays, grads),
    }


def _primals(cfg: CfCKernelConfig, xproj, h0, timespans, valid, params: CfCParams) -> list:
    """The custom function's inputs from the loop's: ``timespans`` a float or ``(T, B, 1)``,
    ``valid`` None or ``(T, B, 1)`` bool; features a configuration lacks get a ``(1,)`` zero."""
    steps, batch, _ = xproj.shape
    unused = mx.zeros((1,))
    backbone, heads = params.backbone or (), params.heads
    timespans, valid = per_step(timespans, valid, steps, batch)
    arrays = {
        "xproj": xproj,
        "h0": h0,
        "ts": timespans,
        "valid": valid,
        "w_rec": params.recurrent_weight,
        "bb_w": mx.stack([layer.weight for layer in backbone]) if backbone else unused,
        "bb_b": mx.stack([layer.bias for layer in backbone]) if backbone else unused,
        "head_w": heads.weight if heads is not None else unused,
        "head_b": heads.bias if heads is not None else unused,
        "amp": params.amplitude.reshape(-1) if params.amplitude is not None else unused,
        "wtau": params.w_tau.reshape(-1) if params.w_tau is not None else unused,
    }
    return [arrays[name].astype(mx.float32) for name in _PRIMALS]


# ---------------------------------------------------------------------------- entry point
#: Largest relative difference from the reference path that the first-use check accepts. It
#: catches a wrong kernel (errors of order 1), not rounding: on CUDA and M5-class Apple GPUs
#: the reference path's float32 matmuls run in TF32 unless ``MLX_ENABLE_TF32=0``, which puts
#: it about 1e-3 away from the kernels' true float32.
CHECK_TOLERANCE = 2e-2


def _self_check(function, cfg: CfCKernelConfig, cell: CfCCell, batch: int) -> str | None:
    """Compare the fused path with the cell's own step on a short sequence (see
    :func:`~ncps_mlx.kernels.backend.check_against_steps`); a mismatch described, or None."""
    params = cell.split_params()[2]

    def fused(inputs, h, timespans, valid):
        return function(*_primals(cfg, inputs[0], h, timespans, valid, params))

    def step(inputs_t, h, timespans_t):
        return cell.advance(inputs_t[0], params, h, timespans_t)

    names = ("states", "input gradient", "state gradient")
    return check_against_steps(fused, step, [cfg.first], cfg.hidden, names, CHECK_TOLERANCE, batch)


#: The fused path of the dense CfC, called as ``fused_cfc(cell, prepared, h0, timespans,
#: valid, backend)`` (a :class:`~ncps_mlx.kernels.backend.FusedSequence`).
fused_cfc = FusedSequence(
    "CfC",
    _PRIMALS,
    CfCKernelConfig.of,
    _self_check,
    first_input_primals(_primals),
    states_of(_run_forward),
    _gradients,
)
