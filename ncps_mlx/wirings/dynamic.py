"""Wirings whose effective connectivity changes while the model runs or trains.

- :class:`DynamicRoutingWiring`: capsules; the primary -> output capsule synapses are
  modulated at run time by routing-by-agreement coupling coefficients
  (:func:`~ncps_mlx.wirings.routing.routing_coefficients`).
- :class:`AdaptiveWiring`: any wiring whose internal synapses are pruned and regrown during
  training (sparse evolutionary training), keeping the synapse budget (defined with its
  prune-and-grow maths in :mod:`ncps_mlx.wirings.adaptive`, re-exported here).
- :class:`MetaWiring`: a slow population with ordinary learned synapses and a fast population
  whose recurrent synapses carry Hebbian fast weights, updated within a sequence.

The wirings hold the structure and the rule parameters; the cells apply them. Like every
wiring module, this one imports numpy only.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, keyword_aliases, normalize_seed
from .adaptive import AdaptiveWiring, check_real
from .grouped import GroupedWiring
from .patterns import connect, draw_polarity
from .routing import routing_by_agreement, routing_coefficients, squash

__all__ = [
    "DynamicRoutingWiring",
    "AdaptiveWiring",
    "MetaWiring",
    "routing_by_agreement",
    "routing_coefficients",
    "squash",
]


def _optional_int(value, name: str, minimum: int = 1, maximum: int | None = None):
    return None if value is None else check_int(value, name, minimum=minimum, maximum=maximum)


def _sensory_fan_in(fanin: int | None, input_dim: int) -> int | None:
    """A sensory fan-in known before ``input_dim``: clipped to it (None: every input)."""
    return None if fanin is None or fanin >= input_dim else fanin


class DynamicRoutingWiring(GroupedWiring):
    r"""Capsules connected for routing-by-agreement (Sabour et al., 2017).

    Neurons: ``num_capsules`` output capsules of ``capsule_dim`` neurons (group ``"output"``,
    ids ``0..num_capsules*capsule_dim-1``, the motor neurons; capsule ``j`` holds ids
    ``j*capsule_dim ...``) followed by ``num_input_capsules`` primary capsules of
    ``input_capsule_dim`` neurons (group ``"primary"``). Layers: primary, then output.

    Synapses, polarity +1 with probability 2/3 else -1 (ncps's rule), all drawn from
    ``np.random.default_rng(seed)`` in this order:

    1. ``__init__``: primary -> output, every pair (``I*Din * J*D`` synapses; polarities
       drawn target-major: for each output neuron, each primary neuron). These are the
       *routing synapses*: every neuron of primary capsule ``i`` reaches every neuron of
       output capsule ``j``.
    2. ``__init__``, if ``capsule_recurrence``: within every capsule, every ordered pair of its
       neurons, self-connections included (``J*D**2 + I*Din**2`` synapses); output capsules
       first, then primary capsules, each capsule source-major.
    3. ``build``: sensory -> primary: every primary neuron gets ``sensory_fanin`` distinct
       inputs drawn uniformly (None or ``>= input_dim``: every input), then the polarities.

    At run time a cell computes each input capsule's prediction for each output capsule, the
    synaptic drive of capsule ``i`` onto the neurons of capsule ``j``
    (:math:`\hat u_{j|i}[k] = \sum_{s:\ i \to j_k} \text{drive}_s`, gathered with
    :meth:`routing_slots`), runs ``routing_iterations`` of routing-by-agreement, and scales
    every routing synapse ``i -> j`` by the coupling :math:`c_{ij}` (:meth:`routing_pairs`).

    Args:
        num_capsules: Output capsules ``J >= 1``.
        capsule_dim: Neurons per output capsule ``D >= 1`` (the pose-vector length).
        routing_iterations: Routing-by-agreement iterations ``r >= 1``.
        num_input_capsules: Primary capsules ``I`` (default ``J``).
        input_capsule_dim: Neurons per primary capsule ``Din`` (default ``D``).
        sensory_fanin: Sensory inputs per primary neuron (default: all).
        capsule_recurrence: Whether each capsule's neurons are recurrently connected.
        seed: Seed of every draw (int, None or a numpy Generator).
    """

    def __init__(
        self,
        num_capsules,
        capsule_dim,
        routing_iterations=3,
        num_input_capsules=None,
        input_capsule_dim=None,
        sensory_fanin=None,
        capsule_recurrence=True,
        seed=31415,
    ):
        self.num_capsules = check_int(num_capsules, "num_capsules", minimum=1)
        self.capsule_dim = check_int(capsule_dim, "capsule_dim", minimum=1)
        self.routing_iterations = check_int(routing_iterations, "routing_iterations", minimum=1)
        num_input_capsules = num_capsules if num_input_capsules is None else num_input_capsules
        self.num_input_capsules = check_int(num_input_capsules, "num_input_capsules", minimum=1)
        input_capsule_dim = capsule_dim if input_capsule_dim is None else input_capsule_dim
        self.input_capsule_dim = check_int(input_capsule_dim, "input_capsule_dim", minimum=1)
        self.sensory_fanin = _optional_int(sensory_fanin, "sensory_fanin")
        if not isinstance(capsule_recurrence, bool):
            raise TypeError(f"capsule_recurrence must be a bool, got {capsule_recurrence!r}")
        self.capsule_recurrence = capsule_recurrence
        self._seed = normalize_seed(seed)
        num_output = self.num_capsules * self.capsule_dim
        super().__init__(num_output + self.num_input_capsules * self.input_capsule_dim)
        self._define_groups(
            [("output", num_output), ("primary", self.units - num_output)],
            layers=[["primary"], ["output"]],
        )
        self._rng = np.random.default_rng(self._seed)
        connect(self, self.group("primary"), self.group("output"), polarity="random", rng=self._rng)
        if capsule_recurrence:
            src, dst = _within_capsules(self._capsule_starts(), self._capsule_sizes())
            self.add_synapses(src, dst, draw_polarity(src.size, "random", self._rng))

    def _build_sensory_synapses(self):
        fan_in = _sensory_fan_in(self.sensory_fanin, self.input_dim)
        connect(
            self,
            range(self.input_dim),
            self.group("primary"),
            fan_in=fan_in,
            polarity="random",
            rng=self._rng,
            sensory=True,
        )

    def _capsule_starts(self) -> np.ndarray:
        output = np.arange(self.num_capsules) * self.capsule_dim
        primary = self.num_capsules * self.capsule_dim
        primary += np.arange(self.num_input_capsules) * self.input_capsule_dim
        return np.concatenate([output, primary])

    def _capsule_sizes(self) -> np.ndarray:
        return np.repeat(
            [self.capsule_dim, self.input_capsule_dim],
            [self.num_capsules, self.num_input_capsules],
        )

    # ------------------------------------------------------------------ capsules
    def capsule_of_neuron(self) -> np.ndarray:
        """Capsule index of every neuron, shape ``(units,)`` int64, within its population:
        ``0..num_capsules-1`` for output neurons, ``0..num_input_capsules-1`` for primary ones
        (every neuron belongs to a capsule; tell the populations apart with :meth:`group`)."""
        ids = np.arange(self.units)
        num_output = self.num_capsules * self.capsule_dim
        return np.where(
            ids < num_output,
            ids // self.capsule_dim,
            (ids - num_output) // self.input_capsule_dim,
        )

    def position_in_capsule(self) -> np.ndarray:
        """Index of every neuron within its capsule, shape ``(units,)`` int64."""
        ids = np.arange(self.units)
        num_output = self.num_capsules * self.capsule_dim
        return np.where(
            ids < num_output, ids % self.capsule_dim, (ids - num_output) % self.input_capsule_dim
        )

    def routing_pairs(self) -> np.ndarray:
        """For every synapse of :meth:`synapses` (same order): the capsule pair index
        ``i * num_capsules + j`` if it runs from primary capsule ``i`` to output capsule ``j``,
        else -1. Shape ``(S,)`` int64; where ``pairs >= 0``, ``c.reshape(..., I * J)[...,
        pairs]`` is each routing synapse's coupling coefficient."""
        src, dst, _ = self.synapses()
        capsule = self.capsule_of_neuron()
        num_output = self.num_capsules * self.capsule_dim
        routed = (src >= num_output) & (dst < num_output)
        return np.where(routed, capsule[src] * self.num_capsules + capsule[dst], -1)

    def routing_slots(self) -> np.ndarray:
        """For every synapse (order of :meth:`synapses`): where its drive goes in the flattened
        predictions ``u_hat.reshape(..., I * J * D)``: ``pair * capsule_dim + position of dst in
        its capsule``, or -1 for non-routing synapses. Shape ``(S,)`` int64."""
        pairs = self.routing_pairs()
        _, dst, _ = self.synapses()
        slots = pairs * self.capsule_dim + self.position_in_capsule()[dst]
        return np.where(pairs >= 0, slots, -1)

    def routing_coefficients(self, predictions, iterations: int | None = None) -> np.ndarray:
        """:func:`~ncps_mlx.wirings.routing.routing_coefficients` with ``routing_iterations``
        by default; ``predictions`` of shape ``(..., num_input_capsules, num_capsules,
        capsule_dim)``."""
        expected = (self.num_input_capsules, self.num_capsules, self.capsule_dim)
        shape = np.shape(predictions)
        if tuple(shape[-3:]) != expected:
            raise ValueError(f"predictions must have shape (..., {expected}), got {shape}")
        iterations = self.routing_iterations if iterations is None else iterations
        return routing_coefficients(predictions, iterations)

    def _config_args(self):
        return {
            "num_capsules": self.num_capsules,
            "capsule_dim": self.capsule_dim,
            "routing_iterations": self.routing_iterations,
            "num_input_capsules": self.num_input_capsules,
            "input_capsule_dim": self.input_capsule_dim,
            "sensory_fanin": self.sensory_fanin,
            "capsule_recurrence": self.capsule_recurrence,
            "seed": self._seed,
        }


def _within_capsules(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair inside every block ``[start, start+size)``, blocks in order."""
    pairs = sizes * sizes
    block = np.repeat(np.arange(starts.size), pairs)
    offset = np.arange(pairs.sum()) - np.repeat(np.cumsum(pairs) - pairs, pairs)
    size = sizes[block]
    return starts[block] + offset // size, starts[block] + offset % size


class MetaWiring(GroupedWiring):
    r"""A slow, learned population and a fast population with Hebbian fast-weight synapses.

    Neurons: ``output_neurons`` (group ``"output"``, the motor neurons) | ``fast_neurons``
    (``"fast"``) | ``slow_neurons`` (``"slow"``). Layers: slow, fast, output.

    Synapses, polarity +1 with probability 2/3 else -1 (ncps's rule); each target neuron draws
    its fan-in sources uniformly without replacement (a fan-in of None: every source). All
    draws come from ``np.random.default_rng(seed)``, per block the sources then the
    polarities, in this order:

    1. slow -> slow, ``slow_fanin`` per slow neuron;
    2. slow -> fast, ``slow_fanin`` per fast neuron;
    3. slow -> output, ``slow_fanin`` per output neuron;
    4. fast -> fast, ``fast_fanin`` per fast neuron: the **fast synapses**
       (:meth:`fast_synapse_mask`);
    5. fast -> output, ``fast_fanin`` per output neuron;
    6. at ``build``: sensory -> slow, ``sensory_fanin`` per slow neuron (clipped to
       ``input_dim``).

    All synapses carry ordinary learned weights. A fast synapse ``s: i -> k`` also carries a
    fast weight :math:`F_s`, reset to 0 at the start of every sequence and updated after every
    step by the Hebbian rule with decay

    .. math::

        F_s \leftarrow \text{decay} \cdot F_s + \text{learning\_rate} \cdot h_i \, h_k,

    with :math:`h` the new state; the cell adds :math:`F_s` to the synapse's learned weight
    (Ba et al., 2016, "Using fast weights to attend to the recent past").

    The wiring guide's signature ``MetaWiring(fast_weights, slow_weights)`` works as written,
    by position or by keyword: its ``fast_weights`` is read as the number of neurons whose
    synapses carry fast weights (``fast_neurons``), ``slow_weights`` as the number with only
    slow, learned weights (``slow_neurons``), and the readout it leaves unnamed is
    ``output_neurons`` (default 1).

    Args:
        fast_neurons: Size of the fast population (the guide's ``fast_weights``), ``>= 1``.
        slow_neurons: Size of the slow population (the guide's ``slow_weights``), ``>= 1``.
        output_neurons: Motor neurons, ``>= 1``.
        sensory_fanin: Sensory inputs per slow neuron (default: all).
        slow_fanin: Slow sources per slow, fast and output neuron (``<= slow_neurons``;
            default: all).
        fast_fanin: Fast sources per fast and output neuron (``<= fast_neurons``; default: all).
        decay: Fast-weight decay, in ``[0, 1]``.
        learning_rate: Hebbian learning rate, finite, ``>= 0``.
        seed: Seed of every draw (int, None or a numpy Generator).
    """

    @keyword_aliases(fast_weights="fast_neurons", slow_weights="slow_neurons")
    def __init__(
        self,
        fast_neurons,
        slow_neurons,
        output_neurons=1,
        sensory_fanin=None,
        slow_fanin=None,
        fast_fanin=None,
        decay=0.9,
        learning_rate=0.1,
        seed=27182,
    ):
        self._num_fast = check_int(fast_neurons, "fast_neurons", minimum=1)
        self._num_slow = check_int(slow_neurons, "slow_neurons", minimum=1)
        self._num_output = check_int(output_neurons, "output_neurons", minimum=1)
        self.sensory_fanin = _optional_int(sensory_fanin, "sensory_fanin")
        self.slow_fanin = _optional_int(slow_fanin, "slow_fanin", maximum=self._num_slow)
        self.fast_fanin = _optional_int(fast_fanin, "fast_fanin", maximum=self._num_fast)
        self._decay = check_real(decay, "decay", 0.0, 1.0)
        self._learning_rate = check_real(learning_rate, "learning_rate", 0.0)
        self._seed = normalize_seed(seed)
        super().__init__(self._num_output + self._num_fast + self._num_slow)
        self._define_groups(
            [("output", self._num_output), ("fast", self._num_fast), ("slow", self._num_slow)],
            layers=[["slow"], ["fast"], ["output"]],
        )
        self._rng = np.random.default_rng(self._seed)
        slow, fast, output = self.group("slow"), self.group("fast"), self.group("output")
        for sources, targets, fan_in in (
            (slow, slow, self.slow_fanin),
            (slow, fast, self.slow_fanin),
            (slow, output, self.slow_fanin),
            (fast, fast, self.fast_fanin),
            (fast, output, self.fast_fanin),
        ):
            connect(self, sources, targets, fan_in=fan_in, polarity="random", rng=self._rng)

    def _build_sensory_synapses(self):
        fan_in = _sensory_fan_in(self.sensory_fanin, self.input_dim)
        slow = self.group("slow")
        connect(self, range(self.input_dim), slow, fan_in, "random", rng=self._rng, sensory=True)

    @property
    def decay(self) -> float:
        """Fast-weight decay per step (``F <- decay * F + learning_rate * pre * post``)."""
        return self._decay

    @property
    def learning_rate(self) -> float:
        """Hebbian learning rate of the fast weights."""
        return self._learning_rate

    def fast_synapse_mask(self) -> np.ndarray:
        """Bool ``(S,)`` aligned with :meth:`synapses`: True for fast synapses (fast -> fast)."""
        src, dst, _ = self.synapses()
        start, stop = self._groups["fast"]
        return (src >= start) & (src < stop) & (dst >= start) & (dst < stop)

    def _config_args(self):
        return {
            "fast_neurons": self._num_fast,
            "slow_neurons": self._num_slow,
            "output_neurons": self._num_output,
            "sensory_fanin": self.sensory_fanin,
            "slow_fanin": self.slow_fanin,
            "fast_fanin": self.fast_fanin,
            "decay": self._decay,
            "learning_rate": self._learning_rate,
            "seed": self._seed,
        }
