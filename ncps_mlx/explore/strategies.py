"""Composition strategies: new :class:`~ncps_mlx.explore.Architecture` s from a
:class:`~ncps_mlx.explore.ComponentRegistry`.

* :func:`greedy` starts from a layer and appends the most compatible next layer.
* :func:`random_walk` draws each next layer from ``softmax(score / temperature)`` and draws the
  options and the wiring from the registry's candidates.
* :func:`mutate` swaps layers, options and the wiring of an architecture at a rate.
* :func:`crossover` joins a prefix of one parent's pattern to a suffix of the other's.

Every function draws only from ``np.random.default_rng(seed)`` (``seed`` an int, or a numpy
Generator that gives one draw), iterating over sorted names, so the same inputs and seed give
the same architecture in any process. Every result builds at its width: an option its layers
read that does not fit ``hidden_size`` — given, inherited or the layer's default (rwkv's head
size 64 does not tile a width of 32) — is redrawn from the registry's valid candidates, and
options no layer of the pattern reads are dropped.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_int, normalize_seed
from ..hybrid.models.builder import HybridBuilder
from .architecture import Architecture, option_defaults
from .registry import ComponentRegistry, check_hidden_size

__all__ = ["STRATEGIES", "crossover", "greedy", "mutate", "propose", "random_walk"]

_ATTEMPTS_PER_PROPOSAL = 20  # propose gives up after this many draws per architecture asked


def _generator(seed) -> np.random.Generator:
    return np.random.default_rng(normalize_seed(seed))


def _pick(rng: np.random.Generator, items, weights=None):
    """One of ``items``, uniformly or with probability proportional to ``weights``."""
    items = list(items)
    if weights is None:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def _check_layer(registry: ComponentRegistry, layer, name: str) -> str:
    if layer not in registry.layers():
        raise ValueError(f"{name} must be a layer type, got {layer!r}; valid: {registry.layers()}")
    return layer


def _check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(f"rate must be a number in [0, 1], got {rate!r}")
    return float(rate)


def _read_options(pattern) -> list[str]:
    """The builder options read by the layers of ``pattern``, sorted."""
    return sorted({o for name in set(pattern) for o in HybridBuilder._registry[name].options})


def _searched_options(registry: ComponentRegistry, pattern, hidden_size: int) -> list[str]:
    return sorted({o for name in set(pattern) for o in registry.layer_options(name, hidden_size)})


def _default(option: str, pattern) -> object:
    """The default of ``option`` for the first layer of ``pattern`` that reads it."""
    readers = [name for name in pattern if option in HybridBuilder._registry[name].options]
    return option_defaults(readers[0]).get(option)


def _fit_options(registry, pattern, hidden_size: int, options: dict, rng) -> dict:
    """``options`` restricted to those ``pattern`` reads, each value (or default) that does not
    fit ``hidden_size`` redrawn from the valid candidates."""
    read = _read_options(pattern)
    options = {option: value for option, value in options.items() if option in read}
    for option in read:
        value = options.get(option, _default(option, pattern))
        if registry.fits(option, value, hidden_size, options):
            continue
        candidates = registry.valid_values(option, hidden_size, options)
        if not candidates:
            raise ValueError(
                f"no value of {option} fits hidden_size={hidden_size} with options {options}"
            )
        options[option] = _pick(rng, candidates)
    return options


def _draw_options(registry, pattern, hidden_size: int, rng) -> dict:
    """A valid candidate value for every searched option of ``pattern``."""
    options = {}
    for option in _searched_options(registry, pattern, hidden_size):
        options[option] = _pick(rng, registry.valid_values(option, hidden_size, options))
    return options


def _next_scores(registry: ComponentRegistry, previous: str, layers) -> np.ndarray:
    return np.array([registry.score(previous, layer) for layer in layers])


def greedy(
    registry: ComponentRegistry,
    start: str,
    length: int,
    hidden_size: int = 64,
    seed=0,
    options: dict | None = None,
    wiring=None,
) -> Architecture:
    """Start with layer ``start`` and append the most compatible next layer each time.

    Args:
        registry: Layers and scores.
        start: The first layer.
        length: Number of layers (>= 1).
        hidden_size: Width (a positive multiple of 8).
        seed: Breaks ties between equally compatible layers.
        options: Builder options (they must fit ``hidden_size``); defaults that do not fit it
            are replaced by valid candidates.
        wiring: A wiring spec or :class:`~ncps_mlx.wirings.Wiring` masking every projection, or
            None.

    Raises:
        ValueError: On an unknown ``start``, a ``length`` below 1, a bad ``hidden_size``, or
            ``options`` that are unknown or do not fit ``hidden_size``.
    """
    rng = _generator(seed)
    pattern = [_check_layer(registry, start, "start")]
    length = check_int(length, "length", minimum=1)
    hidden_size = check_hidden_size(hidden_size)
    options = dict(options or {})
    HybridBuilder._check_options(options)
    for option, value in sorted(options.items()):
        if not registry.fits(option, value, hidden_size, options):
            raise ValueError(f"options: {option}={value!r} does not fit hidden_size={hidden_size}")
    layers = registry.layers()
    while len(pattern) < length:
        scores = _next_scores(registry, pattern[-1], layers)
        pattern.append(_pick(rng, [layers[i] for i in np.flatnonzero(scores == scores.max())]))
    options = _fit_options(registry, pattern, hidden_size, options, rng)
    return Architecture(tuple(pattern), hidden_size, options, wiring)


def random_walk(
    registry: ComponentRegistry,
    length: int,
    temperature: float = 1.0,
    hidden_size: int = 64,
    seed=0,
    start: str | None = None,
) -> Architecture:
    """A random pattern whose next layer is drawn with probability ``softmax(score / T)``.

    Small temperatures approach :func:`greedy` (ties split evenly), large ones a uniform walk.
    Every searched option of the pattern's layers is drawn uniformly from its valid candidates,
    and the wiring uniformly from :meth:`ComponentRegistry.wiring_specs` (None included).

    Args:
        registry: Layers, scores, options and wirings.
        length: Number of layers (>= 1).
        temperature: ``T`` (> 0).
        hidden_size: Width (a positive multiple of 8).
        seed: Seed of every draw.
        start: The first layer (None: drawn uniformly).

    Raises:
        ValueError: On a bad ``length``, ``temperature``, ``hidden_size`` or ``start``.
    """
    rng = _generator(seed)
    length = check_int(length, "length", minimum=1)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
    hidden_size = check_hidden_size(hidden_size)
    layers = registry.layers()
    pattern = [_pick(rng, layers) if start is None else _check_layer(registry, start, "start")]
    while len(pattern) < length:
        scores = _next_scores(registry, pattern[-1], layers)
        pattern.append(_pick(rng, layers, np.exp((scores - scores.max()) / temperature)))
    options = _draw_options(registry, pattern, hidden_size, rng)
    wiring = _pick(rng, registry.wiring_specs(hidden_size))
    return Architecture(tuple(pattern), hidden_size, options, wiring)


def _neighbour_score(registry, pattern, index: int, layer: str) -> float:
    """Mean score of ``layer`` at ``pattern[index]`` with its neighbours (1 with none)."""
    scores = [registry.score(pattern[index - 1], layer)] if index > 0 else []
    if index + 1 < len(pattern):
        scores.append(registry.score(layer, pattern[index + 1]))
    return sum(scores) / len(scores) if scores else 1.0


def mutate(
    architecture: Architecture, registry: ComponentRegistry, rate: float = 0.3, seed=0
) -> Architecture:
    """A copy of ``architecture`` with layers, options and wiring redrawn at ``rate``.

    In order: each layer (left to right) is replaced, with probability ``rate``, by another
    layer type drawn with probability proportional to its mean score with its (current)
    neighbours; each searched option of the new pattern's layers is redrawn from its valid
    candidates with probability ``rate``; the wiring is replaced by another of the registry's
    wiring choices with probability ``rate``. Width and sharing are kept. At ``rate=0`` a valid
    architecture comes back unchanged.

    Raises:
        ValueError: On a ``rate`` outside ``[0, 1]`` or a width that is not a multiple of 8.
    """
    if not isinstance(architecture, Architecture):
        raise TypeError(f"architecture must be an Architecture, got {type(architecture).__name__}")
    rate = _check_rate(rate)
    rng = _generator(seed)
    hidden_size = check_hidden_size(architecture.hidden_size)
    layers, pattern = registry.layers(), list(architecture.pattern)
    for index, current in enumerate(pattern):
        alternatives = [name for name in layers if name != current]
        if rng.random() >= rate or not alternatives:
            continue
        weights = [_neighbour_score(registry, pattern, index, name) for name in alternatives]
        pattern[index] = _pick(rng, alternatives, weights if sum(weights) > 0 else None)
    options = dict(architecture.options)
    for option in _searched_options(registry, pattern, hidden_size):
        candidates = registry.valid_values(option, hidden_size, options)
        if rng.random() < rate and candidates:
            options[option] = _pick(rng, candidates)
    wiring = architecture.wiring
    if rng.random() < rate:
        wiring = _pick(rng, [s for s in registry.wiring_specs(hidden_size) if s != wiring])
    options = _fit_options(registry, pattern, hidden_size, options, rng)
    return Architecture(tuple(pattern), hidden_size, options, wiring, architecture.shared)


def crossover(
    first: Architecture,
    second: Architecture,
    seed=0,
    registry: ComponentRegistry | None = None,
) -> Architecture:
    """One-point crossover: a prefix of one parent's pattern, then a suffix of the other's.

    The parent giving the prefix is drawn, then a non-empty prefix ``head[:i]`` and a non-empty
    suffix ``tail[j:]`` (``1 <= i <= len(head)``, ``0 <= j < len(tail)``). Each option of
    either parent comes from a parent drawn for it (an option the drawn parent does not set
    stays at its default). Width, wiring and sharing come together from one drawn parent (the
    registry's wirings are sized for their width). Options that do not fit the width are
    redrawn from ``registry`` (default: a fresh :class:`ComponentRegistry`).

    Raises:
        ValueError: If the chosen width is not a multiple of 8.
    """
    for name, parent in (("first", first), ("second", second)):
        if not isinstance(parent, Architecture):
            raise TypeError(f"{name} must be an Architecture, got {type(parent).__name__}")
    registry = ComponentRegistry() if registry is None else registry
    rng = _generator(seed)
    parents = (first, second)
    head, tail = parents if rng.random() < 0.5 else parents[::-1]
    cut_head = int(rng.integers(1, len(head.pattern) + 1))
    cut_tail = int(rng.integers(0, len(tail.pattern)))
    pattern = head.pattern[:cut_head] + tail.pattern[cut_tail:]
    options = {}
    for option in sorted(set(first.options) | set(second.options)):
        donor = parents[int(rng.integers(2))]
        if option in donor.options:
            options[option] = donor.options[option]
    base = parents[int(rng.integers(2))]
    hidden_size = check_hidden_size(base.hidden_size)
    options = _fit_options(registry, pattern, hidden_size, options, rng)
    return Architecture(pattern, hidden_size, options, base.wiring, base.shared)


#: Strategy name -> function (the names :func:`propose` and the command line accept).
STRATEGIES = {"greedy": greedy, "random": random_walk, "mutate": mutate, "crossover": crossover}


def _parents(rng, parents: list, count: int, walk) -> list:
    """``count`` distinct parents drawn from ``parents``, topped up with random walks."""
    if len(parents) >= count:
        return [parents[int(i)] for i in rng.choice(len(parents), count, replace=False)]
    return parents + [walk() for _ in range(count - len(parents))]


def _proposal(strategy, registry, rng, parents, hidden_size, length, temperature, rate):
    def walk():
        return random_walk(registry, length, temperature, hidden_size, rng)

    if strategy == "greedy":
        return greedy(registry, _pick(rng, registry.layers()), length, hidden_size, rng)
    if strategy == "random":
        return walk()
    if strategy == "mutate":
        return mutate(_parents(rng, parents, 1, walk)[0], registry, rate, rng)
    return crossover(*_parents(rng, parents, 2, walk), rng, registry)


def propose(
    registry: ComponentRegistry,
    strategy: str,
    count: int,
    seed=0,
    hidden_size: int = 64,
    length: int = 4,
    temperature: float = 1.0,
    rate: float = 0.3,
    parents=(),
) -> list[Architecture]:
    """Up to ``count`` distinct new architectures from one strategy (for the search).

    ``greedy`` starts each from a uniformly drawn layer; ``random`` walks at ``temperature``;
    ``mutate`` mutates a drawn parent at ``rate``; ``crossover`` crosses two distinct drawn
    parents. Missing parents (fewer than the strategy needs) are random walks of ``length``
    layers at ``hidden_size``. Results are distinct by :meth:`Architecture.key` and differ from
    the parents; after ``20 * count`` draws the list is returned even if shorter (a small space,
    e.g. greedy patterns of one layer, or ``rate=0``).

    Raises:
        ValueError: On an unknown ``strategy`` or bad numbers (naming the argument).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}")
    count = check_int(count, "count", minimum=0)
    length = check_int(length, "length", minimum=1)
    hidden_size = check_hidden_size(hidden_size)
    rate = _check_rate(rate)
    parents = list(parents)
    if not all(isinstance(parent, Architecture) for parent in parents):
        raise TypeError("parents must be Architectures")
    widths = sorted({parent.hidden_size for parent in parents if parent.hidden_size % 8})
    if widths:
        raise ValueError(f"parents must have widths that are multiples of 8, got {widths}")
    rng = _generator(seed)
    seen, found = {parent.key() for parent in parents}, []
    for _ in range(_ATTEMPTS_PER_PROPOSAL * count):
        if len(found) == count:
            break
        child = _proposal(strategy, registry, rng, parents, hidden_size, length, temperature, rate)
        if child.key() not in seen:
            seen.add(child.key())
            found.append(child)
    return found
