"""Sequence modules ``CTRNN``, ``CTGRU`` and ``ODELSTM``: the baselines of the LTC and ODE-LSTM
papers, with the call contract of :class:`~ncps_mlx.rnn.LTC` and :class:`~ncps_mlx.rnn.CfC`.

Each is a :class:`~ncps_mlx.rnn.LiquidSequence` (which owns the time loop, layouts, timespans
and padding masks) around its cell. ``units`` is an int (fully connected; every neuron is an
output) or a wiring (outputs: its ``output_dim`` motor neurons, whose weights follow its
synapses).
"""

from __future__ import annotations

from .cells.ctgru import CTGRUCell
from .cells.ctrnn import CTRNNCell
from .cells.odelstm import ODELSTMCell
from .rnn import LiquidSequence
from .wirings import Wiring

__all__ = ["CTRNN", "CTGRU", "ODELSTM"]


class _WiredSequence(LiquidSequence):
    """A :class:`LiquidSequence` around a :class:`~ncps_mlx.cells.ctrnn.DenseWiredCell`."""

    def _attach_cell(self, cell, units, options: dict) -> None:
        self.rnn_cell = cell
        self.wiring = cell.wiring
        self.state_size = cell.state_size
        self.output_size = cell.motor_size
        self._config = {
            "input_size": self.input_size,
            "units": None if isinstance(units, Wiring) else cell.num_neurons,
            "return_sequences": self.return_sequences,
            "batch_first": self.batch_first,
            **options,
        }


class CTRNN(_WiredSequence):
    """A continuous-time RNN over sequences (cell: :class:`~ncps_mlx.cells.ctrnn.CTRNNCell`).

    Call: ``model(x, hx=None, timespans=None, mask=None) -> (outputs, hx)`` as
    :class:`~ncps_mlx.rnn.LiquidSequence`; ``hx`` is ``(B, N)``; timespans may be 0.

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count or a wiring (outputs: its motor neurons).
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        ode_unfolds (int): Solver steps per time step. Default: ``6``.
        solver (str): ``"euler"``, ``"heun"`` or ``"rk4"``. Default: ``"euler"``.
    """

    def __init__(
        self,
        input_size: int,
        units,
        return_sequences: bool = True,
        batch_first: bool = True,
        ode_unfolds: int = 6,
        solver: str = "euler",
    ):
        super().__init__(input_size, return_sequences, batch_first, mixed_memory=False)
        cell = CTRNNCell(input_size, units, ode_unfolds=ode_unfolds, solver=solver)
        self._attach_cell(cell, units, {"ode_unfolds": ode_unfolds, "solver": solver})


class CTGRU(_WiredSequence):
    """A continuous-time GRU over sequences (cell: :class:`~ncps_mlx.cells.ctgru.CTGRUCell`).

    Call as :class:`~ncps_mlx.rnn.LiquidSequence`; ``hx`` holds ``M`` traces per neuron,
    ``(B, N * M)`` (``state_size``); timespans may be 0.

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count or a wiring (outputs: its motor neurons).
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        time_scales (int): Time scales ``M`` per neuron. Default: ``8``.
    """

    def __init__(
        self,
        input_size: int,
        units,
        return_sequences: bool = True,
        batch_first: bool = True,
        time_scales: int = 8,
    ):
        super().__init__(input_size, return_sequences, batch_first, mixed_memory=False)
        cell = CTGRUCell(input_size, units, time_scales=time_scales)
        self._attach_cell(cell, units, {"time_scales": time_scales})


class ODELSTM(_WiredSequence):
    """An ODE-LSTM over sequences (cell: :class:`~ncps_mlx.cells.odelstm.ODELSTMCell`).

    Call as :class:`~ncps_mlx.rnn.LiquidSequence`; ``hx`` concatenates the LSTM output and
    memory, ``(B, 2N)`` (``state_size``); timespans may be 0.

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count or a wiring (outputs: its motor neurons).
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        ode_unfolds (int): Solver steps per time step. Default: ``3``.
        solver (str): ``"euler"``, ``"heun"`` or ``"rk4"``. Default: ``"rk4"``.
    """

    def __init__(
        self,
        input_size: int,
        units,
        return_sequences: bool = True,
        batch_first: bool = True,
        ode_unfolds: int = 3,
        solver: str = "rk4",
    ):
        super().__init__(input_size, return_sequences, batch_first, mixed_memory=False)
        cell = ODELSTMCell(input_size, units, ode_unfolds=ode_unfolds, solver=solver)
        self._attach_cell(cell, units, {"ode_unfolds": ode_unfolds, "solver": solver})
