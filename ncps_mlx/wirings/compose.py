"""Composing wirings: two circuits placed as blocks of one, in series or side by side.

:func:`stack_wirings` feeds one circuit's motor neurons into another's sensory synapses;
:func:`merge_wirings` runs two circuits on the same inputs with random cross-links between
them. Both return a :class:`ComposedWiring`, which round-trips through ``get_config`` like any
wiring (it stores its parts' configs).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, normalize_seed
from .base import Wiring
from .patterns import connect

__all__ = ["ComposedWiring", "stack_wirings", "merge_wirings"]

_MODES = ("stack", "merge")


def _copy(part, name: str) -> Wiring:
    """An independent copy of a wiring (or a wiring from a config), so the caller's is untouched."""
    if isinstance(part, Wiring):
        return Wiring.from_config(part.get_config())
    if isinstance(part, dict):
        return Wiring.from_config(part)
    raise TypeError(f"{name} must be a Wiring or a wiring config, got {type(part).__name__}")


class ComposedWiring(Wiring):
    """Two wirings as blocks of one circuit.

    ``mode="stack"`` (in series): the sensory inputs reach ``first`` through its own sensory
    synapses; ``first``'s motor neurons drive ``second`` through ``second``'s sensory synapses
    (``second`` is built with ``input_dim = first.output_dim``), and ``second``'s motor neurons
    are the output. Neuron ids: ``second``'s neurons, then ``first``'s (offset
    ``second.units``), so the motor neurons stay ``0..output_dim-1``.

    ``mode="merge"`` (side by side): both parts read all sensory inputs; the output is
    ``first``'s motor neurons. Neuron ids: ``first``'s, then ``second``'s (offset
    ``first.units``). Cross-links: every neuron of each part receives ``cross_fan_in`` synapses
    from distinct random neurons of the other part (random polarity, +1 with probability 2/3),
    drawn from ``np.random.default_rng(seed)`` first into ``second``, then into ``first``.

    Every synapse of the parts is kept, with its polarity. Neuron types are the parts' types
    prefixed by ``names`` (``"first.motor"``); layers are ``first``'s then ``second``'s
    (stack) or merged index by index (merge); time scales are the parts'.

    Args:
        first, second: Wirings (copied, never modified) or wiring configs.
        mode: ``"stack"`` or ``"merge"``.
        cross_fan_in: Cross-links per neuron in merge mode (0 for none).
        seed: Seed of the cross-links.
        names: Prefixes of the parts' neuron types.
    """

    def __init__(
        self, first, second, mode="stack", cross_fan_in=0, seed=None, names=("first", "second")
    ):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if (
            len(names) != 2
            or not all(isinstance(n, str) and n for n in names)
            or names[0] == names[1]
        ):
            raise ValueError(f"names must be two different non-empty strings, got {names!r}")
        self._first, self._second = _copy(first, "first"), _copy(second, "second")
        self._args = {"first": self._first.get_config(), "second": self._second.get_config()}
        self.mode, self.names = mode, tuple(names)
        self.cross_fan_in = check_int(cross_fan_in, "cross_fan_in", minimum=0)
        if mode == "stack" and self.cross_fan_in:
            raise ValueError("cross_fan_in applies to mode='merge' only")
        self._seed = normalize_seed(seed) if self.cross_fan_in else None  # only links draw
        super().__init__(self._first.units + self._second.units)
        if mode == "stack":
            self._second.build(self._first.output_dim or self._first.units)
            self._offsets = (self._second.units, 0)
            self.set_output_dim(self._second.output_dim or self._second.units)
        else:
            self._offsets = (0, self._first.units)
            self.set_output_dim(self._first.output_dim or self._first.units)
        # Parts that draw their internal synapses at build time (NCP) are placed in build().
        self._placed = set()
        for index, part in enumerate(self._parts()):
            if part._sensory_drawn:
                self._place_internal(index)
        if mode == "stack":
            src, dst, polarity = self._second.sensory_synapses()
            self.add_synapses(src + self._offsets[0], dst, polarity)  # first's motors -> second
        elif self.cross_fan_in:
            self._add_cross_links()

    def _parts(self) -> tuple[Wiring, Wiring]:
        return self._first, self._second

    def _place_internal(self, index: int) -> None:
        src, dst, polarity = self._parts()[index].synapses()
        self.add_synapses(src + self._offsets[index], dst + self._offsets[index], polarity)
        self._placed.add(index)

    def _ids(self, index: int) -> np.ndarray:
        part = self._parts()[index]
        return np.arange(part.units) + self._offsets[index]

    def _add_cross_links(self) -> None:
        rng = np.random.default_rng(self._seed)
        first, second = self._ids(0), self._ids(1)
        connect(self, first, second, min(self.cross_fan_in, first.size), "random", rng)
        connect(self, second, first, min(self.cross_fan_in, second.size), "random", rng)

    def _build_sensory_synapses(self):
        readers = (0,) if self.mode == "stack" else (0, 1)
        for index in readers:
            part = self._parts()[index]
            part.build(self.input_dim)
            if index not in self._placed:
                self._place_internal(index)
            src, dst, polarity = part.sensory_synapses()
            self.add_sensory_synapses(src, dst + self._offsets[index], polarity)

    # ------------------------------------------------------------------ neurons
    def neuron_types(self) -> np.ndarray:
        types = np.empty(self.units, dtype=object)
        for index, (part, name) in enumerate(zip(self._parts(), self.names, strict=True)):
            types[self._ids(index)] = np.char.add(f"{name}.", part.neuron_types().astype(str))
        return types.astype(str)

    def get_type_of_neuron(self, neuron_id):
        neuron_id = check_int(neuron_id, "neuron_id", minimum=0, maximum=self.units - 1)
        return str(self.neuron_types()[neuron_id])

    def neuron_time_scales(self) -> np.ndarray:
        scales = np.empty(self.units, np.float32)
        for index, part in enumerate(self._parts()):
            scales[self._ids(index)] = part.neuron_time_scales()
        return scales

    def _layers(self) -> list[list[int]]:
        per_part = [
            [np.asarray(part.get_neurons_of_layer(i)) + offset for i in range(part.num_layers)]
            for part, offset in zip(self._parts(), self._offsets, strict=True)
        ]
        if self.mode == "stack":
            return [layer.tolist() for layer in per_part[0] + per_part[1]]
        depth = max(len(layers) for layers in per_part)
        return [
            np.concatenate([layers[i] for layers in per_part if i < len(layers)]).tolist()
            for i in range(depth)
        ]

    @property
    def num_layers(self) -> int:
        return len(self._layers())

    def get_neurons_of_layer(self, layer_id):
        layer_id = check_int(layer_id, "layer_id", minimum=0, maximum=self.num_layers - 1)
        return self._layers()[layer_id]

    def _config_args(self):
        return {
            **self._args,
            "mode": self.mode,
            "cross_fan_in": self.cross_fan_in,
            "seed": self._seed,
            "names": list(self.names),
        }


def stack_wirings(first, second, names=("first", "second")) -> ComposedWiring:
    """``first`` then ``second`` in series (see :class:`ComposedWiring`, mode ``"stack"``)."""
    return ComposedWiring(first, second, mode="stack", names=names)


def merge_wirings(
    first, second, cross_fan_in=0, seed=None, names=("first", "second")
) -> ComposedWiring:
    """``first`` and ``second`` side by side with cross-links (mode ``"merge"``)."""
    return ComposedWiring(
        first, second, mode="merge", cross_fan_in=cross_fan_in, seed=seed, names=names
    )
