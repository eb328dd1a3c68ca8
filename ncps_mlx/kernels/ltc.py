"""The fused LTC sequence: every step and solver iteration of an :class:`~ncps_mlx.cells.LTCCell`
(ncps's semi-implicit solver) in one kernel launch forward and one backward. The kernels read
fan-in tables; the dense layout's ``(sources, targets)`` matrices are read, transposed, as the
table of a :class:`DenseTable`.

:data:`fused_ltc` takes what the reference loop takes (the cell's prepared sensory sums and
:class:`~ncps_mlx.cells.ltc.LTCParams`, the initial potentials, timespans and padding) and
returns the potentials after every step, differentiable with respect to all of them. Forward
and backward are the kernels of :mod:`ncps_mlx.kernels.ltc_source` and
:mod:`ncps_mlx.kernels.ltc_backward_source`, one block per sequence,
or for the backward ``SPLIT`` blocks per sequence where a small batch leaves multiprocessors
idle and the synapse-gradient sums only fit in registers in parts
(:meth:`LTCKernelConfig.split`); per-sequence parameter gradients are summed over the batch
here. The first use of each configuration is checked against the reference path.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import numpy as np

from ..cells.ltc import LTCCell
from . import ltc_emulation
from .backend import (
    CHECK_BATCH,
    SHARED_MEMORY_LIMIT,
    FusedSequence,
    KernelSource,
    check_against_steps,
    launch,
    per_step,
)
from .ltc_backward_source import BACKWARD_INPUTS, BACKWARD_OUTPUTS, backward_body, scratch_floats
from .ltc_source import FORWARD_BODY, FORWARD_INPUTS, HEADER
from .matvec_source import REGISTER_FILE

__all__ = ["LTCKernelConfig", "FanOut", "fan_out", "DenseTable", "kernel_table", "unsupported"]
__all__ += ["slower_than_reference"]
__all__ += ["fused_ltc"]
__all__ += ["AUTO_MAX_NEURONS", "AUTO_MAX_NEURONS_WIDE_BATCH", "AUTO_WIDE_BATCH", "CHECK_TOLERANCE"]

#: Threads per block of the forward and the backward kernel. A CUDA launch fails when threads
#: x registers per thread exceed a multiprocessor's 65,536 registers: the backward may use up
#: to 255 (the most a thread has), the forward up to 128 (nvcc -Xptxas -v, sm_90: 62 for
#: AutoNCP(64, 8), 86 for a dense 64, 127 at N = 4,096; the tests check these). Apple GPUs
#: allow up to 1,024 threads, fewer for register-heavy kernels.
MAX_THREADS = {"forward": 512, "backward": 256}

#: Synapses whose four gradient sums a backward thread keeps in registers (``4 *
#: MAX_REGISTER_SYNAPSES`` sums; beyond, split over blocks or kept in device memory).
MAX_REGISTER_SYNAPSES = 8

#: Neurons per group up to which the kernels read a step's timespan and sensory sums a step
#: ahead (``AHD``; 2 registers a neuron). Beyond, a step's longer work hides their latency,
#: and registers are short: the forward at N = 4,096 (8 a group) uses 127 of its 128.
AHEAD_MAX_NEURONS_PER_GROUP = 4

#: Most blocks of a backward launch split over the synapse-gradient components (``SPLIT``
#: blocks a sequence): 264, two blocks per multiprocessor of an H200 (132). Every block of a
#: split recomputes its whole sequence, which is free only on otherwise idle multiprocessors;
#: a larger batch keeps one block a sequence (and the sums in device memory).
SPLIT_MAX_BLOCKS = 264

#: Registers a thread keeps for the kernels' own work (measured with nvcc -Xptxas -v: 48 at
#: N = 64 forward; the backward, with its gradient sums, up to 160): the rest of its share of
#: the register file may hold its synapse parameters (5 per slot; ``RES``).
RESERVED_REGISTERS = {"forward": 64, "backward": 160}

#: The custom function's inputs: the forward kernel's (``sizes`` is made from the shapes) and
#: the fan-out table, which only the backward reads.
_PRIMALS = [*FORWARD_INPUTS[:-1], "out_start", "out_slots"]
FORWARD = KernelSource("ncps_ltc_forward", FORWARD_INPUTS, ["vs"], FORWARD_BODY, HEADER)
BACKWARDS = {
    on_chip: KernelSource(
        f"ncps_ltc_backward_{'chip' if on_chip else 'memory'}",
        BACKWARD_INPUTS,
        BACKWARD_OUTPUTS,
        backward_body(on_chip),
        HEADER,
    )
    for on_chip in (True, False)
}
_SYNAPSE_FIELDS = ("w_erev", "w", "mu", "sigma")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class LTCKernelConfig(NamedTuple):
    """Sizes of a fused LTC kernel: neurons, slots per neuron (the largest fan-in), solver
    iterations and the largest fan-out (occupied slots per source neuron)."""

    neurons: int
    slots: int
    unfolds: int
    fan_out: int

    @classmethod
    def of(cls, cell: LTCCell) -> LTCKernelConfig:
        table = kernel_table(cell)
        return cls(cell.num_neurons, table.width, cell.ode_unfolds, fan_out(table).most)

    def lanes(self, kernel: str) -> int:
        """Lanes per neuron group: the slots rounded up to a power of two, at most a warp,
        halved until a group per neuron fits in a block."""
        lanes = min(32, 1 << (self.slots - 1).bit_length())
        while lanes > 1 and self.neurons * lanes > MAX_THREADS[kernel]:
            lanes //= 2
        return lanes

    def threads(self, kernel: str) -> int:
        """Threads per block of ``kernel`` (``"forward"`` or ``"backward"``): a group per
        neuron in whole warps, at most ``MAX_THREADS[kernel]``."""
        wanted = _ceil_div(self.neurons * self.lanes(kernel), 32) * 32
        return min(MAX_THREADS[kernel], wanted)

    def owned(self, kernel: str) -> tuple[int, int]:
        """Neurons a group of ``kernel`` owns (``NPG``) and outgoing synapses a lane runs
        (``SPB``)."""
        lanes, threads = self.lanes(kernel), self.threads(kernel)
        return _ceil_div(self.neurons, threads // lanes), _ceil_div(max(self.fan_out, 1), lanes)

    def split(self, batch: int | None) -> int:
        """Blocks a sequence of the backward kernel on ``batch`` sequences (``SPLIT``): 1, or
        the fewest of 2 and 4 whose share of the synapse-gradient sums fits in registers
        where all four do not, if ``batch * SPLIT <= SPLIT_MAX_BLOCKS`` (None: no split)."""
        per_group, outgoing = self.owned("backward")
        fitting = [
            s for s in (1, 2, 4) if per_group * outgoing * 4 // s <= 4 * MAX_REGISTER_SYNAPSES
        ]
        if not fitting or batch is None or batch * fitting[0] > SPLIT_MAX_BLOCKS:
            return 1
        return fitting[0]

    def variant(self, batch: int) -> tuple[int, int]:
        """The backward's ``SPLIT`` on ``batch`` sequences, and a batch for its first-use check
        that gives the same one: :data:`~ncps_mlx.kernels.backend.CHECK_BATCH`, or for a batch
        too large to split, the smallest such batch."""
        split, check = self.split(batch), CHECK_BATCH
        if split != self.split(check):
            check = SPLIT_MAX_BLOCKS // self.split(check) + 1
        return split, check

    def template(self, kernel: str, batch: int | None = None) -> list[tuple[str, int]]:
        """The compile-time constants of ``kernel`` (see :mod:`ncps_mlx.kernels.ltc_source`);
        the backward's depend on the ``batch`` (:meth:`split`)."""
        lanes, threads = self.lanes(kernel), self.threads(kernel)
        per_group, outgoing = self.owned(kernel)
        split = self.split(batch) if kernel == "backward" else 1
        in_registers = int(per_group * outgoing * 4 // split <= 4 * MAX_REGISTER_SYNAPSES)
        return [
            ("N", self.neurons),
            ("K", self.slots),
            ("UNF", self.unfolds),
            ("NT", threads),
            ("G", lanes),
            ("NPG", per_group),
            ("SPL", _ceil_div(self.slots, lanes)),
            ("SPB", outgoing),
            ("ACC", in_registers),
            ("RES", int(self.resident(kernel))),
            ("SPLIT", split),
            ("AHD", int(self.ahead(kernel))),
        ]

    def _spare_registers(self, kernel: str) -> int:
        """A thread's share of the register file less ``RESERVED_REGISTERS``."""
        return REGISTER_FILE // self.threads(kernel) - RESERVED_REGISTERS[kernel]

    def _synapse_registers(self, kernel: str) -> int:
        """Registers of a thread's synapse slots' parameters, 5 a slot."""
        return 5 * self.owned(kernel)[0] * _ceil_div(self.slots, self.lanes(kernel))

    def resident(self, kernel: str) -> bool:
        """Whether ``kernel``'s threads keep their synapse slots' parameters in registers
        (within their spare registers)."""
        return self._synapse_registers(kernel) <= self._spare_registers(kernel)

    def ahead(self, kernel: str) -> bool:
        """Whether ``kernel``'s threads read a step's inputs a step ahead (``AHD``): for at
        most ``AHEAD_MAX_NEURONS_PER_GROUP`` neurons a group, and only where their registers
        (2 a neuron and 2) fit in the spare registers beside resident synapse parameters."""
        per_group = self.owned(kernel)[0]
        used = 2 * per_group + 2
        if self.resident(kernel):
            used += self._synapse_registers(kernel)
        return per_group <= AHEAD_MAX_NEURONS_PER_GROUP and used <= self._spare_registers(kernel)

    def scratch_on_chip(self) -> bool:
        """Whether the backward kernel's scratch fits in on-chip memory."""
        return 4 * scratch_floats(self.neurons, self.unfolds) <= SHARED_MEMORY_LIMIT


class FanOut(NamedTuple):
    """The occupied slots of a fan-in table grouped by source neuron (CSR, as floats):
    ``start`` ``(N + 1)``, ``slots`` ``(E,)``, and the largest count ``most``."""

    start: mx.array
    slots: mx.array
    most: int


_FAN_OUTS: dict[int, tuple[object, FanOut]] = {}


class DenseTable(NamedTuple):
    """The dense layout seen as a fan-in table: every neuron a source of every neuron, target-
    major (``sources`` ``(N * N,)``), occupied where the wiring has a synapse (``valid``
    ``(N, N)``, targets by sources). The dense parameters transposed are its slot values."""

    sources: mx.array
    valid: mx.array

    @property
    def width(self) -> int:
        return self.valid.shape[-1]


_DENSE_TABLES: dict[int, tuple[mx.array, DenseTable]] = {}


def kernel_table(cell: LTCCell):
    """The fan-in table the kernels read: the cell's own, or a :class:`DenseTable` for the
    dense layout (kept per mask)."""
    if cell._fan_in is not None:
        return cell._fan_in
    mask = cell._sparsity_mask
    kept = _DENSE_TABLES.get(id(mask))
    if kept is None or kept[0] is not mask:
        n = cell.num_neurons
        sources = mx.array(np.tile(np.arange(n, dtype=np.int32), n))
        kept = (mask, DenseTable(sources, (mask.T != 0).astype(mx.float32)))
        _DENSE_TABLES[id(mask)] = kept
    return kept[1]


def fan_out(table) -> FanOut:
    """The :class:`FanOut` of a :class:`~ncps_mlx.cells.fan_in.FanInTable` or a
    :class:`DenseTable` (kept per table)."""
    kept = _FAN_OUTS.get(id(table.sources))
    if kept is not None and kept[0] is table.sources:
        return kept[1]
    neurons = table.valid.shape[0]
    occupied = np.flatnonzero(np.array(table.valid).reshape(-1) > 0)
    source_of_slot = np.array(table.sources).astype(np.int64)[occupied]
    order = np.argsort(source_of_slot, kind="stable")
    counts = np.bincount(source_of_slot, minlength=neurons)
    start = np.concatenate(([0], np.cumsum(counts)))
    slots = occupied[order] if occupied.size else np.zeros(1, np.int64)
    result = FanOut(
        mx.array(start.astype(np.float32)),
        mx.array(slots.astype(np.float32)),
        int(counts.max(initial=0)),
    )
    _FAN_OUTS[id(table.sources)] = (table.sources, result)
    return result


def unsupported(cell: LTCCell) -> str | None:
    """Why ``cell`` has no fused kernel, or None if it has one."""
    beyond = cell.beyond_ncps()
    if beyond is not None:
        return f"{beyond}: the fused LTC runs ncps's cell"
    if 8 * cell.num_neurons > SHARED_MEMORY_LIMIT:
        return f"{cell.num_neurons} neurons (at most {SHARED_MEMORY_LIMIT // 8} fit on chip)"
    return None


#: Largest LTC that ``kernel="auto"`` runs fused at any batch. A block runs one sequence, so
#: a large circuit with a small batch leaves most of the GPU idle (see the Performance page).
AUTO_MAX_NEURONS = 256

#: Larger LTCs, up to :data:`AUTO_MAX_NEURONS_WIDE_BATCH` neurons, run fused under ``"auto"``
#: from a batch of :data:`AUTO_WIDE_BATCH` sequences. Measured on an H200: 1,024 neurons at
#: B = 32 took 0.87x the loop's time forward and 0.56x per train step; 4,096 neurons at B = 8,
#: 4x forward and 2x per train step.
AUTO_MAX_NEURONS_WIDE_BATCH = 1024

#: See :data:`AUTO_MAX_NEURONS_WIDE_BATCH`.
AUTO_WIDE_BATCH = 32


def slower_than_reference(cell: LTCCell, batch: int) -> str | None:
    """Why ``kernel="auto"`` keeps the step loop for a supported ``cell`` on ``batch``
    sequences, or None."""
    neurons = cell.num_neurons
    if neurons <= AUTO_MAX_NEURONS:
        return None
    if neurons <= AUTO_MAX_NEURONS_WIDE_BATCH and batch >= AUTO_WIDE_BATCH:
        return None
    return (
        f"{neurons} neurons at a batch of {batch} (auto runs the fused LTC up to "
        f"{AUTO_MAX_NEURONS} neurons, or {AUTO_MAX_NEURONS_WIDE_BATCH} from a batch of "
        f"{AUTO_WIDE_BATCH})"
    )


def _run_forward(backend: str, cfg: LTCKernelConfig, arrays: dict) -> mx.array:
    if backend == "emulated":
        return ltc_emulation.forward(cfg, arrays)
    steps, batch, _ = arrays["sens_num"].shape
    arrays = dict(arrays, sizes=mx.array([steps, batch], dtype=mx.int32))
    shapes = {"vs": (steps, batch, cfg.neurons)}
    template, threads = cfg.template("forward"), cfg.threads("forward")
    return launch(backend, FORWARD, template, batch, threads, arrays, shapes)["vs"]


def _run_backward(backend: str, cfg: LTCKernelConfig, arrays: dict) -> dict:
    if backend == "emulated":
        return ltc_emulation.backward(cfg, arrays)
    steps, batch, n = arrays["sens_num"].shape
    arrays = dict(arrays, sizes=mx.array([steps, batch], dtype=mx.int32))
    rows, per_sequence = (steps, batch, n), (batch, n)
    on_chip = cfg.scratch_on_chip()
    shapes = {
        "d_sens_num": rows,
        "d_sens_den": rows,
        "dts": rows,
        "dv0": per_sequence,
        "d_cm": per_sequence,
        "d_gleak": per_sequence,
        "d_leak": per_sequence,
        "d_syn": (batch, 4, n * cfg.slots),
    }
    split = cfg.split(batch)
    blocks = batch * split  # a sequence's blocks share out the synapse gradients
    shapes["scratch"] = (1,) if on_chip else (blocks, scratch_floats(n, cfg.unfolds))
    template, threads = cfg.template("backward", batch), cfg.threads("backward")
    return launch(backend, BACKWARDS[on_chip], template, blocks, threads, arrays, shapes)


def _gradients(backend: str, cfg: LTCKernelConfig, arrays: dict, states, cotangent) -> dict:
    """The VJP: the inputs' gradients by name from the backward kernel's per-sequence
    outputs (summed over the batch here)."""
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


def _primals(cell: LTCCell, inputs, v0, timespans, valid, params) -> list:
    """The custom function's inputs from the loop's (see :data:`fused_ltc`)."""
    sens_num, sens_den = inputs
    steps, batch, _ = sens_num.shape
    synapses = params.synapses
    table = kernel_table(cell)
    outgoing = fan_out(table)
    if synapses.sources is None:  # the dense layout: (sources, targets) matrices as tables
        synapses = synapses._replace(
            **{name: getattr(synapses, name).T for name in _SYNAPSE_FIELDS}
        )
    timespans, valid = per_step(timespans, valid, steps, batch)
    arrays = {
        "sens_num": sens_num,
        "sens_den": sens_den,
        "v0": v0,
        "ts": timespans,
        "valid": valid,
        **{name: getattr(synapses, name).reshape(-1) for name in _SYNAPSE_FIELDS},
        "src": table.sources.astype(mx.float32),
        "cm": params.cm,
        "gleak": params.gleak,
        "leak": params.leak_current,
        "eps": mx.array([cell.epsilon]),
        "out_start": outgoing.start,
        "out_slots": outgoing.slots,
    }
    return [arrays[name].astype(mx.float32) for name in _PRIMALS]


# ---------------------------------------------------------------------------- entry point
#: See :data:`ncps_mlx.kernels.cfc.CHECK_TOLERANCE`.
CHECK_TOLERANCE = 2e-2


def _self_check(function, cfg: LTCKernelConfig, cell: LTCCell, batch: int) -> str | None:
    """Compare the fused path with the cell's own steps on a short sequence (see
    :func:`~ncps_mlx.kernels.backend.check_against_steps`; the inputs are the sensory sums)."""
    params = cell.prepare(mx.zeros((1, 1, cell.sensory_size))).params

    def fused(inputs, v, timespans, valid):
        return function(*_primals(cell, inputs, v, timespans, valid, params))

    def step(inputs_t, v, timespans_t):
        return cell.step(tuple(inputs_t), params, v, timespans_t)[0]

    n = cfg.neurons
    names = ("states", "numerator gradient", "denominator gradient", "state gradient")
    return check_against_steps(fused, step, [n, n], n, names, CHECK_TOLERANCE, batch)


#: The fused path of the LTC, called as ``fused_ltc(cell, prepared, v0, timespans, valid,
#: backend)`` for the potentials after every step (a
#: :class:`~ncps_mlx.kernels.backend.FusedSequence`).
fused_ltc = FusedSequence(
    "LTC",
    _PRIMALS,
    LTCKernelConfig.of,
    _self_check,
    lambda cell, cfg, prepared, v0, timespans, valid: _primals(
        cell, prepared.inputs, v0, timespans, valid, prepared.params
    ),
    _run_forward,
    _gradients,
    lambda cfg, batch: cfg.variant(batch),
)
