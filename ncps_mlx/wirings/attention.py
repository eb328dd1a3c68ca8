"""Attention as a connectome: ``AttentionWiring`` (self-attention) and ``CrossAttentionWiring``.

A transformer attention block becomes groups of neurons wired head by head. Head ``h`` owns a
contiguous slice of the query, key and value groups; its query slice drives only its key slice
(the score), its key slice gates only its value slice, and its value slice writes only its
share of the output group, so the adjacency between two of these groups is block-diagonal.
Inside a head every pair of neurons is connected (the dot product mixes all of a head's
dimensions). The projections into the attention (from the inputs, or from the output for the
cross-attention's query) and the feed-forward MLP are signed maps; the routing synapses are
excitatory.

**Heads of groups whose size is not a multiple of ``num_heads``** (only the output group, when
``output_size`` is given): head ``h`` owns the interval ``[h/num_heads, (h+1)/num_heads)`` and
neuron ``j`` of an ``n``-neuron group the interval ``[j/n, (j+1)/n)``; head ``h``'s slice is every
neuron whose interval overlaps its own, the ids ``floor(h*n/num_heads) ..
ceil((h+1)*n/num_heads) - 1`` of the group. When ``n`` is a multiple of ``num_heads`` this is the
usual slice of ``n // num_heads`` consecutive neurons; when ``n < num_heads`` several heads pool
into one output neuron, and otherwise a neuron on a head boundary listens to both heads.

**Layers** (signal order, for plots and for the layer-by-layer
:class:`~ncps_mlx.cells.WiredCfCCell`): one group per layer along the attention path, and the
output group last together with the group it drives recurrently (the MLP, or the query of the
cross-attention), so that a wired CfC — which follows synapses between consecutive layers only,
and treats each layer's own recurrence as dense — still closes that loop. The LTC uses every
synapse exactly.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, normalize_seed
from .grouped import GroupedWiring
from .patterns import connect, connect_one_to_one

__all__ = ["AttentionWiring", "CrossAttentionWiring"]


def _head_bounds(size: int, num_heads: int) -> np.ndarray:
    """``(num_heads, 2)`` array of ``[start, stop)`` offsets of each head's slice of a group.

    Head ``h`` gets the neurons whose equal share of ``[0, 1)`` overlaps its own (see the module
    docstring): ``floor(h*size/num_heads) .. ceil((h+1)*size/num_heads)``.
    """
    heads = np.arange(num_heads, dtype=np.int64)
    start = heads * size // num_heads
    stop = -(-(heads + 1) * size // num_heads)
    return np.stack([start, stop], axis=1)


def _optional_int(value, name: str, minimum: int = 1) -> int | None:
    return None if value is None else check_int(value, name, minimum=minimum)


def _clamped(fan_in: int | None, sources: int) -> int | None:
    """A fan-in of ``k`` draws ``min(k, sources)`` distinct sources; None is every source."""
    return None if fan_in is None else min(fan_in, sources)


class _MultiHead:
    """Mixin of the attention wirings (a :class:`GroupedWiring`): heads, per-head blocks, seed.

    Not a ``Wiring`` subclass itself, so it is not registered as a loadable wiring class.
    """

    _head_groups = ("output", "query", "key", "value")

    def _init_heads(self, num_heads: int, seed) -> None:
        self.num_heads = num_heads
        self._seed = normalize_seed(seed)
        self._rng = np.random.default_rng(self._seed)

    def head_neurons(self, group: str, head: int) -> np.ndarray:
        """Neuron ids of head ``head``'s slice of ``group`` (one of the headed groups)."""
        if group not in self._head_groups:
            raise ValueError(f"group must be one of {list(self._head_groups)}, got {group!r}")
        head = check_int(head, "head", minimum=0, maximum=self.num_heads - 1)
        start, stop = _head_bounds(self.group_size(group), self.num_heads)[head]
        return self.group(group)[start:stop]

    def _connect_per_head(self, source: str, target: str) -> None:
        """Excitatory block ``source slice h -> target slice h`` (all pairs) for every head."""
        for head in range(self.num_heads):
            connect(self, self.head_neurons(source, head), self.head_neurons(target, head))

    def _connect_residual(self) -> None:
        """An excitatory self-synapse on every output neuron (the residual / identity path)."""
        output = self.group("output")
        connect_one_to_one(self, output, output)


def _check_divisible(sizes: dict[str, int], num_heads: int) -> None:
    for name, size in sizes.items():
        if size % num_heads:
            raise ValueError(f"{name}={size} must be divisible by num_heads={num_heads}")


class AttentionWiring(_MultiHead, GroupedWiring):
    """Multi-head self-attention with a feed-forward MLP around the output (residual) stream.

    Neurons, in id order: ``output`` (``output_size``, default ``hidden_size``; the motor
    neurons), ``query``, ``key``, ``value`` (``hidden_size`` each) and ``ff`` (``ff_size``).
    Head ``h`` owns ``head_dim = hidden_size // num_heads`` consecutive neurons of query, key and
    value, and the slice of the output given by the module's overlap rule (with the default
    ``output_size`` exactly its ``head_dim`` neurons): see :meth:`head_neurons`.

    Synapses, in the order they are made (blocks marked *random* draw from
    ``np.random.default_rng(seed)``: first the sources of a fan-in block, one row per target in
    target order, then one polarity per synapse in target-major order, +1 with probability 2/3):

    In ``__init__``:

    1. query slice h -> key slice h, every pair, excitatory, for each head.
    2. key slice h -> value slice h, every pair, excitatory, for each head.
    3. value slice h -> output slice h, every pair, excitatory, for each head.
    4. output j -> output j (self-synapse, the residual path), excitatory.
    5. output -> ff, *random*: each ff neuron from ``min(ff_fanin, output_size)`` distinct
       output neurons (all of them if ``ff_fanin`` is None).
    6. ff -> output, *random*: each output neuron from ``min(ff_fanin, ff_size)`` distinct ff
       neurons (all if None).

    In ``build(input_dim)`` (all sensory inputs are the token features):

    7. sensory -> query, 8. sensory -> key, 9. sensory -> value, *random*: each neuron from
       ``min(sensory_fanin, input_dim)`` distinct inputs (all if None).

    Hence ``synapse_count = 2*hidden_size*head_dim + head_dim*sum_h |output slice h| +
    output_size + ff_size*min(ff_fanin, output_size) + output_size*min(ff_fanin, ff_size)``
    (the ``head_dim*sum`` term is ``hidden_size*head_dim`` for the default output size) and
    ``sensory_synapse_count = 3*hidden_size*min(sensory_fanin, input_dim)``.

    Layers: ``[query], [key], [value], [output, ff]`` (see the module docstring): a wired CfC
    reads the inputs through the query neurons and keeps the output <-> ff loop in its last layer.

    The wiring guide's ``AttentionWiring(hidden_size, num_heads, ff_size)`` works as written. The
    guide counts ``4 * hidden_size`` units (query, key, value, output) and leaves out the
    feed-forward part it takes ``ff_size`` for; here that MLP has its ``ff_size`` neurons, so
    ``units = 4 * hidden_size + ff_size`` with the default ``output_size``.

    Args:
        hidden_size: Neurons of each of query, key, value; divisible by ``num_heads``.
        num_heads: Number of attention heads.
        ff_size: Neurons of the feed-forward MLP.
        output_size: Output (motor) neurons; default ``hidden_size``.
        sensory_fanin: Inputs per query/key/value neuron; None for all.
        ff_fanin: Sources per neuron of the two MLP projections; None for all.
        seed: Seed of the draws (int, None or a numpy Generator; stored as an int).
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        ff_size,
        output_size=None,
        sensory_fanin=None,
        ff_fanin=None,
        seed=1111,
    ):
        self.hidden_size = check_int(hidden_size, "hidden_size", minimum=1)
        num_heads = check_int(num_heads, "num_heads", minimum=1)
        _check_divisible({"hidden_size": self.hidden_size}, num_heads)
        self.ff_size = check_int(ff_size, "ff_size", minimum=1)
        self.output_size = (
            self.hidden_size
            if output_size is None
            else check_int(output_size, "output_size", minimum=1)
        )
        self.sensory_fanin = _optional_int(sensory_fanin, "sensory_fanin")
        self.ff_fanin = _optional_int(ff_fanin, "ff_fanin")
        self.head_dim = self.hidden_size // num_heads
        super().__init__(self.output_size + 3 * self.hidden_size + self.ff_size)
        self._init_heads(num_heads, seed)
        sizes = [("output", self.output_size)]
        sizes += [(name, self.hidden_size) for name in ("query", "key", "value")]
        self._define_groups(
            sizes + [("ff", self.ff_size)],
            layers=[["query"], ["key"], ["value"], ["output", "ff"]],
        )
        self._build_attention()
        self._build_feed_forward()

    def _build_attention(self) -> None:
        self._connect_per_head("query", "key")
        self._connect_per_head("key", "value")
        self._connect_per_head("value", "output")
        self._connect_residual()

    def _build_feed_forward(self) -> None:
        output, ff = self.group("output"), self.group("ff")
        for source, target in ((output, ff), (ff, output)):
            fan_in = _clamped(self.ff_fanin, source.size)
            connect(self, source, target, fan_in=fan_in, polarity="random", rng=self._rng)

    def _build_sensory_synapses(self) -> None:
        inputs = np.arange(self.input_dim)
        fan_in = _clamped(self.sensory_fanin, self.input_dim)
        for name in ("query", "key", "value"):
            connect(self, inputs, self.group(name), fan_in, "random", rng=self._rng, sensory=True)

    def _config_args(self) -> dict:
        return {
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "ff_size": self.ff_size,
            "output_size": self.output_size,
            "sensory_fanin": self.sensory_fanin,
            "ff_fanin": self.ff_fanin,
            "seed": self._seed,
        }


class CrossAttentionWiring(_MultiHead, GroupedWiring):
    """Multi-head cross-attention: the circuit's output state attends over an external context.

    Every sensory input is context (an encoder's features, a goal, a map); the queries come from
    the circuit itself — the output neurons project onto the query neurons, as a decoder's state
    forms its query. The context reaches the value neurons through two paths, directly and
    through the key neurons, whose activity is the query-key score of the head: the score gates
    the flow from context to values, head by head.

    Neurons, in id order: ``output`` (``output_size``, default ``value_size``; the motor
    neurons), ``query`` (``query_size``), ``key`` (``key_size``), ``value`` (``value_size``).
    Head ``h`` owns ``size // num_heads`` consecutive neurons of query, key and value, and the
    slice of the output given by the module's overlap rule (with the default ``output_size``
    exactly ``value_size // num_heads`` neurons): see :meth:`head_neurons`.

    Synapses, in the order they are made (*random* blocks draw from
    ``np.random.default_rng(seed)`` as in :class:`AttentionWiring`: fan-in sources first, then
    one polarity per synapse in target-major order, +1 with probability 2/3):

    In ``__init__``:

    1. output -> query, *random*: each query neuron from ``min(query_fanin, output_size)``
       distinct output neurons (all if None).
    2. query slice h -> key slice h, every pair, excitatory, for each head.
    3. key slice h -> value slice h, every pair, excitatory, for each head (the gate).
    4. value slice h -> output slice h, every pair, excitatory, for each head.
    5. output j -> output j (self-synapse, the residual path), excitatory.

    In ``build(input_dim)`` (all ``input_dim`` inputs are the context):

    6. context -> key, 7. context -> value, *random*: each neuron from
       ``min(context_fanin, input_dim)`` distinct inputs (all if None).

    Hence ``synapse_count = query_size*min(query_fanin, output_size) + (query_size*key_size +
    key_size*value_size) / num_heads + (value_size/num_heads)*sum_h |output slice h| +
    output_size`` and ``sensory_synapse_count = (key_size + value_size)*min(context_fanin,
    input_dim)``.

    Layers: ``[key], [value], [output, query]`` (see the module docstring): a wired CfC reads
    the context through the key neurons and keeps the output <-> query loop in its last layer.

    The wiring guide's ``CrossAttentionWiring(query_size, key_size, value_size, num_heads)``
    works as written. The guide counts ``query_size + value_size`` units; here the key neurons
    (which carry each head's score, the gate) and the output group (default ``value_size``)
    are neurons too.

    Args:
        query_size, key_size, value_size: Neurons of each group; divisible by ``num_heads``.
        num_heads: Number of attention heads.
        output_size: Output (motor) neurons; default ``value_size``.
        context_fanin: Context inputs per key/value neuron; None for all.
        query_fanin: Output neurons per query neuron; None for all.
        seed: Seed of the draws (int, None or a numpy Generator; stored as an int).
    """

    def __init__(
        self,
        query_size,
        key_size,
        value_size,
        num_heads,
        output_size=None,
        context_fanin=None,
        query_fanin=None,
        seed=1111,
    ):
        self.query_size = check_int(query_size, "query_size", minimum=1)
        self.key_size = check_int(key_size, "key_size", minimum=1)
        self.value_size = check_int(value_size, "value_size", minimum=1)
        num_heads = check_int(num_heads, "num_heads", minimum=1)
        _check_divisible(
            {
                "query_size": self.query_size,
                "key_size": self.key_size,
                "value_size": self.value_size,
            },
            num_heads,
        )
        self.output_size = (
            self.value_size
            if output_size is None
            else check_int(output_size, "output_size", minimum=1)
        )
        self.context_fanin = _optional_int(context_fanin, "context_fanin")
        self.query_fanin = _optional_int(query_fanin, "query_fanin")
        super().__init__(self.output_size + self.query_size + self.key_size + self.value_size)
        self._init_heads(num_heads, seed)
        self._define_groups(
            [
                ("output", self.output_size),
                ("query", self.query_size),
                ("key", self.key_size),
                ("value", self.value_size),
            ],
            layers=[["key"], ["value"], ["output", "query"]],
        )
        output = self.group("output")
        fan_in = _clamped(self.query_fanin, output.size)
        connect(self, output, self.group("query"), fan_in, "random", rng=self._rng)
        self._connect_per_head("query", "key")
        self._connect_per_head("key", "value")
        self._connect_per_head("value", "output")
        self._connect_residual()

    def _build_sensory_synapses(self) -> None:
        context = np.arange(self.input_dim)
        fan_in = _clamped(self.context_fanin, self.input_dim)
        for name in ("key", "value"):
            connect(self, context, self.group(name), fan_in, "random", rng=self._rng, sensory=True)

    def _config_args(self) -> dict:
        return {
            "query_size": self.query_size,
            "key_size": self.key_size,
            "value_size": self.value_size,
            "num_heads": self.num_heads,
            "output_size": self.output_size,
            "context_fanin": self.context_fanin,
            "query_fanin": self.query_fanin,
            "seed": self._seed,
        }
