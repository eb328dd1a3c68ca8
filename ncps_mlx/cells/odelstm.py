"""The ODE-LSTM cell of Lechner & Hasani 2020."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .common import DenseParams, Prepared, in_out
from .ctrnn import DenseWiredCell, masked_weight, wiring_masks
from .fast_math import tanh
from .lstm import LSTMCell, LSTMParams
from .ode_solvers import integrate

__all__ = ["ODELSTMCell", "ODELSTMParams"]


class ODELSTMParams(NamedTuple):
    """Per-call constants of an :class:`ODELSTMCell` step (``N`` neurons).

    Attributes:
        lstm: The LSTM update's :class:`~ncps_mlx.cells.lstm.LSTMParams`, its ``(N, 4N)``
            recurrent weight masked by the wiring.
        ode_hidden: ``f_node.0``, the ODE's hidden layer ``W_1``, ``b_1``: ``(N, N)``
            (``(in, out)``, masked) and ``(N,)``.
        ode_output: ``f_node.1``, the ODE's output layer ``W_2``, ``b_2``: same shapes.
    """

    lstm: LSTMParams
    ode_hidden: DenseParams
    ode_output: DenseParams


class ODELSTMCell(DenseWiredCell, nn.Module):
    r"""An `ODE-LSTM <https://arxiv.org/abs/2006.04418>`_ cell ("Learning long-term dependencies
    in irregularly-sampled time series", Lechner & Hasani 2020).

    An LSTM update of the memory :math:`c` and output :math:`h`, then a neural ODE that evolves
    :math:`h` (not :math:`c`) over the elapsed time :math:`\Delta t`:

    .. math::

        i, g_i, g_f, g_o &= \text{split}_4(W_x x_t + b + W_h h_{t-1}) \\
        c_t &= c_{t-1} \sigma(g_f + 1) + \tanh(i) \sigma(g_i), \qquad
        \tilde h = \tanh(c_t) \sigma(g_o) \\
        h_t &= \text{ODESolve}\Bigl(\frac{dh}{dt} = f_\theta(h),\ h(0) = \tilde h,\
            \Delta t\Bigr), \qquad f_\theta(h) = W_2 \tanh(W_1 h + b_1) + b_2

    The ODE is solved by ``ode_unfolds`` steps of length :math:`\Delta t / \text{ode\_unfolds}`
    of a fixed-step ``solver`` (:mod:`~ncps_mlx.cells.ode_solvers`), by default 3 RK4 steps as
    ``fixed_rk4`` in mlech26l/ode-lstms (``torch_node_cell.py``). The LSTM is
    :class:`~ncps_mlx.cells.LSTMCell` (ncps's parameterisation, forget-gate bias +1; the
    reference uses ``torch.nn.LSTMCell``); its input term is computed for all steps before the
    loop. A step costs ``1 + 2 * evaluations`` matmuls of ``(B, N)`` by ``(N, ·)`` (RK4: 4
    evaluations per solver step).

    Shapes: inputs ``(B, F)`` per step; the state concatenates ``h`` and ``c``, ``(B, 2N)``
    (``state_size = 2N``: pass ``hx = [h, c]``); outputs: the motor neurons of ``h``,
    ``(B, M)``. Parameters: ``lstm.input_map`` (``(4N, F)`` and bias), ``lstm.recurrent_map``
    (``(4N, N)``), ``f_node.0`` and ``f_node.1`` (``(N, N)`` and bias). The wiring masks every
    input weight with ``|sensory_adjacency_matrix|`` and every ``(N, N)`` block (the four LSTM
    gates' and both ODE layers') with ``|adjacency_matrix|``.

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count ``N`` (fully connected) or a wiring.
        ode_unfolds (int): Solver steps per time step. Default: ``3``.
        solver (str): ``"euler"``, ``"heun"`` or ``"rk4"``. Default: ``"rk4"``.
    """

    def __init__(self, input_size: int, units, ode_unfolds: int = 3, solver: str = "rk4"):
        super().__init__()
        self._attach_units(units, input_size)
        self._attach_solver(solver, ode_unfolds)
        n = self.num_neurons
        self.lstm = LSTMCell(self.sensory_size, n)
        self.f_node = [nn.Linear(n, n), nn.Linear(n, n)]
        self.refresh_wiring()

    @property
    def state_size(self) -> int:
        """``2N``: ``h`` then ``c``."""
        return 2 * self.num_neurons

    def refresh_wiring(self) -> None:
        """Re-read the wiring's synapses into the masks (after they changed; shapes kept)."""
        sensory, recurrent = wiring_masks(self.wiring)
        self._gates_sensory_sparsity_mask = mx.array(np.tile(sensory, (4, 1)))
        self._gates_sparsity_mask = mx.array(np.tile(recurrent, (4, 1)))
        self._sparsity_mask = mx.array(recurrent)

    def prepare(self, x: mx.array) -> Prepared:
        """LSTM input term of all steps: ``x`` ``(T, B, F)`` -> ``((T, B, 4N),)``; the step's
        :class:`ODELSTMParams`."""
        w_x = masked_weight(self.lstm.input_map, self._gates_sensory_sparsity_mask)
        projected = mx.addmm(self.lstm.input_map.bias, x, w_x.T)
        w_h = in_out(masked_weight(self.lstm.recurrent_map, self._gates_sparsity_mask))
        hidden, output = (
            DenseParams(in_out(masked_weight(layer, self._sparsity_mask)), layer.bias)
            for layer in self.f_node
        )
        return Prepared((projected,), ODELSTMParams(LSTMParams(w_h), hidden, output))

    def step(self, inputs_t, params: ODELSTMParams, state, timespans=1.0):
        """LSTM update, then the ODE over ``timespans`` (float or ``(B, 1)``); ``state``
        ``(B, 2N)``. Returns ``(motor outputs, state_new)``."""
        hidden, output = params.ode_hidden, params.ode_output
        h, c = mx.split(state, 2, axis=-1)
        _, (h, c) = LSTMCell.step(inputs_t, params.lstm, (h, c))

        def slope(y):
            activity = tanh(mx.addmm(hidden.bias, y, hidden.weight))
            return mx.addmm(output.bias, activity, output.weight)

        h = integrate(slope, h, timespans, self.ode_unfolds, self.solver)
        return h[..., : self.motor_size], mx.concatenate([h, c], axis=-1)
