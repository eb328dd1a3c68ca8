"""The ncps 1.0.1 wirings: ``FullyConnected``, ``Random``, ``NCP`` and ``AutoNCP``.

For the same arguments, ``build(input_dim)`` gives adjacency and sensory adjacency matrices equal
to ncps 1.0.1's element for element: the same numpy generators are seeded the same way and
consume the same random draws in the same order (including the draws that ncps's redundant calls
consume), vectorised where numpy's streams allow it. ncps's own algorithms cost time (``Random``
also memory) proportional to the number of candidate pairs; above
:data:`~ncps_mlx.wirings.sampling.EXACT_DRAW_LIMIT` candidate pairs these classes draw from the
same distribution with a sampler proportional to the synapses kept (different draws).
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_int, normalize_seed
from .base import Wiring
from .ncp_draws import ExactNcpDraws, FastNcpDraws
from .sampling import EXACT_DRAW_LIMIT, sample_without_replacement

__all__ = ["FullyConnected", "Random", "NCP", "AutoNCP"]

_NCPS_POLARITY_CHOICES = [-1, 1, 1]  # ncps draws polarity +1 with probability 2/3


def _check_fraction(value, name: str, low: float, high: float, high_inclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    inside = low <= value <= high if high_inclusive else low <= value < high
    if not inside:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value}")
    return value


class FullyConnected(Wiring):
    """Every neuron connects to every neuron, every input to every neuron (ncps-identical).

    Synapses: all ``units * units`` pairs (the diagonal only if ``self_connections``) and, at
    ``build``, all ``input_dim * units`` sensory pairs. Polarity: -1 with probability 1/3, else
    +1, drawn row-major from ``np.random.default_rng(erev_init_seed)``: internal pairs first
    (in ``__init__``), then sensory pairs (in ``build``).

    Args:
        units: Number of neurons.
        output_dim: Motor neurons ``0..output_dim-1`` (default: all ``units``).
        erev_init_seed: Seed of the polarity draws (int, None or a numpy Generator).
        self_connections: Whether neuron ``i`` has a synapse ``i -> i``.
    """

    def __init__(self, units, output_dim=None, erev_init_seed=1111, self_connections=True):
        super().__init__(units)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        if not isinstance(self_connections, bool):
            raise TypeError(f"self_connections must be a bool, got {self_connections!r}")
        self.self_connections = self_connections
        self._erev_init_seed = normalize_seed(erev_init_seed, "erev_init_seed")
        self._rng = np.random.default_rng(self._erev_init_seed)
        src, dst = np.divmod(np.arange(self.units * self.units, dtype=np.int64), self.units)
        if not self_connections:
            src, dst = src[src != dst], dst[src != dst]
        self.add_synapses(src, dst, self._rng.choice(_NCPS_POLARITY_CHOICES, size=src.size))

    def _build_sensory_synapses(self):
        src, dst = np.divmod(np.arange(self.input_dim * self.units, dtype=np.int64), self.units)
        self.add_sensory_synapses(src, dst, self._rng.choice(_NCPS_POLARITY_CHOICES, size=src.size))

    def _config_args(self):
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "erev_init_seed": self._erev_init_seed,
            "self_connections": self.self_connections,
        }


class Random(Wiring):
    """A uniformly random sparse wiring (ncps-identical up to ``EXACT_DRAW_LIMIT`` pairs).

    Synapses: ``round(units**2 * (1 - sparsity_level))`` distinct pairs drawn uniformly from all
    ``units**2`` ordered pairs (self-connections included), and at ``build``
    ``round(input_dim * units * (1 - sparsity_level))`` distinct sensory pairs. Polarity: -1 with
    probability 1/3, else +1. Draws come from ``np.random.default_rng(random_seed)``: internal
    pairs then their polarities (``__init__``), sensory pairs then two polarity draws per pair of
    which the second is kept (ncps 1.0.1 adds each sensory synapse twice; we consume the same
    draws but store one synapse).

    When a stage has more than ``EXACT_DRAW_LIMIT`` candidate pairs (e.g.
    ``Random(100_000, sparsity_level=0.999)``), its pairs come from
    :func:`~ncps_mlx.wirings.sampling.sample_without_replacement` instead of ncps's enumeration:
    the same distribution, memory proportional to the synapses kept, different draws.

    Args:
        units: Number of neurons.
        output_dim: Motor neurons ``0..output_dim-1`` (default: all ``units``).
        sparsity_level: Fraction of candidate pairs left out, in ``[0, 1)``.
        random_seed: Seed (int, None or a numpy Generator).
    """

    def __init__(self, units, output_dim=None, sparsity_level=0.0, random_seed=1111):
        super().__init__(units)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        self.sparsity_level = _check_fraction(sparsity_level, "sparsity_level", 0.0, 1.0, False)
        self._random_seed = normalize_seed(random_seed, "random_seed")
        self._rng = np.random.default_rng(self._random_seed)
        src, dst = self._draw_pairs(self.units)
        self.add_synapses(src, dst, self._rng.choice(_NCPS_POLARITY_CHOICES, size=src.size))

    def _build_sensory_synapses(self):
        src, dst = self._draw_pairs(self.input_dim)
        polarity = self._rng.choice(_NCPS_POLARITY_CHOICES, size=2 * src.size)[1::2]
        self.add_sensory_synapses(src, dst, polarity)

    def _draw_pairs(self, num_sources: int) -> tuple[np.ndarray, np.ndarray]:
        """Pick ``round(num_sources * units * density)`` distinct ``(src, dst)`` pairs."""
        candidates = num_sources * self.units
        count = int(np.round(candidates * (1 - self.sparsity_level)))
        if candidates <= EXACT_DRAW_LIMIT:
            # ncps enumerates the pairs row-major and picks rows of that list: same indices.
            flat = self._rng.choice(candidates, size=count, replace=False)
        else:
            flat = sample_without_replacement(self._rng, candidates, count)[0]
        return np.divmod(flat, self.units)

    def _config_args(self):
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "sparsity_level": self.sparsity_level,
            "random_seed": self._random_seed,
        }


class NCP(Wiring):
    """A Neural Circuit Policy: sensory -> inter -> command (recurrent) -> motor layers.

    Neuron ids: motor ``0..M-1``, command ``M..M+C-1``, inter ``M+C..units-1``. Synapses, all
    with polarity -1 or +1 with probability 1/2 each:

    - sensory -> inter: each sensory input to ``sensory_fanout`` distinct inter neurons; every
      inter neuron left without input then gets ``clip(input_dim * sensory_fanout // I, 1,
      input_dim)`` distinct sensory inputs.
    - inter -> command: each inter neuron to ``inter_fanout`` distinct command neurons; orphan
      command neurons get ``clip(I * inter_fanout // C, 1, C)`` inter inputs.
    - command -> command: ``recurrent_command_synapses`` random pairs (repeats overwrite).
    - command -> motor: each motor neuron from ``motor_fanin`` distinct command neurons; command
      neurons without a motor target then get ``clip(M * motor_fanin // C, 1, M)`` targets.

    All synapses are drawn in ``build`` from ``np.random.RandomState(seed)`` in ncps 1.0.1's
    order, so the matrices equal ncps's. When ncps's algorithm would enumerate more than
    ``EXACT_DRAW_LIMIT`` candidate pairs (``input_dim*I + I*C + M*C``), the draws come from a
    vectorised sampler with the same distribution (cost proportional to the synapses).

    Args:
        inter_neurons: Number of inter neurons ``I``.
        command_neurons: Number of command neurons ``C``.
        motor_neurons: Number of motor neurons ``M`` (the output size).
        sensory_fanout: Inter neurons each sensory input reaches (``<= I``).
        inter_fanout: Command neurons each inter neuron reaches (``<= C``).
        recurrent_command_synapses: Number of command -> command draws (``>= 0``).
        motor_fanin: Command neurons feeding each motor neuron (``<= C``).
        seed: Seed (int, None or a numpy Generator).
    """

    def __init__(
        self,
        inter_neurons,
        command_neurons,
        motor_neurons,
        sensory_fanout,
        inter_fanout,
        recurrent_command_synapses,
        motor_fanin,
        seed=22222,
    ):
        self._num_inter_neurons = check_int(inter_neurons, "inter_neurons", minimum=1)
        self._num_command_neurons = check_int(command_neurons, "command_neurons", minimum=1)
        self._num_motor_neurons = check_int(motor_neurons, "motor_neurons", minimum=1)
        super().__init__(
            self._num_inter_neurons + self._num_command_neurons + self._num_motor_neurons
        )
        self.set_output_dim(self._num_motor_neurons)
        self._sensory_fanout = check_int(
            sensory_fanout, "sensory_fanout", minimum=1, maximum=self._num_inter_neurons
        )
        self._inter_fanout = check_int(
            inter_fanout, "inter_fanout", minimum=1, maximum=self._num_command_neurons
        )
        self._recurrent_command_synapses = check_int(
            recurrent_command_synapses, "recurrent_command_synapses", minimum=0
        )
        self._motor_fanin = check_int(
            motor_fanin, "motor_fanin", minimum=1, maximum=self._num_command_neurons
        )
        self._seed = normalize_seed(seed)
        motor_end = self._num_motor_neurons
        command_end = motor_end + self._num_command_neurons
        self._motor_neurons = list(range(0, motor_end))
        self._command_neurons = list(range(motor_end, command_end))
        self._inter_neurons = list(range(command_end, self.units))

    @property
    def num_layers(self):
        return 3

    def get_neurons_of_layer(self, layer_id):
        """Layer 0: inter neurons, 1: command neurons, 2: motor neurons."""
        layer_id = check_int(layer_id, "layer_id", minimum=0, maximum=2)
        return list((self._inter_neurons, self._command_neurons, self._motor_neurons)[layer_id])

    def neuron_types(self):
        types = np.full(self.units, "inter", dtype="<U7")
        types[: self._num_motor_neurons] = "motor"
        types[self._num_motor_neurons : self._num_motor_neurons + self._num_command_neurons] = (
            "command"
        )
        return types

    def get_type_of_neuron(self, neuron_id):
        neuron_id = check_int(neuron_id, "neuron_id", minimum=0, maximum=self.units - 1)
        return str(self.neuron_types()[neuron_id])

    def _candidate_pairs(self) -> int:
        inter, command = self._num_inter_neurons, self._num_command_neurons
        return self.input_dim * inter + inter * command + self._num_motor_neurons * command

    def _build_sensory_synapses(self):
        # ncps draws the whole circuit once the input size is known.
        if self._candidate_pairs() <= EXACT_DRAW_LIMIT:
            draws = ExactNcpDraws(np.random.RandomState(self._seed))
        else:
            draws = FastNcpDraws(np.random.default_rng(self._seed))
        inter0 = self._num_motor_neurons + self._num_command_neurons
        command0 = self._num_motor_neurons
        self.add_sensory_synapses(
            *_fan_with_fixup(
                draws, self.input_dim, 0, self._num_inter_neurons, inter0, self._sensory_fanout
            )
        )
        self.add_synapses(
            *_fan_with_fixup(
                draws,
                self._num_inter_neurons,
                inter0,
                self._num_command_neurons,
                command0,
                self._inter_fanout,
                fixup_max=self._num_command_neurons,  # ncps 1.0.1 clips by the target layer here
            )
        )
        src, dst, polarity = draws.random_pairs(
            self._num_command_neurons, self._recurrent_command_synapses
        )
        self.add_synapses(src + command0, dst + command0, polarity)
        dst, src, polarity = _fan_with_fixup(
            draws,
            self._num_motor_neurons,
            0,
            self._num_command_neurons,
            command0,
            self._motor_fanin,
        )
        self.add_synapses(src, dst, polarity)

    def _config_args(self):
        return {
            "inter_neurons": self._num_inter_neurons,
            "command_neurons": self._num_command_neurons,
            "motor_neurons": self._num_motor_neurons,
            "sensory_fanout": self._sensory_fanout,
            "inter_fanout": self._inter_fanout,
            "recurrent_command_synapses": self._recurrent_command_synapses,
            "motor_fanin": self._motor_fanin,
            "seed": self._seed,
        }


def _fan_with_fixup(draws, num_sources, source0, num_targets, target0, fanout, fixup_max=None):
    """ncps's layer rule: each source reaches ``fanout`` distinct targets; orphans get inputs.

    Each target no source reached gets ``clip(num_sources * fanout // num_targets, 1,
    fixup_max or num_sources)`` distinct sources. Returns ``(src, dst, polarity)`` with ids
    offset by ``source0`` / ``target0``. The caller may read the roles backwards (ncps's
    command -> motor layer draws per motor neuron, a fan-in).
    """
    targets, polarity = draws.fan(num_sources, num_targets, fanout)
    src = np.repeat(np.arange(num_sources), fanout)
    reached = np.zeros(num_targets, bool)
    reached[targets.reshape(-1)] = True
    orphans = np.flatnonzero(~reached)
    fixup_fanin = int(np.clip(num_sources * fanout // num_targets, 1, fixup_max or num_sources))
    fix_sources, fix_polarity = draws.fan(orphans.size, num_sources, fixup_fanin)
    src = np.concatenate([src, fix_sources.reshape(-1)])
    dst = np.concatenate([targets.reshape(-1), np.repeat(orphans, fixup_fanin)])
    polarity = np.concatenate([polarity.reshape(-1), fix_polarity.reshape(-1)])
    return src + source0, dst + target0, polarity


class AutoNCP(NCP):
    """An :class:`NCP` sized from a neuron count and a density (ncps-identical).

    With ``density = 1 - sparsity_level`` and ``n = units - output_size``: ``C = max(int(0.4 n),
    1)`` command and ``I = n - C`` inter neurons, ``sensory_fanout = max(int(I * density), 1)``,
    ``inter_fanout = max(int(C * density), 1)``, ``recurrent_command_synapses = max(int(2 C *
    density), 1)``, ``motor_fanin = max(int(C * density), 1)``.

    Args:
        units: Total number of neurons.
        output_size: Number of motor neurons, ``< units - 2``.
        sparsity_level: In ``[0.1, 1.0]`` as in ncps (0.1 dense, 1.0 minimal fan-outs).
        seed: Seed (int, None or a numpy Generator).
    """

    def __init__(self, units, output_size, sparsity_level=0.5, seed=22222):
        units = check_int(units, "units", minimum=4)
        output_size = check_int(output_size, "output_size", minimum=1, maximum=units - 3)
        self._output_size = output_size
        self._sparsity_level = _check_fraction(sparsity_level, "sparsity_level", 0.1, 1.0, True)
        density = 1.0 - self._sparsity_level
        inter_and_command = units - output_size
        command = max(int(0.4 * inter_and_command), 1)
        inter = inter_and_command - command
        super().__init__(
            inter,
            command,
            output_size,
            sensory_fanout=max(int(inter * density), 1),
            inter_fanout=max(int(command * density), 1),
            recurrent_command_synapses=max(int(command * density * 2), 1),
            motor_fanin=max(int(command * density), 1),
            seed=seed,
        )

    def _config_args(self):
        return {
            "units": self.units,
            "output_size": self._output_size,
            "sparsity_level": self._sparsity_level,
            "seed": self._seed,
        }
