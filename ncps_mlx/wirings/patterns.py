"""Vectorised building blocks for wirings: blocks of synapses between groups of neurons.

:func:`connect` is the primitive every structured wiring is made of: it adds, in one bulk call,
either every ``source -> target`` pair (a dense block) or, for each target, ``fan_in`` distinct
sources drawn uniformly. The patterns of the wiring guide are thin compositions of it:
:func:`add_skip_connection`, :func:`add_residual_block` and :func:`add_attention_head`.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, keyword_aliases
from .base import Wiring
from .sampling import sample_without_replacement
from .synapses import check_indices

__all__ = [
    "connect",
    "connect_one_to_one",
    "draw_polarity",
    "add_skip_connection",
    "add_residual_block",
    "add_attention_head",
]


def _ids(ids, name: str, limit: int, limit_name: str) -> np.ndarray:
    """Neuron ids from a range or an array-like, checked to lie in ``[0, limit)``."""
    array = np.arange(ids.start, ids.stop, ids.step) if isinstance(ids, range) else ids
    array = check_indices(array, name, limit, limit_name)
    if array.size == 0:
        raise ValueError(f"{name} must name at least one neuron")
    return array


def draw_polarity(count: int, polarity, rng: np.random.Generator | None) -> np.ndarray:
    """``count`` polarities: all ``polarity`` (+1 or -1), or ``"random"``: +1 with probability
    2/3 (ncps's rule for random wirings), drawn from ``rng``."""
    if isinstance(polarity, str):
        if polarity != "random":
            raise ValueError(f"polarity must be +1, -1 or 'random', got {polarity!r}")
        if rng is None:
            raise ValueError("polarity='random' needs a random generator (seed)")
        return rng.choice(np.array([-1, 1, 1], np.int8), size=count)
    if polarity not in (1, -1):
        raise ValueError(f"polarity must be +1, -1 or 'random', got {polarity!r}")
    return np.full(count, polarity, np.int8)


def connect(
    wiring: Wiring,
    sources,
    targets,
    fan_in: int | None = None,
    polarity=1,
    rng: np.random.Generator | None = None,
    sensory: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Add synapses from ``sources`` to ``targets`` in one vectorised call.

    Args:
        wiring: The wiring to add to.
        sources: Neuron ids (or sensory input ids if ``sensory``), a range or an array.
        targets: Neuron ids, a range or an array.
        fan_in: None for every ``source -> target`` pair; an int ``k`` for ``k`` distinct
            sources per target, drawn uniformly from ``rng`` (``k <= len(sources)``).
        polarity: +1, -1, or ``"random"`` (+1 with probability 2/3, drawn from ``rng``).
        rng: Generator for the random draws.
        sensory: Whether ``sources`` are sensory inputs (the wiring must be built).

    Returns:
        The ``(src, dst)`` arrays added.
    """
    if sensory:
        wiring._require_built("connect(sensory=True)")
        sources = _ids(sources, "sources", wiring.input_dim, "input_dim")
    else:
        sources = _ids(sources, "sources", wiring.units, "units")
    targets = _ids(targets, "targets", wiring.units, "units")
    if fan_in is None:
        src = np.tile(sources, targets.size)
        dst = np.repeat(targets, sources.size)
    else:
        fan_in = check_int(fan_in, "fan_in", minimum=1, maximum=sources.size)
        if rng is None:
            raise ValueError("a fan_in draw needs a random generator (seed)")
        picks = sample_without_replacement(rng, sources.size, fan_in, rows=targets.size)
        src = sources[picks.reshape(-1)]
        dst = np.repeat(targets, fan_in)
    signs = draw_polarity(src.size, polarity, rng)
    (wiring.add_sensory_synapses if sensory else wiring.add_synapses)(src, dst, signs)
    return src, dst


def connect_one_to_one(wiring: Wiring, sources, targets, polarity=1, rng=None, sensory=False):
    """Add ``sources[i] -> targets[i]`` for every ``i`` (equal lengths)."""
    limit, limit_name = (wiring.input_dim, "input_dim") if sensory else (wiring.units, "units")
    if sensory:
        wiring._require_built("connect_one_to_one(sensory=True)")
    sources = _ids(sources, "sources", limit, limit_name)
    targets = _ids(targets, "targets", wiring.units, "units")
    if sources.size != targets.size:
        raise ValueError(
            f"sources and targets must have equal lengths, got {sources.size} and {targets.size}"
        )
    signs = draw_polarity(sources.size, polarity, rng)
    (wiring.add_sensory_synapses if sensory else wiring.add_synapses)(sources, targets, signs)
    return sources, targets


@keyword_aliases(source_layer="source", target_layer="target")
def add_skip_connection(wiring: Wiring, source, target, fan_in=None, polarity=1, seed=None):
    """Synapses that let ``source`` bypass intermediate neurons into ``target``.

    Every source reaches every target, or each target gets ``fan_in`` random sources;
    excitatory unless ``polarity`` says otherwise. The wiring guide's names ``source_layer``
    and ``target_layer`` work too.
    """
    rng = np.random.default_rng(seed)
    return connect(wiring, source, target, fan_in=fan_in, polarity=polarity, rng=rng)


def add_residual_block(wiring: Wiring, input_range, hidden_range, fan_in=None, seed=None):
    """A residual block ``x -> x + f(x)`` as synapses.

    ``input -> hidden`` (random polarity; the transform ``f``), ``hidden -> input`` (random
    polarity; ``f``'s contribution back onto the residual stream) and an excitatory
    self-synapse on every input neuron (the identity path). ``fan_in`` limits the inputs of
    each neuron of both projections.
    """
    rng = np.random.default_rng(seed)
    inputs = _ids(input_range, "input_range", wiring.units, "units")
    connect(wiring, inputs, hidden_range, fan_in=fan_in, polarity="random", rng=rng)
    hidden = _ids(hidden_range, "hidden_range", wiring.units, "units")
    back_fan_in = None if fan_in is None else min(fan_in, hidden.size)
    connect(wiring, hidden, inputs, fan_in=back_fan_in, polarity="random", rng=rng)
    connect_one_to_one(wiring, inputs, inputs)


def add_attention_head(wiring: Wiring, query_range, key_range, value_range, output_range=None):
    """One attention head as synapses: ``query -> key`` and ``key -> value`` (all pairs,
    excitatory: the score gates the values) and, if given, ``value -> output``."""
    connect(wiring, query_range, key_range)
    connect(wiring, key_range, value_range)
    if output_range is not None:
        connect(wiring, value_range, output_range)
