"""The continuous-time RNN (CT-RNN) cell, and the wiring masks of the dense-matrix cells.

:class:`DenseWiredCell` is shared by :class:`CTRNNCell`,
:class:`~ncps_mlx.cells.ctgru.CTGRUCell` and :class:`~ncps_mlx.cells.odelstm.ODELSTMCell`: it
accepts ``units`` as an int or a wiring and builds the constant masks that keep their dense
weight matrices to the wiring's synapses.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._validation import check_int
from ..wirings import Wiring
from .common import Prepared, WiredCell, dense_weight, in_out, wiring_for_units, xavier_uniform
from .fast_math import tanh
from .ode_solvers import check_solver, integrate

__all__ = ["CTRNNCell", "CTRNNParams", "DenseWiredCell", "wiring_masks"]


class CTRNNParams(NamedTuple):
    """Per-call constants of a :class:`CTRNNCell` step (``N`` neurons).

    Attributes:
        recurrent_weight: ``W_h`` ``(N, N)``, ``(in, out)``, masked by the wiring.
        inverse_tau: ``1 / tau`` ``(N,)``.
    """

    recurrent_weight: mx.array
    inverse_tau: mx.array


def wiring_masks(wiring: Wiring, repeat: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The wiring's synapses as ``(out, in)`` masks of dense weights, in the layout of
    ``nn.Linear`` weights.

    Args:
        wiring (Wiring): A built wiring with ``N`` neurons and ``F`` inputs.
        repeat (int): Rows per neuron: row ``j * repeat + k`` is neuron ``j``'s (for cells with
            several pre-activations per neuron, e.g. one per time scale).

    Returns:
        ``(sensory, recurrent)`` float32 masks, ``(N * repeat, F)`` and ``(N * repeat, N)``:
        entry ``[j, i]`` is 1 if the wiring has a synapse from input (neuron) ``i`` to ``j``.
    """
    masks = []
    for (src, dst, _), sources in (
        (wiring.sensory_synapses(), wiring.input_dim),
        (wiring.synapses(), wiring.units),
    ):
        mask = np.zeros((wiring.units, sources), np.float32)
        mask[dst, src] = 1.0
        masks.append(np.repeat(mask, repeat, axis=0))
    return masks[0], masks[1]


class DenseWiredCell(WiredCell):
    """A cell with dense weight matrices masked by a wiring (mixed into the CT cells).

    ``units`` is an int (a :class:`~ncps_mlx.wirings.FullyConnected` wiring: dense weights, all
    neurons are outputs) or a :class:`~ncps_mlx.wirings.Wiring` (outputs: its motor neurons
    ``0..output_dim-1``). Subclasses implement ``refresh_wiring()``, which stores their masks
    as ``_``-prefixed constants (never trained).
    """

    def _attach_units(self, units, input_size: int) -> None:
        input_size = check_int(input_size, "input_size", minimum=1)
        self._attach_wiring(wiring_for_units(units, input_size), input_size, "input_size")

    def _attach_solver(self, solver: str, ode_unfolds: int) -> None:
        self.solver = check_solver(solver)
        self.ode_unfolds = check_int(ode_unfolds, "ode_unfolds", minimum=1)

    def output_of_state(self, state: mx.array) -> mx.array:
        """The step output a state stands for: its motor neurons (``state`` starts with the
        neurons' activities in this cell family, except ``CTGRUCell``, which overrides)."""
        return state[..., : self.motor_size]

    def __call__(self, x: mx.array, state: mx.array, timespans=1.0):
        """One step on ``x`` ``(B, F)`` of length ``timespans`` (float or ``(B, 1)``): returns
        ``(output (B, M), state_new)``."""
        prepared = self.prepare(x[None])
        return self.step(tuple(a[0] for a in prepared.inputs), prepared.params, state, timespans)

    def _extra_repr(self) -> str:
        solver = getattr(self, "solver", None)
        ode = "" if solver is None else f", solver={solver!r}, ode_unfolds={self.ode_unfolds}"
        return (
            f"units={self.num_neurons}, input_size={self.sensory_size}, "
            f"output_size={self.motor_size}, state_size={self.state_size}{ode}"
        )


def masked_weight(layer: nn.Module, mask: mx.array) -> mx.array:
    """A linear layer's (possibly dequantized) weight times its wiring mask."""
    return dense_weight(layer) * mask


class CTRNNCell(DenseWiredCell, nn.Module):
    r"""A continuous-time RNN cell: the CT-RNN baseline of the LTC paper.

    The state :math:`h \in \mathbb{R}^N` follows (Funahashi & Nakamura 1993, in the form that
    Hasani et al. 2021, "Liquid time-constant networks", compare against)

    .. math::

        \frac{dh}{dt} = -\frac{h}{\tau} + \tanh(W_x x_t + W_h h + b)

    with a learnable time constant :math:`\tau = e^{\log\tau} > 0` per neuron (initialised to
    1). One step of length :math:`\Delta t` (the timespan) integrates this ODE with
    ``ode_unfolds`` steps of length :math:`\Delta t / \text{ode\_unfolds}` of ``solver`` (see
    :mod:`~ncps_mlx.cells.ode_solvers`); the input term :math:`W_x x_t + b` is computed for all
    time steps before the loop. The outputs are the first ``output_dim`` (motor) neurons.

    Differences from the reference (``ctrnn_model.py`` of raminmh/liquid_time_constant_networks,
    option ``global_feedback=True``): it fixes :math:`\tau = 1` and an Euler step of 0.1
    whatever the elapsed time; here :math:`\tau` is learned per neuron and the steps follow
    the timespans. Explicit Euler is stable while :math:`\Delta t / (\text{ode\_unfolds}\,
    \tau) < 2`.

    Shapes: inputs ``(B, F)`` per step, state and activities ``(B, N)``, outputs ``(B, M)``.
    Parameters: ``input_map`` (``weight`` ``(N, F)``, ``bias`` ``(N,)``), ``recurrent_map``
    (``weight`` ``(N, N)``), ``log_tau`` ``(N,)``. The wiring masks ``W_x`` with
    ``|sensory_adjacency_matrix|`` and ``W_h`` with ``|adjacency_matrix|`` (constants).

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count ``N`` (fully connected) or a wiring.
        ode_unfolds (int): Solver steps per time step. Default: ``6``.
        solver (str): ``"euler"``, ``"heun"`` or ``"rk4"``. Default: ``"euler"``.
    """

    def __init__(self, input_size: int, units, ode_unfolds: int = 6, solver: str = "euler"):
        super().__init__()
        self._attach_units(units, input_size)
        self._attach_solver(solver, ode_unfolds)
        n, f = self.num_neurons, self.sensory_size
        self.input_map = nn.Linear(f, n)
        self.input_map.weight = xavier_uniform(n, f)
        self.input_map.bias = mx.zeros((n,))
        self.recurrent_map = nn.Linear(n, n, bias=False)
        self.recurrent_map.weight = xavier_uniform(n, n)
        self.log_tau = mx.zeros((n,))
        self.refresh_wiring()

    def refresh_wiring(self) -> None:
        """Re-read the wiring's synapses into the masks (after they changed; shapes kept)."""
        sensory, recurrent = wiring_masks(self.wiring)
        self._sensory_sparsity_mask, self._sparsity_mask = mx.array(sensory), mx.array(recurrent)

    def prepare(self, x: mx.array) -> Prepared:
        """``W_x x + b`` for all steps: ``x`` ``(T, B, F)`` -> ``((T, B, N),)``; the step's
        :class:`CTRNNParams`."""
        w_x = masked_weight(self.input_map, self._sensory_sparsity_mask)
        projected = mx.addmm(self.input_map.bias, x, w_x.T)
        w_h = in_out(masked_weight(self.recurrent_map, self._sparsity_mask))
        return Prepared((projected,), CTRNNParams(w_h, mx.exp(-self.log_tau)))

    def step(self, inputs_t, params: CTRNNParams, h, timespans=1.0):
        """Integrate ``h`` ``(B, N)`` over ``timespans`` (float or ``(B, 1)``); returns
        ``(motor outputs, h_new)``."""
        (projected,) = inputs_t

        def slope(y):
            return tanh(mx.addmm(projected, y, params.recurrent_weight)) - y * params.inverse_tau

        h = integrate(slope, h, timespans, self.ode_unfolds, self.solver)
        return h[..., : self.motor_size], h
