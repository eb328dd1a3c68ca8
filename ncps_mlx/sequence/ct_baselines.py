"""Sequence modules ``CTRNN``, ``CTGRU`` and ``ODELSTM``: the baselines of the LTC and ODE-LSTM
papers, with the call contract of :class:`~ncps_mlx.LTC` and :class:`~ncps_mlx.CfC`.

Each is a :class:`~ncps_mlx.sequence.LiquidSequence` (which owns the time loop, layouts, timespans
and padding masks) around its cell. ``units`` is an int (fully connected; every neuron is an
output) or a wiring (outputs: its ``output_dim`` motor neurons, whose weights follow its
synapses).
"""

from __future__ import annotations

from ..cells.ctgru import CTGRUCell
from ..cells.ctrnn import CTRNNCell
from ..cells.odelstm import ODELSTMCell
from .base import LiquidSequence

__all__ = ["CTRNN", "CTGRU", "ODELSTM"]


class _WiredSequence(LiquidSequence):
    """A :class:`LiquidSequence` around a :class:`~ncps_mlx.cells.ctrnn.DenseWiredCell`: the
    constructor the three modules share. ``cell_class`` is the cell; ``cell_options`` the
    keywords its ``__init__`` takes beyond ``(input_size, units)``."""

    cell_class: type

    def _build(self, input_size, units, return_sequences, batch_first, arguments: dict) -> None:
        super().__init__(input_size, return_sequences, batch_first, mixed_memory=False)
        self._keep_config(arguments)
        options = {
            name: value
            for name, value in self._config.items()
            if name not in ("input_size", "units", "return_sequences", "batch_first")
        }
        self.rnn_cell = self.cell_class(input_size, units, **options)
        self.wiring = self.rnn_cell.wiring
        self.state_size = self.rnn_cell.state_size
        self.output_size = self.rnn_cell.motor_size


class _SolverSequence(_WiredSequence):
    """A :class:`_WiredSequence` whose cell integrates an ODE: ``ode_unfolds`` solver steps of
    ``solver`` per time step, with per-class defaults (``default_unfolds``, ``default_solver``)."""

    default_unfolds: int
    default_solver: str

    def __init__(
        self,
        input_size: int,
        units,
        return_sequences: bool = True,
        batch_first: bool = True,
        ode_unfolds: int | None = None,
        solver: str | None = None,
    ):
        ode_unfolds = self.default_unfolds if ode_unfolds is None else ode_unfolds
        solver = self.default_solver if solver is None else solver
        self._build(input_size, units, return_sequences, batch_first, locals())


class CTRNN(_SolverSequence):
    """A continuous-time RNN over sequences (cell: :class:`~ncps_mlx.cells.ctrnn.CTRNNCell`).

    Call: ``model(x, hx=None, timespans=None, mask=None) -> (outputs, hx)`` as
    :class:`~ncps_mlx.sequence.LiquidSequence`; ``hx`` is ``(B, N)``; timespans may be 0.

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count or a wiring (outputs: its motor neurons).
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        ode_unfolds (int): Solver steps per time step. Default: ``6``.
        solver (str): ``"euler"``, ``"heun"`` or ``"rk4"``. Default: ``"euler"``.
    """

    cell_class = CTRNNCell
    default_unfolds, default_solver = 6, "euler"


class CTGRU(_WiredSequence):
    """A continuous-time GRU over sequences (cell: :class:`~ncps_mlx.cells.ctgru.CTGRUCell`).

    Call as :class:`~ncps_mlx.sequence.LiquidSequence`; ``hx`` holds ``M`` traces per neuron,
    ``(B, N * M)`` (``state_size``); timespans may be 0.

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count or a wiring (outputs: its motor neurons).
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        time_scales (int): Time scales ``M`` per neuron. Default: ``8``.
    """

    cell_class = CTGRUCell

    def __init__(
        self,
        input_size: int,
        units,
        return_sequences: bool = True,
        batch_first: bool = True,
        time_scales: int = 8,
    ):
        self._build(input_size, units, return_sequences, batch_first, locals())


class ODELSTM(_SolverSequence):
    """An ODE-LSTM over sequences (cell: :class:`~ncps_mlx.cells.odelstm.ODELSTMCell`).

    Call as :class:`~ncps_mlx.sequence.LiquidSequence`; ``hx`` concatenates the LSTM output and
    memory, ``(B, 2N)`` (``state_size``); timespans may be 0.

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count or a wiring (outputs: its motor neurons).
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        ode_unfolds (int): Solver steps per time step. Default: ``3``.
        solver (str): ``"euler"``, ``"heun"`` or ``"rk4"``. Default: ``"rk4"``.
    """

    cell_class = ODELSTMCell
    default_unfolds, default_solver = 3, "rk4"
