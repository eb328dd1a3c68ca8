"""Fused recurrent kernels: a whole sequence of a cell in one GPU launch, forward and backward.

Sequence modules take ``kernel="auto" | "fused" | "reference"`` (None: the global default of
:func:`set_default_kernel`, ``"auto"`` unless changed):

* ``"reference"`` runs the time loop of :class:`~ncps_mlx.sequence.LiquidSequence`, one
  compiled step per time step;
* ``"fused"`` runs the fused kernels and raises ``ValueError`` naming the reason where they
  cannot run (the CPU, an unsupported cell or option, a half-precision model);
* ``"auto"`` takes the fused kernels on a GPU where they are supported and faster (LTCs of
  up to :data:`ncps_mlx.kernels.ltc.AUTO_MAX_NEURONS` neurons, or up to
  :data:`~ncps_mlx.kernels.ltc.AUTO_MAX_NEURONS_WIDE_BATCH` from a batch of
  :data:`~ncps_mlx.kernels.ltc.AUTO_WIDE_BATCH`), else the reference.

Supported now, with timespans, padding masks and an initial state, in float32:

* the dense :class:`~ncps_mlx.cells.CfCCell` in every mode, with any backbone (activations
  ``lecun_tanh``, ``tanh``, ``relu``, ``silu``, ``gelu``; dropout only outside training);
* the wired CfC (:class:`~ncps_mlx.cells.WiredCfCCell`, e.g. ``CfC(16, AutoNCP(64, 8))``) in
  every mode, with its neurons' time scales, for wirings whose backward fits in on-chip
  memory (``4 N + 8 W`` floats, ``W`` the widest layer: up to about 1,000 neurons);
* the :class:`~ncps_mlx.cells.LTCCell` in either synapse layout (the dense one is read as a
  fan-in table of every neuron) with ncps's semi-implicit solver and any ``ode_unfolds`` (no
  fast weights or routing).

Not yet: the explicit LTC solvers, mixed memory, half precision.
"""

from __future__ import annotations

import mlx.core as mx

from ..cells import CfCCell, LTCCell, WiredCfCCell
from . import cfc, ltc, wired_cfc
from .backend import emulate, gpu_backend

__all__ = ["KERNELS", "set_default_kernel", "default_kernel", "check_kernel", "fused_states"]
__all__ += ["emulate", "gpu_backend"]

#: The accepted values of a sequence module's ``kernel`` argument.
KERNELS = ("auto", "fused", "reference")

_default = "auto"


def check_kernel(kernel, name: str = "kernel") -> str | None:
    """Validate a ``kernel`` choice: one of :data:`KERNELS`, or None (the global default)."""
    if kernel is not None and kernel not in KERNELS:
        raise ValueError(f"{name} must be one of {KERNELS} or None, got {kernel!r}")
    return kernel


def set_default_kernel(kernel: str) -> None:
    """Set the kernel choice of every sequence module built with ``kernel=None``."""
    global _default
    if kernel is None:
        raise ValueError(f"kernel must be one of {KERNELS}, got None")
    _default = check_kernel(kernel)


def default_kernel() -> str:
    """The global kernel choice (``"auto"`` unless :func:`set_default_kernel` changed it)."""
    return _default


def _unsupported(module, dtype, backend) -> str | None:
    """Why ``module`` cannot run fused in this call, or None."""
    if backend is None:
        return "the default device is not a GPU (fused kernels run on Metal and CUDA)"
    if dtype != mx.float32:
        return f"dtype {dtype}: the fused kernels compute in float32 (astype(mx.float32))"
    if module.use_mixed:
        return "mixed_memory=True"
    cell = module.rnn_cell
    if type(cell) is CfCCell:
        return cfc.unsupported(cell, module.training)
    if type(cell) is WiredCfCCell:
        return wired_cfc.unsupported(cell)
    if type(cell) is LTCCell:
        return ltc.unsupported(cell)
    return f"no fused kernel for {type(cell).__name__} yet"


def fused_states(module, prepared, state, timespans, valid):
    """The states after every step ``(T, B, N)`` by the fused kernels, or None when
    ``module`` (a :class:`~ncps_mlx.sequence.LiquidSequence`) takes the reference path.

    Raises:
        ValueError: ``kernel="fused"`` on a configuration the fused kernels do not support.
    """
    choice = module.kernel if module.kernel is not None else _default
    if choice == "reference":
        return None
    backend = gpu_backend()
    reason = _unsupported(module, state.dtype, backend)
    if reason is not None:
        if choice == "fused":
            raise ValueError(f"kernel='fused' cannot run this {type(module).__name__}: {reason}")
        return None
    if choice == "auto" and type(module.rnn_cell) is LTCCell:
        if ltc.slower_than_reference(module.rnn_cell, state.shape[0]) is not None:
            return None
    cell = module.rnn_cell
    if type(cell) is CfCCell:
        run = cfc.fused_cfc
    elif type(cell) is WiredCfCCell:
        run = wired_cfc.fused_wired_cfc
    else:
        run = ltc.fused_ltc
    return run(cell, prepared, state, timespans, valid, backend)
