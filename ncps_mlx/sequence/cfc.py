"""The closed-form continuous-time sequence module ``CfC`` (ncps's signature)."""

from __future__ import annotations

import mlx.nn as nn

from .._validation import check_int
from ..cells import CfCCell, LSTMCell, WiredCfCCell
from ..wirings import Wiring
from .base import LiquidSequence

__all__ = ["CfC"]


class CfC(LiquidSequence):
    """A closed-form continuous-time RNN over sequences (ncps's ``CfC`` signature).

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Hidden size of a dense :class:`~ncps_mlx.cells.CfCCell`, or a
            wiring for a :class:`~ncps_mlx.cells.WiredCfCCell` (outputs: its motor neurons).
        proj_size (int, optional): Add a linear layer ``fc`` mapping outputs to ``proj_size``.
        return_sequences (bool): Return every step's output, else only the last.
        batch_first (bool): ``(B, T, F)`` if True, ``(T, B, F)`` if False.
        mixed_memory (bool): Add an LSTM memory cell before the CfC cell at every step.
        mode (str): ``"default"``, ``"pure"`` or ``"no_gate"``.
        activation (str): Backbone activation (dense mode only).
        backbone_units, backbone_layers, backbone_dropout: Backbone shape (dense mode only;
            defaults 128, 1, 0.0). Passing them with a wiring is an error, as in ncps.
        kernel (str, optional): ``"auto"``, ``"fused"`` or ``"reference"``: whether the whole
            sequence runs in one fused GPU kernel (see :mod:`ncps_mlx.kernels`); None (the
            default) follows :func:`ncps_mlx.kernels.set_default_kernel` (``"auto"``).

    ncps's attributes hold the same values: ``wiring_or_units`` (the ``units`` argument),
    ``wired_mode`` (and ncps's ``wired_false``, its negation), ``wiring`` (wired mode),
    ``state_size``, ``rnn_cell``, ``use_mixed``, ``lstm`` (mixed memory), ``fc`` (a
    ``Linear`` with ``proj_size``, else ``nn.Identity``). Difference from ncps 1.0.1:
    ``output_size`` is the size of the outputs, ``proj_size`` when given (ncps keeps the cell's
    output size there, the input size of ``fc``).
    """

    def __init__(
        self,
        input_size: int,
        units,
        proj_size: int | None = None,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        mode: str = "default",
        activation: str = "lecun_tanh",
        backbone_units: int | None = None,
        backbone_layers: int | None = None,
        backbone_dropout: float | None = None,
        kernel: str | None = None,
    ):
        super().__init__(input_size, return_sequences, batch_first, mixed_memory, kernel)
        self._keep_config(locals())
        self.wired_mode = isinstance(units, Wiring)
        if self.wired_mode:
            for name, value in (
                ("backbone_units", backbone_units),
                ("backbone_layers", backbone_layers),
                ("backbone_dropout", backbone_dropout),
            ):
                if value is not None:
                    raise ValueError(
                        f"{name} cannot be used with a wiring (wired CfC has no backbone)"
                    )
            self.wiring = units
            self.rnn_cell = WiredCfCCell(input_size, units, mode)
            self.state_size, self.output_size = units.units, self.rnn_cell.motor_size
        else:
            self.rnn_cell = CfCCell(
                input_size,
                check_int(units, "units", minimum=1),
                mode,
                activation,
                128 if backbone_units is None else backbone_units,
                1 if backbone_layers is None else backbone_layers,
                0.0 if backbone_dropout is None else backbone_dropout,
            )
            self.state_size = self.output_size = self.rnn_cell.hidden_size
        self.proj_size = None if proj_size is None else check_int(proj_size, "proj_size", minimum=1)
        if self.proj_size is None:
            self.fc = nn.Identity()
        else:
            self.fc = nn.Linear(self.output_size, self.proj_size)
            self.output_size = self.proj_size
        if self.use_mixed:
            self.lstm = LSTMCell(input_size, self.state_size)

    @property
    def wiring_or_units(self):
        """ncps's name of the ``units`` argument: the wiring in wired mode, else the units."""
        return self.wiring if self.wired_mode else self.rnn_cell.hidden_size

    @property
    def wired_false(self) -> bool:
        """``not wired_mode``: ncps 1.0.1's flag of a dense CfC (which it sets only then)."""
        return not self.wired_mode

    def readout(self, outputs):
        return self.fc(outputs)
