"""Multi-time-scale and layered wirings: ``MultiScaleWiring`` and ``HierarchicalWiring``.

Both are :class:`~ncps_mlx.wirings.grouped.GroupedWiring`\\ s built from blocks of synapses
between neuron groups, each block one :func:`~ncps_mlx.wirings.patterns.connect` call with a
per-target fan-in and random polarity. All draws of a wiring come from one
``np.random.default_rng(seed)`` in the order its docstring lists, internal blocks in
``__init__`` and the sensory block in ``build``. Optional blocks are drawn after the
mandatory ones, so switching feedback off leaves every earlier internal synapse unchanged
(and switching skips off, the feed-forward ones); later draws, sensory ones included, shift.

Cells: :class:`~ncps_mlx.cells.LTCCell` uses every synapse and multiplies its initial
capacitance ``cm`` by :meth:`~ncps_mlx.wirings.Wiring.neuron_time_scales`;
:class:`~ncps_mlx.cells.WiredCfCCell` divides each neuron's elapsed time by it but, in ncps's
layer-by-layer design, uses only the synapses from each layer to the next (fast -> medium ->
slow -> output; ``layer_i -> layer_{i+1}``) plus dense recurrence within each layer: skips,
feedback and the fast/medium -> output links act in an LTC, not in a wired CfC.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .._validation import check_int, normalize_seed
from .grouped import GroupedWiring
from .patterns import connect

__all__ = ["MultiScaleWiring", "HierarchicalWiring"]

_DEFAULT_SEED = 22222


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _check_optional_fan_in(value, name: str) -> int | None:
    return None if value is None else check_int(value, name, minimum=1)


def _check_time_scales(values, name: str, length: int) -> tuple[float, ...]:
    """``length`` finite positive numbers as a tuple of floats, or raise naming ``name``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of {length} numbers, got {values!r}")
    values = list(values)
    if len(values) != length:
        raise ValueError(f"{name} must hold {length} values, got {len(values)}: {values!r}")
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must contain numbers, got {value!r}")
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"{name} must be finite and > 0, got {float(value)}")
    return tuple(float(value) for value in values)


def _half(size: int) -> int:
    """The default fan-in from a source group of ``size`` neurons: half of it, rounded up."""
    return (size + 1) // 2


def _block_fan_in(
    fan_in: int | None, name: str, source: str, target: str, size: int, hint: str = ""
) -> int:
    """The fan-in of block ``source -> target``: ``fan_in``, or ``ceil(size / 2)`` if None."""
    if fan_in is None:
        return _half(size)
    if fan_in > size:
        raise ValueError(
            f"{name}={fan_in} is larger than the {source!r} group ({size} neurons), the source "
            f"of the {source} -> {target} block; use {name} <= {size}{hint}"
        )
    return fan_in


def _sensory_fan_in(wiring: GroupedWiring, fan_in: int | None, target: str) -> int | None:
    """Checked sensory fan-in (None: every input) once ``input_dim`` is known."""
    if fan_in is not None and fan_in > wiring.input_dim:
        raise ValueError(
            f"sensory_fan_in={fan_in} is larger than input_dim={wiring.input_dim}, the "
            f"source of the sensory -> {target} block; use sensory_fan_in <= {wiring.input_dim}"
        )
    return fan_in


class MultiScaleWiring(GroupedWiring):
    """Fast, medium (tactical) and slow (strategic) populations around a shared output.

    Neuron ids, in this order: ``output`` ``0..O-1`` (the motor neurons), ``fast``, ``medium``,
    ``slow``. Layers, in signal order: fast, medium, slow, output. Every synapse belongs to one
    of the blocks below; each block gives every target neuron ``k`` distinct sources of the
    source group drawn uniformly (recurrent blocks may draw a neuron as its own source), each
    synapse polarity +1 with probability 2/3 else -1. With ``S`` the source group's size,
    ``k`` is ``fan_in`` for the scale blocks (default ``ceil(S / 2)``), ``output_fan_in`` for
    the medium/slow -> output blocks (default half the scale-block fan-in from the same
    source, at least 1) and ``sensory_fan_in`` for the sensory block (default: all inputs).

    Drawn in this order from ``np.random.default_rng(seed)``, each block its sources first, then
    its polarities:

    1. fast -> output (``fan_in``): the fast path.
    2. fast -> medium (``fan_in``).
    3. medium -> medium (``fan_in``, recurrence).
    4. medium -> slow (``fan_in``).
    5. slow -> slow (``fan_in``, recurrence).
    6. medium -> output (``output_fan_in``).
    7. slow -> output (``output_fan_in``).
    8. If ``feedback``: medium -> fast (``fan_in``).
    9. If ``feedback``: slow -> medium (``fan_in``).
    10. At ``build``: sensory -> fast (``sensory_fan_in``); no other group gets sensory input.

    Synapse count: ``O*k(F) + M*k(F) + M*k(M) + S*k(M) + S*k(S) + O*(ko(M) + ko(S))``, plus
    ``F*k(M) + M*k(S)`` with feedback, plus ``F*ks`` sensory (``k(X)``/``ko(X)``: scale/output
    fan-in from group ``X``, ``ks``: sensory fan-in).

    Time scales: :meth:`neuron_time_scales` gives fast and output neurons ``time_scales[0]``,
    medium ``time_scales[1]`` and slow ``time_scales[2]``; an LTC multiplies its initial
    capacitance by them (slow neurons start with 16x longer time constants by default).

    Args:
        fast_neurons, medium_neurons, slow_neurons, output_neurons (int): Group sizes (>= 1).
        sensory_fan_in (int, optional): Inputs per fast neuron (<= ``input_dim``, checked at
            ``build``); None: every input.
        fan_in (int, optional): Sources per target in the scale blocks (<= the size of every
            source group: fast, medium, slow); None: half the source group, rounded up.
        output_fan_in (int, optional): Medium and slow sources per output neuron (<= medium
            and slow sizes); None: half the scale-block fan-in, at least 1.
        feedback (bool): Add the slow -> medium and medium -> fast blocks.
        time_scales (tuple of 3 floats): Relative time scales of fast, medium, slow (> 0).
        seed (int, np.random.Generator or None): Seed of every draw (normalised to an int).
    """

    def __init__(
        self,
        fast_neurons: int,
        medium_neurons: int,
        slow_neurons: int,
        output_neurons: int,
        sensory_fan_in: int | None = None,
        fan_in: int | None = None,
        output_fan_in: int | None = None,
        feedback: bool = True,
        time_scales: Sequence[float] = (1.0, 4.0, 16.0),
        seed=_DEFAULT_SEED,
    ):
        sizes = {
            "output": check_int(output_neurons, "output_neurons", minimum=1),
            "fast": check_int(fast_neurons, "fast_neurons", minimum=1),
            "medium": check_int(medium_neurons, "medium_neurons", minimum=1),
            "slow": check_int(slow_neurons, "slow_neurons", minimum=1),
        }
        super().__init__(sum(sizes.values()))
        self.sensory_fan_in = _check_optional_fan_in(sensory_fan_in, "sensory_fan_in")
        self.fan_in = _check_optional_fan_in(fan_in, "fan_in")
        self.output_fan_in = _check_optional_fan_in(output_fan_in, "output_fan_in")
        self.feedback = _check_bool(feedback, "feedback")
        self.time_scales = _check_time_scales(time_scales, "time_scales", 3)
        self._seed = normalize_seed(seed)
        fast, medium, slow = self.time_scales
        self._define_groups(
            list(sizes.items()),
            layers=[["fast"], ["medium"], ["slow"], ["output"]],
            time_scales={"output": fast, "fast": fast, "medium": medium, "slow": slow},
        )
        self._rng = np.random.default_rng(self._seed)
        for source, target, kind in self.blocks():
            fan_in = self.block_fan_in(source, target, kind)
            connect(self, self.group(source), self.group(target), fan_in, "random", rng=self._rng)

    def blocks(self) -> list[tuple[str, str, str]]:
        """The internal blocks ``(source, target, kind)`` in draw order; kind is ``"scale"``
        (``fan_in``) or ``"output"`` (``output_fan_in``)."""
        blocks = [("fast", "output", "scale"), ("fast", "medium", "scale")]
        blocks += [("medium", "medium", "scale"), ("medium", "slow", "scale")]
        blocks += [("slow", "slow", "scale"), ("medium", "output", "output")]
        blocks += [("slow", "output", "output")]
        if self.feedback:
            blocks += [("medium", "fast", "scale"), ("slow", "medium", "scale")]
        return blocks

    def block_fan_in(self, source: str, target: str, kind: str = "scale") -> int:
        """Sources per target neuron of block ``source -> target`` (see the class docstring)."""
        size = self.group_size(source)
        scale = _block_fan_in(self.fan_in, "fan_in", source, target, size)
        if kind == "scale":
            return scale
        if self.output_fan_in is None:
            return max(1, scale // 2)
        return _block_fan_in(self.output_fan_in, "output_fan_in", source, target, size)

    def _build_sensory_synapses(self) -> None:
        fan_in = _sensory_fan_in(self, self.sensory_fan_in, "fast")
        sources = np.arange(self.input_dim)
        connect(self, sources, self.group("fast"), fan_in, "random", rng=self._rng, sensory=True)

    def _config_args(self) -> dict:
        return {
            "fast_neurons": self.group_size("fast"),
            "medium_neurons": self.group_size("medium"),
            "slow_neurons": self.group_size("slow"),
            "output_neurons": self.group_size("output"),
            "sensory_fan_in": self.sensory_fan_in,
            "fan_in": self.fan_in,
            "output_fan_in": self.output_fan_in,
            "feedback": self.feedback,
            "time_scales": list(self.time_scales),
            "seed": self._seed,
        }


class HierarchicalWiring(GroupedWiring):
    """A stack of layers ``layer_0 -> ... -> layer_{L-1}`` with optional skips and feedback.

    ``layer_sizes[i]`` neurons form group ``"layer_{i}"``; the last layer is the output (motor)
    group. Neuron ids: ``layer_{L-1}`` first (``0..output_dim-1``), then ``layer_0``,
    ``layer_1``, ..., ``layer_{L-2}``; layers in signal order ``layer_0`` ... ``layer_{L-1}``.

    Every synapse belongs to one of the blocks below; each block gives every target neuron ``k``
    distinct sources of the source layer drawn uniformly, each synapse polarity +1 with
    probability 2/3 else -1. Drawn in this order from ``np.random.default_rng(seed)``, each
    block its sources first, then its polarities:

    1. Feed-forward, for ``i = 0..L-2``: ``layer_i -> layer_{i+1}`` (``k = fan_in``).
    2. If ``skip_connections``, for ``i = 0..L-3``: ``layer_i -> layer_{i+2}``
       (``k = skip_fan_in``, default ``fan_in``).
    3. If ``feedback``, for ``i = 0..L-2``: ``layer_{i+1} -> layer_i``
       (``k = feedback_fan_in``, default ``fan_in``).
    4. At ``build``: sensory -> ``layer_0`` (``k = sensory_fan_in``; default every input).

    An internal fan-in of None means half of that block's source layer, rounded up; an int must
    not exceed the size of any source layer it applies to. There are no synapses within a layer.

    Args:
        layer_sizes (sequence of int): Neurons per layer, in signal order (non-empty, >= 1).
        skip_connections (bool): Add the ``layer_i -> layer_{i+2}`` blocks.
        feedback (bool): Add the ``layer_{i+1} -> layer_i`` blocks.
        fan_in (int, optional): Sources per target of the feed-forward blocks.
        skip_fan_in (int, optional): Of the skip blocks (None: as ``fan_in``).
        feedback_fan_in (int, optional): Of the feedback blocks (None: as ``fan_in``).
        sensory_fan_in (int, optional): Inputs per ``layer_0`` neuron (None: every input;
            <= ``input_dim``, checked at ``build``).
        time_scales (sequence of float, optional): Relative time scale per layer (> 0);
            None: all 1.
        seed (int, np.random.Generator or None): Seed of every draw (normalised to an int).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        skip_connections: bool = True,
        feedback: bool = True,
        fan_in: int | None = None,
        skip_fan_in: int | None = None,
        feedback_fan_in: int | None = None,
        sensory_fan_in: int | None = None,
        time_scales: Sequence[float] | None = None,
        seed=_DEFAULT_SEED,
    ):
        sizes = _check_layer_sizes(layer_sizes)
        super().__init__(sum(sizes))
        self.layer_sizes = tuple(sizes)
        self.skip_connections = _check_bool(skip_connections, "skip_connections")
        self.feedback = _check_bool(feedback, "feedback")
        self.fan_in = _check_optional_fan_in(fan_in, "fan_in")
        self.skip_fan_in = _check_optional_fan_in(skip_fan_in, "skip_fan_in")
        self.feedback_fan_in = _check_optional_fan_in(feedback_fan_in, "feedback_fan_in")
        self.sensory_fan_in = _check_optional_fan_in(sensory_fan_in, "sensory_fan_in")
        self.time_scales = (
            None
            if time_scales is None
            else _check_time_scales(time_scales, "time_scales", len(sizes))
        )
        self._seed = normalize_seed(seed)
        names = [f"layer_{i}" for i in range(len(sizes))]
        order = [len(sizes) - 1, *range(len(sizes) - 1)]
        self._define_groups(
            [(names[i], sizes[i]) for i in order],
            layers=[[name] for name in names],
            time_scales=None
            if time_scales is None
            else dict(zip(names, self.time_scales, strict=True)),
        )
        self._rng = np.random.default_rng(self._seed)
        for source, target, kind in self.blocks():
            fan_in = self.block_fan_in(source, target, kind)
            connect(self, self.group(source), self.group(target), fan_in, "random", rng=self._rng)

    def blocks(self) -> list[tuple[str, str, str]]:
        """The internal blocks ``(source, target, kind)`` in draw order; kind is
        ``"feedforward"``, ``"skip"`` or ``"feedback"``."""
        count = len(self.layer_sizes)
        blocks = [(f"layer_{i}", f"layer_{i + 1}", "feedforward") for i in range(count - 1)]
        if self.skip_connections:
            blocks += [(f"layer_{i}", f"layer_{i + 2}", "skip") for i in range(count - 2)]
        if self.feedback:
            blocks += [(f"layer_{i + 1}", f"layer_{i}", "feedback") for i in range(count - 1)]
        return blocks

    def block_fan_in(self, source: str, target: str, kind: str) -> int:
        """Sources per target neuron of block ``source -> target`` of ``kind``."""
        explicit = {"skip": self.skip_fan_in, "feedback": self.feedback_fan_in}.get(kind)
        if explicit is not None:
            name, value, hint = f"{kind}_fan_in", explicit, ""
        else:
            name, value = "fan_in", self.fan_in
            hint = "" if kind == "feedforward" else f" or set {kind}_fan_in"
        return _block_fan_in(value, name, source, target, self.group_size(source), hint)

    def _build_sensory_synapses(self) -> None:
        fan_in = _sensory_fan_in(self, self.sensory_fan_in, "layer_0")
        sources = np.arange(self.input_dim)
        connect(self, sources, self.group("layer_0"), fan_in, "random", rng=self._rng, sensory=True)

    def _config_args(self) -> dict:
        return {
            "layer_sizes": list(self.layer_sizes),
            "skip_connections": self.skip_connections,
            "feedback": self.feedback,
            "fan_in": self.fan_in,
            "skip_fan_in": self.skip_fan_in,
            "feedback_fan_in": self.feedback_fan_in,
            "sensory_fan_in": self.sensory_fan_in,
            "time_scales": None if self.time_scales is None else list(self.time_scales),
            "seed": self._seed,
        }


def _check_layer_sizes(layer_sizes) -> list[int]:
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, (Sequence, np.ndarray)):
        raise TypeError(f"layer_sizes must be a sequence of ints, got {layer_sizes!r}")
    if len(layer_sizes) == 0:
        raise ValueError("layer_sizes must name at least one layer, got an empty sequence")
    return [check_int(size, f"layer_sizes[{i}]", minimum=1) for i, size in enumerate(layer_sizes)]
