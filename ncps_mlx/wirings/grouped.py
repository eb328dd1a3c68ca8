"""``GroupedWiring``: a wiring whose neurons form named, contiguous groups.

The advanced wirings (multi-scale, hierarchical, attention, domain, dynamic) all describe their
circuit as groups of neurons ("fast", "query", "scale_2", ...) wired to each other. This base
class stores the groups once and derives from them what every wiring must answer: the type of
each neuron (the group name, used by plots), the layers in signal order (used by plots and by
:class:`~ncps_mlx.cells.WiredCfCCell`), and a per-neuron time scale (used by the cells to
initialise their time constants).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from .base import Wiring

__all__ = ["GroupedWiring"]


class GroupedWiring(Wiring):
    """A :class:`Wiring` made of named groups of consecutive neurons.

    Subclasses call :meth:`_define_groups` in ``__init__`` (before drawing synapses), listing
    the groups in neuron-id order (output group first, by the ncps convention that motor
    neurons are ``0..output_dim-1``), the layers in signal order, and optionally each group's
    time scale. The output group is the last layer.

    Args:
        units: Total number of neurons (the sum of the group sizes).
    """

    def _define_groups(
        self,
        groups: list[tuple[str, int]],
        layers: list[list[str]],
        time_scales: dict[str, float] | None = None,
        output_group: str | None = None,
    ) -> None:
        """Declare the groups.

        Args:
            groups: ``(name, size)`` in neuron-id order; sizes add up to ``units``.
            layers: Group names per layer, in signal order; every group in exactly one layer.
            time_scales: Relative time scale per group (default 1).
            output_group: The motor group (default: the first group); sets ``output_dim``.
        """
        starts = np.cumsum([0] + [size for _, size in groups])
        if starts[-1] != self.units:
            raise ValueError(f"group sizes add up to {starts[-1]}, expected units={self.units}")
        bounds = zip(groups, starts[:-1], starts[1:], strict=True)
        self._groups = {name: (int(a), int(b)) for (name, _), a, b in bounds}
        listed = [name for layer in layers for name in layer]
        if sorted(listed) != sorted(self._groups):
            raise ValueError(f"layers {layers} must list every group of {list(self._groups)} once")
        self._layers = [list(layer) for layer in layers]
        self._time_scales = dict(time_scales or {})
        output_group = output_group or groups[0][0]
        start, stop = self._groups[output_group]
        if start != 0:
            raise ValueError(f"the output group {output_group!r} must hold neurons 0..output_dim-1")
        self.set_output_dim(stop)

    # ------------------------------------------------------------------ groups
    @property
    def group_names(self) -> list[str]:
        """Group names in neuron-id order."""
        return list(self._groups)

    def group(self, name: str) -> np.ndarray:
        """Neuron ids of group ``name`` (an int64 array)."""
        if name not in self._groups:
            raise ValueError(f"unknown group {name!r}; groups are {list(self._groups)}")
        return np.arange(*self._groups[name])

    def group_size(self, name: str) -> int:
        start, stop = self._groups[name]
        return stop - start

    # ------------------------------------------------------------------ Wiring API
    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        layer_id = check_int(layer_id, "layer_id", minimum=0, maximum=self.num_layers - 1)
        return np.concatenate([self.group(name) for name in self._layers[layer_id]]).tolist()

    def neuron_types(self) -> np.ndarray:
        types = np.empty(self.units, dtype=object)
        for name, (start, stop) in self._groups.items():
            types[start:stop] = name
        return types.astype(str)

    def get_type_of_neuron(self, neuron_id: int) -> str:
        neuron_id = check_int(neuron_id, "neuron_id", minimum=0, maximum=self.units - 1)
        return next(name for name, (a, b) in self._groups.items() if a <= neuron_id < b)

    def neuron_time_scales(self) -> np.ndarray:
        scales = np.ones(self.units, np.float32)
        for name, scale in self._time_scales.items():
            start, stop = self._groups[name]
            scales[start:stop] = scale
        return scales
