"""The liquid time-constant sequence module ``LTC`` (ncps's signature)."""

from __future__ import annotations

from ..cells import LSTMCell, LTCCell
from ..cells.common import wiring_for_units
from ..wirings import Wiring
from .base import LiquidSequence

__all__ = ["LTC"]


def _of_cell(name: str, doc: str) -> property:
    """A read-only property that reads attribute ``name`` of the module's ``rnn_cell``."""
    return property(lambda self: getattr(self.rnn_cell, name), doc=doc)


class LTC(LiquidSequence):
    """A liquid time-constant RNN over sequences (ncps's ``LTC`` signature).

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count (a :class:`~ncps_mlx.wirings.FullyConnected` wiring)
            or a wiring; outputs are its ``output_dim`` motor neurons.
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        mixed_memory (bool): Add an LSTM memory cell before the LTC cell at every step.
        input_mapping (str): See :class:`~ncps_mlx.cells.LTCCell`.
        output_mapping (str): See :class:`~ncps_mlx.cells.LTCCell`.
        ode_unfolds (int): See :class:`~ncps_mlx.cells.LTCCell`.
        solver (str): ``"semi_implicit"`` (ncps's, the default), ``"euler"``, ``"heun"`` or
            ``"rk4"``; see :class:`~ncps_mlx.cells.LTCCell`.
        epsilon (float): See :class:`~ncps_mlx.cells.LTCCell`.
        implicit_param_constraints (bool): As in the cell, but True by default (as in ncps).
        sparse (bool, optional): Synapse layout (ours); see the cell.
        fast_weights (bool, optional): Hebbian fast weights (ours); with them the state ``hx``
            holds the neurons' potentials followed by one trace per fast synapse.
        routing (bool, optional): Routing by agreement for capsule wirings (ours).
        kernel (str, optional): ``"auto"``, ``"fused"`` or ``"reference"`` (see
            :mod:`ncps_mlx.kernels`); the LTC has no fused kernel yet, so ``"auto"`` and None
            run the reference loop and ``"fused"`` raises ``ValueError``.

    ncps's attributes hold the same values: ``wiring_or_units`` (the ``units`` argument),
    ``state_size``, ``sensory_size``, ``motor_size``, ``output_size``, ``synapse_count``,
    ``rnn_cell``, ``use_mixed``, ``lstm`` (mixed memory); ``sensory_synapse_count`` counts the
    sensory synapses (ncps 1.0.1 returns ``synapse_count`` there, a bug).
    """

    timespans_must_be_positive = True

    def __init__(
        self,
        input_size: int,
        units,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        input_mapping="affine",
        output_mapping="affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = True,
        sparse: bool | None = None,
        fast_weights: bool | None = None,
        routing: bool | None = None,
        solver: str = "semi_implicit",
        kernel: str | None = None,
    ):
        super().__init__(input_size, return_sequences, batch_first, mixed_memory, kernel)
        self._keep_config(locals())
        # An int, or None for a wiring (a Wiring attribute would count as one more wiring).
        self._units_argument = None if isinstance(units, Wiring) else units
        wiring = wiring_for_units(units, input_size)
        self.rnn_cell = LTCCell(
            wiring,
            input_size,
            input_mapping=input_mapping,
            output_mapping=output_mapping,
            ode_unfolds=ode_unfolds,
            epsilon=epsilon,
            implicit_param_constraints=implicit_param_constraints,
            sparse=sparse,
            fast_weights=fast_weights,
            routing=routing,
            solver=solver,
        )
        self.wiring = wiring
        self.state_size = self.rnn_cell.state_size
        self.output_size = wiring.output_dim
        if self.use_mixed and self.state_size != wiring.units:
            raise ValueError("mixed_memory=True cannot be combined with fast weights")
        if self.use_mixed:
            self.lstm = LSTMCell(input_size, self.state_size)

    @property
    def wiring_or_units(self):
        """ncps's name of the ``units`` argument: the wiring given, or the number of units."""
        return self.wiring if self._units_argument is None else self._units_argument

    sensory_size = _of_cell("sensory_size", "Number of inputs (the wiring's ``input_dim``).")
    motor_size = _of_cell("motor_size", "Number of motor (output) neurons.")
    synapse_count = _of_cell("synapse_count", "Number of synapses between the neurons.")
    sensory_synapse_count = _of_cell(
        "sensory_synapse_count", "Number of synapses from the inputs to the neurons."
    )

    def readout(self, outputs):
        return self.rnn_cell.map_outputs(outputs)
