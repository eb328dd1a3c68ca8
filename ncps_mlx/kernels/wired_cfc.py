"""The fused wired CfC: the whole time loop of a :class:`~ncps_mlx.cells.WiredCfCCell` (every
layer of its wiring) in one kernel launch forward and one backward, with a custom gradient.

:data:`fused_wired_cfc` takes what the reference loop takes (layer 0's input projection and the
cell's :class:`~ncps_mlx.cells.wired_cfc.WiredCfCParams`, whose weights are already masked by
the wiring, the initial state, timespans and padding) and returns the state after every step.
Forward, it runs the kernel of :mod:`ncps_mlx.kernels.wired_cfc_source`; its ``vjp`` runs the
backward kernel and turns the heads' gradients it writes into those of every weight with one
matrix product per layer. The first use of each configuration on a GPU is checked against the
cell's own step (:class:`~ncps_mlx.kernels.backend.SelfCheck`).
"""

from __future__ import annotations

from itertools import accumulate
from typing import NamedTuple

import mlx.core as mx

from ..cells.wired_cfc import WiredCfCCell, WiredCfCParams
from . import wired_cfc_emulation
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
from .cfc import CHECK_TOLERANCE, MODES
from .matvec_source import REGISTER_FILE, REGISTER_RESERVE
from .wired_cfc_source import (
    BACKWARD_BODY,
    BACKWARD_INPUTS,
    BACKWARD_OUTPUTS,
    FORWARD_BODY,
    FORWARD_INPUTS,
    FORWARD_OUTPUTS,
    HEADER,
    PRIMAL_INPUTS,
)

__all__ = ["WiredCfCKernelConfig", "unsupported", "fused_wired_cfc"]
__all__ += ["FORWARD_THREADS", "MAX_FORWARD_THREADS"]

#: The inputs of the custom function, in order (``sizes`` is made from the configuration).
_PRIMALS = PRIMAL_INPUTS

#: The forward kernel's target threads per block. Lanes per neuron are doubled while the
#: block stays within it (512 for 64 neurons, 8 lanes each).
FORWARD_THREADS = 512

#: The most threads a forward block has (CUDA's and Apple GPUs' limit per block).
MAX_FORWARD_THREADS = 1024

#: Registers the forward needs per neuron a thread runs, besides its weights: its layer's place,
#: constants and the prefetched inputs of the next tick (nvcc -Xptxas -v, sm_90).
FORWARD_RESERVE_PER_NEURON = 24


class WiredCfCKernelConfig(NamedTuple):
    """A fused wired CfC: its layers' widths, in layer order, and its mode (see ``MODES``)."""

    layer_sizes: tuple[int, ...]
    mode: int

    @classmethod
    def of(cls, cell: WiredCfCCell) -> WiredCfCKernelConfig:
        return cls(tuple(int(size) for size in cell.layer_sizes), MODES[cell.mode])

    @property
    def heads(self) -> int:
        """``K``, the heads of each neuron: 4 (ff1, ff2, time_a, time_b), 1 in mode pure."""
        return 1 if self.mode == MODES["pure"] else 4

    @property
    def neurons(self) -> int:
        return sum(self.layer_sizes)

    def offsets(self) -> list[int]:
        """Where each layer starts in the state, and the state size: ``off_0 .. off_L``."""
        return [0, *accumulate(self.layer_sizes)]

    def rows(self) -> list[int]:
        """Each layer's weight rows: its own neurons, and the previous layer's (layers >= 1)."""
        sizes = self.layer_sizes
        return [size + (sizes[i - 1] if i else 0) for i, size in enumerate(sizes)]

    def weight_offsets(self) -> list[int]:
        """Where each layer's ``(rows_l, K * N_l)`` block starts in the flat weights."""
        blocks = [
            rows * self.heads * size
            for rows, size in zip(self.rows(), self.layer_sizes, strict=True)
        ]
        return [0, *accumulate(blocks)][:-1]

    def _widest(self) -> int:
        return max(self.heads * max(self.layer_sizes), *self.rows())

    # The forward kernel: a group of ``LN`` lanes per neuron, every layer at once.
    def _lanes(self, threads: int) -> int:
        lanes, rows = 1, max(self.rows())
        while lanes < 32 and lanes < rows and 2 * lanes * self.neurons <= threads:
            lanes *= 2
        return lanes

    def _forward_fits(self, lanes: int) -> bool:
        threads = min(MAX_FORWARD_THREADS, -(-lanes * self.neurons // 32) * 32)
        per_group = -(-self.neurons // (threads // lanes))
        registers = per_group * self.heads * -(-max(self.rows()) // lanes)
        reserve = REGISTER_RESERVE + FORWARD_RESERVE_PER_NEURON * per_group
        return registers <= REGISTER_FILE // threads - reserve

    def lanes(self) -> int:
        """``LN``: the forward's lanes per neuron, a power of two up to a warp and no more
        than the widest layer's weight rows need: as many as :data:`FORWARD_THREADS` threads
        give every neuron, or, where the weights would not fit in registers anyway (they
        stream from memory), as many as :data:`MAX_FORWARD_THREADS` give."""
        lanes = self._lanes(FORWARD_THREADS)
        return lanes if self._forward_fits(lanes) else self._lanes(MAX_FORWARD_THREADS)

    def forward_threads(self) -> int:
        """The forward's threads per block: a group per neuron, in whole warps, at most
        :data:`MAX_FORWARD_THREADS` (then a group runs several neurons)."""
        return min(MAX_FORWARD_THREADS, -(-self.lanes() * self.neurons // 32) * 32)

    def neurons_per_group(self) -> int:
        """``NPG``: the neurons each lane group of the forward runs."""
        return -(-self.neurons // (self.forward_threads() // self.lanes()))

    # The backward kernel: one layer at a time, each product over the whole block.
    def resident_threads(self) -> int:
        """The backward's threads with resident weights: twice the widest product's outputs
        (a layer's heads or weight rows), a power of two, at most 1,024."""
        return min(1024, max(32, 2 ** (2 * self._widest() - 1).bit_length()))

    def columns(self, direction: str) -> int:
        """``CMAX``: the weights a thread keeps in registers per head and neuron
        (``"forward"``) or per layer (``"backward"``, the transposed products, with the lanes
        per output of the kernel's ``_layer_matvec``)."""
        if direction == "forward":
            return -(-max(self.rows()) // self.lanes())
        threads, widths = self.resident_threads(), []
        for rows, size in zip(self.rows(), self.layer_sizes, strict=True):
            outputs = rows
            lanes = 1
            while lanes < 32 and outputs * lanes * 2 <= threads:
                lanes *= 2
            widths.append(-(-self.heads * size // lanes))
        return max(widths)

    def resident(self, direction: str) -> bool:
        """Whether ``direction``'s kernel keeps its weights in registers, within a thread's
        share of the register file less what the kernel needs for itself."""
        if direction == "forward":
            return self._forward_fits(self.lanes())
        threads = self.resident_threads()
        registers = len(self.layer_sizes) * self.columns("backward")
        budget = REGISTER_FILE // threads - REGISTER_RESERVE
        return self._widest() <= threads and registers <= budget

    def threads(self, direction: str) -> int:
        """Threads per block of ``direction``'s kernel. Backward: :meth:`resident_threads`
        with resident weights; else 8 per output of the widest product (see
        :func:`~ncps_mlx.kernels.matvec_source.block_matvec`), in whole warps, at most 1,024."""
        if direction == "forward":
            return self.forward_threads()
        if self.resident("backward"):
            return self.resident_threads()
        return min(1024, -(-8 * self._widest() // 32) * 32)

    def template(self, direction: str, record: bool = False) -> list[tuple[str, int]]:
        """The compile-time constants of the ``"forward"`` (``record``: for a backward) or
        ``"backward"`` kernel."""
        sizes, resident = self.layer_sizes, self.resident(direction)
        constants = {
            "N": sum(sizes),
            "L": len(sizes),
            "K": self.heads,
            "MODE": self.mode,
            "NT": self.threads(direction),
            "RES": int(resident),
            "CMAX": self.columns(direction) if resident or direction == "forward" else 1,
        }
        if direction == "forward":
            constants |= {"LN": self.lanes(), "NPG": self.neurons_per_group(), "RECORD": record}
        else:
            constants["NMAX"] = max(sizes)
        return [(name, int(value)) for name, value in constants.items()]

    def shared_bytes(self) -> int:
        """On-chip memory of the backward kernel (the larger of the two): two state vectors
        and two of the widest layer's heads."""
        return 4 * (2 * self.neurons + 2 * self.heads * max(self.layer_sizes))


def unsupported(cell) -> str | None:
    """Why ``cell`` has no fused wired-CfC kernel, or None if it has one."""
    if type(cell) is not WiredCfCCell:
        return f"no fused wired-CfC kernel for {type(cell).__name__}"
    return too_large_for_chip(WiredCfCKernelConfig.of(cell).shared_bytes())


# ---------------------------------------------------------------------------- launches
FORWARD = KernelSource(
    "ncps_wired_cfc_forward", FORWARD_INPUTS, FORWARD_OUTPUTS, FORWARD_BODY, HEADER
)
BACKWARD = KernelSource(
    "ncps_wired_cfc_backward", BACKWARD_INPUTS, BACKWARD_OUTPUTS, BACKWARD_BODY, HEADER
)


def _launch(backend: str, direction: str, cfg, arrays: dict, shapes: dict, record=False):
    steps, batch, _ = arrays["xproj"].shape
    layout = [steps, batch, *cfg.offsets(), *cfg.weight_offsets()]
    sizes = mx.array(layout, dtype=mx.int32)
    streamed = direction == "forward" and not cfg.resident("forward")
    w_t = _transposed_blocks(cfg, arrays["w"]) if streamed else mx.zeros((1,))
    source = FORWARD if direction == "forward" else BACKWARD
    template, threads = cfg.template(direction, record), cfg.threads(direction)
    return launch(
        backend, source, template, batch, threads, dict(arrays, sizes=sizes, w_t=w_t), shapes
    )


def _run_forward(backend: str, cfg: WiredCfCKernelConfig, arrays: dict, record=False) -> dict:
    """The forward kernel's outputs (``FORWARD_OUTPUTS`` of
    :mod:`~ncps_mlx.kernels.wired_cfc_source`), with ``record`` the heads a backward needs."""
    if backend == "emulated":
        return wired_cfc_emulation.forward(cfg, arrays, record)
    steps, batch, _ = arrays["xproj"].shape
    shapes = {
        "hs": (steps, batch, cfg.neurons),
        "heads": (steps, batch, cfg.heads * cfg.neurons) if record else (1,),
    }
    return _launch(backend, "forward", cfg, arrays, shapes, record)


def _transposed_blocks(cfg: WiredCfCKernelConfig, w: mx.array) -> mx.array:
    """The flat weights with every layer's block transposed in place, ``(K * N_l, rows_l)``."""
    blocks, starts = [], cfg.weight_offsets()
    for start, rows, size in zip(starts, cfg.rows(), cfg.layer_sizes, strict=True):
        width = cfg.heads * size
        blocks.append(w[start : start + rows * width].reshape(rows, width).T.reshape(-1))
    return mx.concatenate(blocks)


def _run_backward(backend: str, cfg: WiredCfCKernelConfig, arrays: dict) -> dict:
    if backend == "emulated":
        return wired_cfc_emulation.backward(cfg, arrays)
    steps, batch, _ = arrays["xproj"].shape
    rows, neurons = (steps, batch), cfg.neurons
    pure = cfg.mode == MODES["pure"]
    shapes = {
        "d_heads": (*rows, cfg.heads * neurons),
        "dh0": (batch, neurons),
        "dts": (*rows, neurons),
        "damp": (*rows, neurons) if pure else (1,),
        "dwtau": (*rows, neurons) if pure else (1,),
    }
    return _launch(backend, "backward", cfg, arrays, shapes)


# ---------------------------------------------------------------------------- the custom function
def _weight_gradients(cfg: WiredCfCKernelConfig, arrays: dict, d_heads: mx.array) -> dict:
    """Gradients of the weight blocks and biases: layer ``l``'s block is its inputs (the new
    state of layer ``l - 1``, its own old state) over all ``(t, b)``, transposed, times its
    heads' gradients."""
    steps, batch, neurons = arrays["hs"].shape
    count, k = steps * batch, cfg.heads
    new = arrays["hs"].reshape(count, neurons)
    old = mx.concatenate([arrays["h0"][None], arrays["hs"][:-1]]).reshape(count, neurons)
    d_heads = d_heads.reshape(count, k * neurons)
    offsets, blocks, biases = cfg.offsets(), [], []
    for index, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
        base = offsets[index - 1] if index else start
        inputs = mx.concatenate([new[:, base:start], old[:, start:stop]], axis=1)
        heads = d_heads[:, k * start : k * stop]
        blocks.append((inputs.T @ heads).reshape(-1))
        if index:
            biases.append(heads.sum(axis=0))
    return {"w": mx.concatenate(blocks), **({"bias": mx.concatenate(biases)} if biases else {})}


def _gradients(backend: str, cfg: WiredCfCKernelConfig, arrays: dict, states, cotangent) -> dict:
    """The VJP: the inputs' gradients by name from the backward kernel's outputs."""
    arrays = dict(arrays, hs=states, dhs=cotangent)
    arrays["heads"] = _run_forward(backend, cfg, arrays, record=True)["heads"]
    grads = _run_backward(backend, cfg, arrays)
    out = {
        "xproj": grads["d_heads"][..., : cfg.heads * cfg.layer_sizes[0]],
        "h0": grads["dh0"],
        "ts": (grads["dts"] * arrays["tscale"]).sum(axis=-1),
        **_weight_gradients(cfg, arrays, grads["d_heads"]),
    }
    if cfg.mode == MODES["pure"]:
        out["amp"] = grads["damp"].sum(axis=(0, 1))
        out["wtau"] = grads["dwtau"].sum(axis=(0, 1))
    return out


def _primals(cfg, xproj, h0, timespans, valid, params: WiredCfCParams) -> list:
    """The custom function's inputs from the loop's: ``timespans`` a float or ``(T, B, 1)``,
    ``valid`` None or ``(T, B, 1)`` bool; features a configuration lacks get a ``(1,)`` zero."""
    steps, batch, _ = xproj.shape
    unused = mx.zeros((1,))
    layers = params.layers
    blocks = [layers[0].cell.recurrent_weight]
    blocks += [mx.concatenate([p.input_map.weight, p.cell.recurrent_weight]) for p in layers[1:]]
    scales = [
        mx.ones((size,)) if p.timespan_scale is None else p.timespan_scale.reshape(-1)
        for p, size in zip(layers, cfg.layer_sizes, strict=True)
    ]
    pure = cfg.mode == MODES["pure"]
    timespans, valid = per_step(timespans, valid, steps, batch)
    arrays = {
        "xproj": xproj,
        "h0": h0,
        "ts": timespans,
        "valid": valid,
        "w": mx.concatenate([block.reshape(-1) for block in blocks]),
        "bias": mx.concatenate([p.input_map.bias for p in layers[1:]]) if layers[1:] else unused,
        "tscale": mx.concatenate(scales),
        "amp": mx.concatenate([p.cell.amplitude.reshape(-1) for p in layers]) if pure else unused,
        "wtau": mx.concatenate([p.cell.w_tau.reshape(-1) for p in layers]) if pure else unused,
    }
    return [arrays[name].astype(mx.float32) for name in _PRIMALS]


# ---------------------------------------------------------------------------- entry point


def _self_check(function, cfg, cell: WiredCfCCell, batch: int) -> str | None:
    """Compare the fused path with the cell's own step on a short sequence (see
    :func:`~ncps_mlx.kernels.backend.check_against_steps`); a mismatch described, or None."""
    params = cell.prepare(mx.zeros((1, 1, cell.layers[0].input_size))).params

    def fused(inputs, h, timespans, valid):
        return function(*_primals(cfg, inputs[0], h, timespans, valid, params))

    def step(inputs_t, h, timespans_t):
        return cell.step(tuple(inputs_t), params, h, timespans_t)[1]

    widths, names = [cfg.heads * cfg.layer_sizes[0]], ("states", "input gradient", "state gradient")
    return check_against_steps(fused, step, widths, cfg.neurons, names, CHECK_TOLERANCE, batch)


#: The fused path of the wired CfC, called as ``fused_wired_cfc(cell, prepared, h0,
#: timespans, valid, backend)`` for the states in layer order (a
#: :class:`~ncps_mlx.kernels.backend.FusedSequence`).
fused_wired_cfc = FusedSequence(
    "wired CfC",
    _PRIMALS,
    WiredCfCKernelConfig.of,
    _self_check,
    first_input_primals(_primals),
    states_of(_run_forward),
    _gradients,
)
