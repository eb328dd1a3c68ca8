"""The fused LTC sequence: every step and solver iteration of an :class:`~ncps_mlx.cells.LTCCell`
(fan-in layout, ncps's semi-implicit solver) in one kernel launch forward and one backward.

:func:`fused_ltc` takes what the reference loop takes (the cell's prepared sensory sums and
:class:`~ncps_mlx.cells.ltc.LTCParams`, the initial potentials, timespans and padding) and
returns the potentials after every step, differentiable with respect to all of them. Forward
and backward are the kernels of :mod:`ncps_mlx.kernels.ltc_source`; per-sequence parameter
gradients are summed over the batch here. The first use of each configuration is checked
against the reference path.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import numpy as np

from ..cells.ltc import LTCCell
from . import ltc_emulation
from .backend import (
    KernelSource,
    SelfCheck,
    carried_states,
    first_vjp_difference,
    launch,
    per_step,
    sequence_function,
)
from .ltc_source import (
    BACKWARD_BODY,
    BACKWARD_INPUTS,
    BACKWARD_OUTPUTS,
    FORWARD_BODY,
    FORWARD_INPUTS,
    HEADER,
)

__all__ = ["LTCKernelConfig", "unsupported", "slower_than_reference", "fused_ltc"]
__all__ += ["AUTO_MAX_NEURONS", "CHECK_TOLERANCE"]

#: On-chip memory of a block: two potential vectors (the smaller limit, Metal's).
SHARED_MEMORY_LIMIT = 32 * 1024

_PRIMALS = FORWARD_INPUTS[:-1]
FORWARD = KernelSource("ncps_ltc_forward", FORWARD_INPUTS, ["vs"], FORWARD_BODY, HEADER)
BACKWARD = KernelSource(
    "ncps_ltc_backward", BACKWARD_INPUTS, BACKWARD_OUTPUTS, BACKWARD_BODY, HEADER
)
_SYNAPSE_FIELDS = ("w_erev", "w", "mu", "sigma")


class LTCKernelConfig(NamedTuple):
    """Compile-time sizes of a fused LTC kernel: neurons, slots per neuron, solver iterations."""

    neurons: int
    slots: int
    unfolds: int

    @classmethod
    def of(cls, cell: LTCCell) -> LTCKernelConfig:
        return cls(cell.num_neurons, cell._fan_in.width, cell.ode_unfolds)

    def template(self) -> list[tuple[str, int]]:
        return [("N", self.neurons), ("K", self.slots), ("UNF", self.unfolds)]

    def threads(self) -> int:
        """Threads per block: one per neuron in whole warps, at most 256 (a larger block asks
        for more registers than a CUDA launch may have: seen at N = 4,096 on an H200)."""
        return min(256, -(-self.neurons // 32) * 32)


def unsupported(cell: LTCCell) -> str | None:
    """Why ``cell`` has no fused kernel, or None if it has one."""
    if cell.solver != "semi_implicit":
        return f"solver={cell.solver!r} (the fused LTC runs ncps's semi_implicit solver)"
    if cell._fan_in is None:
        return "the dense synapse layout (sparse=False; the fused LTC reads fan-in tables)"
    if cell._fast is not None:
        return "fast_weights=True"
    if cell._routing is not None:
        return "routing=True"
    if 8 * cell.num_neurons > SHARED_MEMORY_LIMIT:
        return f"{cell.num_neurons} neurons (at most {SHARED_MEMORY_LIMIT // 8} fit on chip)"
    return None


#: Largest LTC that ``kernel="auto"`` runs fused: one thread per neuron. A block runs one
#: sequence, so a large circuit with a small batch leaves most of the GPU idle; measured on an
#: H200: 64 neurons, B = 32: 20x faster than the step loop; 4,096 neurons, B = 8: 7x slower.
AUTO_MAX_NEURONS = 256


def slower_than_reference(cell: LTCCell) -> str | None:
    """Why ``kernel="auto"`` keeps the step loop for a supported ``cell``, or None."""
    if cell.num_neurons > AUTO_MAX_NEURONS:
        return f"{cell.num_neurons} neurons (auto runs the fused LTC up to {AUTO_MAX_NEURONS})"
    return None


def _fan_out(sources: mx.array, neurons: int) -> tuple[mx.array, mx.array]:
    """For each source neuron, the slots it feeds: ``(out_start (N + 1), out_slots (N * K))``
    as float arrays (CSR over the slots sorted by source)."""
    source_of_slot = np.array(sources).astype(np.int64)
    slots = np.argsort(source_of_slot, kind="stable")
    start = np.searchsorted(source_of_slot[slots], np.arange(neurons + 1))
    return mx.array(start.astype(np.float32)), mx.array(slots.astype(np.float32))


def _run_forward(backend: str, cfg: LTCKernelConfig, arrays: dict) -> mx.array:
    if backend == "emulated":
        return ltc_emulation.forward(cfg, arrays)
    steps, batch, _ = arrays["sens_num"].shape
    arrays = dict(arrays, sizes=mx.array([steps, batch], dtype=mx.int32))
    shapes = {"vs": (steps, batch, cfg.neurons)}
    return launch(backend, FORWARD, cfg.template(), batch, cfg.threads(), arrays, shapes)["vs"]


def _run_backward(backend: str, cfg: LTCKernelConfig, arrays: dict) -> dict:
    if backend == "emulated":
        return ltc_emulation.backward(cfg, arrays)
    steps, batch, n = arrays["sens_num"].shape
    start, slots = _fan_out(arrays["src"], n)
    arrays = dict(
        arrays, sizes=mx.array([steps, batch], dtype=mx.int32), out_start=start, out_slots=slots
    )
    rows, per_sequence = (steps, batch, n), (batch, n)
    shapes = {
        "d_sens_num": rows,
        "d_sens_den": rows,
        "dts": rows,
        "dv0": per_sequence,
        "d_cm": per_sequence,
        "d_gleak": per_sequence,
        "d_leak": per_sequence,
        "d_syn": (batch, 4, n * cfg.slots),
        "traj": (batch, cfg.unfolds + 1, n),
        "work": (batch, 6, n),
        "dsrc": (batch, n * cfg.slots),
    }
    return launch(backend, BACKWARD, cfg.template(), batch, cfg.threads(), arrays, shapes)


_FUNCTIONS: dict[tuple[str, LTCKernelConfig], mx.custom_function] = {}


def _function(backend: str, cfg: LTCKernelConfig) -> mx.custom_function:
    """The custom function ``(sens_num, sens_den, v0, ts, valid, w_erev, ...) -> vs``."""
    key = (backend, cfg)
    if key not in _FUNCTIONS:

        def gradients(arrays, states, cotangent):
            grads = _run_backward(backend, cfg, dict(arrays, vs=states, dvs=cotangent))
            synapses = grads["d_syn"].sum(axis=0)
            return {
                "sens_num": grads["d_sens_num"],
                "sens_den": grads["d_sens_den"],
                "v0": grads["dv0"],
                "ts": grads["dts"].sum(axis=-1),
                "cm": grads["d_cm"].sum(axis=0),
                "gleak": grads["d_gleak"].sum(axis=0),
                "leak": grads["d_leak"].sum(axis=0),
                **dict(zip(_SYNAPSE_FIELDS, synapses, strict=True)),
            }

        _FUNCTIONS[key] = sequence_function(
            _PRIMALS, lambda arrays: _run_forward(backend, cfg, arrays), gradients
        )
    return _FUNCTIONS[key]


def _primals(cell: LTCCell, inputs, v0, timespans, valid, params) -> list:
    """The custom function's inputs from the loop's (see :func:`fused_ltc`)."""
    sens_num, sens_den = inputs
    steps, batch, _ = sens_num.shape
    synapses = params.synapses
    timespans, valid = per_step(timespans, valid, steps, batch)
    arrays = {
        "sens_num": sens_num,
        "sens_den": sens_den,
        "v0": v0,
        "ts": timespans,
        "valid": valid,
        **{name: getattr(synapses, name).reshape(-1) for name in _SYNAPSE_FIELDS},
        "src": synapses.sources.astype(mx.float32),
        "cm": params.cm,
        "gleak": params.gleak,
        "leak": params.leak_current,
        "eps": mx.array([cell.epsilon]),
    }
    return [arrays[name].astype(mx.float32) for name in _PRIMALS]


# ---------------------------------------------------------------------------- entry point
_CHECKS = SelfCheck("LTC")

#: See :data:`ncps_mlx.kernels.cfc.CHECK_TOLERANCE`.
CHECK_TOLERANCE = 2e-2


def _self_check(backend: str, cell: LTCCell, cfg: LTCKernelConfig) -> str | None:
    """Compare the fused path with the cell's own steps on a short random sequence (states,
    and the gradients of the sensory sums and the initial potentials)."""
    keys = mx.random.split(mx.random.key(0), 5)
    steps, batch, n = 3, 2, cfg.neurons
    params = cell.prepare(mx.zeros((1, 1, cell.sensory_size))).params
    sens = [mx.random.uniform(0.0, 1.0, (steps, batch, n), key=k) for k in keys[:2]]
    v0 = mx.random.normal((batch, n), key=keys[2])
    timespans = mx.random.uniform(0.5, 1.5, (steps, batch, 1), key=keys[3])
    valid = mx.array([[True, True], [False, True], [True, True]])[..., None]
    cotangent = mx.random.normal((steps, batch, n), key=keys[4])
    function = _function(backend, cfg)

    def fused(num, den, v):
        return function(*_primals(cell, (num, den), v, timespans, valid, params))

    def reference(num, den, v):  # the cell's own step
        step = lambda t, v: cell.step((num[t], den[t]), params, v, timespans[t])[0]  # noqa: E731
        return carried_states(step, v, valid)

    names = ("states", "numerator gradient", "denominator gradient", "state gradient")
    return first_vjp_difference(fused, reference, [*sens, v0], cotangent, names, CHECK_TOLERANCE)


def fused_ltc(cell: LTCCell, prepared, v0, timespans, valid, backend: str) -> mx.array | None:
    """The potentials after every step, ``(T, B, N)``, by the fused kernels on ``backend``.

    Args:
        cell: An :class:`~ncps_mlx.cells.LTCCell` without an :func:`unsupported` reason.
        prepared: ``cell.prepare(x)`` of the time-major input.
        v0: ``(B, N)`` initial potentials.
        timespans: A float or ``(T, B, 1)``.
        valid: None or ``(T, B, 1)`` bool (False: a padded step, which carries the state).
        backend: ``"cuda"``, ``"metal"`` or ``"emulated"``.

    Returns:
        The potentials, or None if this configuration failed its first-use check.
    """
    cfg = LTCKernelConfig.of(cell)
    if not _CHECKS.passed(cfg, backend, lambda: _self_check(backend, cell, cfg)):
        return None
    primals = _primals(cell, prepared.inputs, v0, timespans, valid, prepared.params)
    return _function(backend, cfg)(*primals)
