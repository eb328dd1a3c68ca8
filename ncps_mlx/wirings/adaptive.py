"""``AdaptiveWiring``: a wiring rewired during training by pruning and regrowth (SET / RigL).

Synapses are identified by their flat key ``src * units + dst``; a wiring's ``synapses()`` are
sorted by ``(src, dst)``, so their keys are sorted and unique. The prune-and-grow maths below is
vectorised: its cost is proportional to the synapses (and to ``units**2`` only where the caller
passes a dense ``(units, units)`` score matrix). Numpy only, like every wiring module.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_int, keyword_aliases, normalize_seed
from .base import Wiring
from .classic import Random
from .patterns import draw_polarity
from .sampling import sample_without_replacement

__all__ = ["AdaptiveWiring", "check_real"]


def check_real(value, name: str, low: float, high: float | None = None) -> float:
    """``value`` as a finite float in ``[low, high]`` (``high=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value) or value < low or (high is not None and value > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be finite and in {bounds}, got {value}")
    return value


def _check_polarity_rule(value, name: str):
    if isinstance(value, str) and value == "random":
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value in (1, -1):
        return int(value)
    raise ValueError(f"{name} must be +1, -1 or 'random', got {value!r}")


class AdaptiveWiring(Wiring):
    """A wiring whose internal synapses are pruned and regrown during training (SET).

    Starts as a copy of a base wiring (its neurons, groups/types, layers, time scales,
    ``output_dim``, internal and sensory synapses). :meth:`update_connectivity` then rewires
    the internal synapses (sparse evolutionary training, Mocanu et al. 2018; with
    ``growth_scores``, gradient-based regrowth as in RigL, Evci et al. 2020):

    - **prune** ``k = min(round(prune_fraction * S), units**2 - S)`` of the ``S`` internal
      synapses: those with the lowest importance (ties: the earlier synapse in
      :meth:`synapses` order);
    - **grow** ``k`` synapses among the ordered pairs (self-connections included) that had no
      synapse before the update: the ``k`` highest ``growth_scores`` (ties: lower
      ``src * units + dst``), or without scores ``k`` pairs drawn uniformly;
    - new synapses get polarity ``growth_polarity`` (``"random"``: +1 with probability 2/3,
      else -1, ncps's rule).

    So the synapse count is unchanged. Sensory synapses are never rewired. Randomness: update
    number ``v`` (``connectivity_version`` before the call) draws from
    ``np.random.default_rng([seed, v])``: the pairs (uniform growth only), then the
    polarities; so a wiring restored with :meth:`from_config` continues the same sequence.
    Synapses the base draws in its ``build`` (an :class:`~ncps_mlx.wirings.NCP` draws its
    whole circuit there) are added when this wiring is built.

    The wiring guide's ``AdaptiveWiring`` keeps :class:`Wiring`'s constructor, so
    ``AdaptiveWiring(units)`` and ``AdaptiveWiring(units=...)`` work (an int base), as does its
    ``update_connectivity(importance_scores)``.

    Args:
        base_wiring_or_units: A :class:`Wiring` (copied, via its config), a config dict from
            ``Wiring.get_config()``, or an int ``units`` for
            ``Random(units, output_dim, sparsity_level, random_seed=seed)``.
        prune_fraction: Fraction of the internal synapses rewired per update, in ``[0, 1]``.
        growth_polarity: +1, -1 or ``"random"``.
        seed: Seed (int, None or a numpy Generator) of the updates (and of the default base).
        output_dim: Motor neurons of the default base (int ``units`` only; default all).
        sparsity_level: Sparsity of the default base (int ``units`` only; default 0.5).
        connectivity_version: Number of updates already made (restored by ``from_config``).
    """

    @keyword_aliases(units="base_wiring_or_units")
    def __init__(
        self,
        base_wiring_or_units,
        prune_fraction=0.1,
        growth_polarity="random",
        seed=4242,
        output_dim=None,
        sparsity_level=None,
        connectivity_version=0,
    ):
        self._prune_fraction = check_real(prune_fraction, "prune_fraction", 0.0, 1.0)
        self._growth_polarity = _check_polarity_rule(growth_polarity, "growth_polarity")
        self._seed = normalize_seed(seed)
        self._version = check_int(connectivity_version, "connectivity_version", minimum=0)
        base = _base_wiring(base_wiring_or_units, self._seed, output_dim, sparsity_level)
        super().__init__(base.units)
        self._base = base
        if base.output_dim is not None:
            self.set_output_dim(base.output_dim)
        self._synapses.replace(*base.synapses())
        if base.input_dim is not None:
            self.set_input_dim(base.input_dim)
            if base._sensory_drawn:
                self._sensory_drawn = True
                self._sensory.replace(*base.sensory_synapses())

    def _build_sensory_synapses(self):
        before = _keys(*self._base.synapses()[:2], self.units)
        self._base.build(self.input_dim)
        src, dst, polarity = self._base.synapses()
        new = ~np.isin(_keys(src, dst, self.units), before)
        self.add_synapses(src[new], dst[new], polarity[new])
        self._sensory.replace(*self._base.sensory_synapses())

    # ------------------------------------------------------------------ rewiring
    @property
    def prune_fraction(self) -> float:
        return self._prune_fraction

    @property
    def growth_polarity(self):
        return self._growth_polarity

    @property
    def connectivity_version(self) -> int:
        """Number of :meth:`update_connectivity` calls so far (cells compare it to refresh)."""
        return self._version

    @property
    def base_wiring(self) -> Wiring:
        """A copy of the base wiring (its original synapses)."""
        return Wiring.from_config(self._base.get_config())

    def update_connectivity(self, importance_scores, growth_scores=None):
        """Prune the least important internal synapses and grow as many new ones.

        Args:
            importance_scores: Dense ``(units, units)`` (e.g. ``|w| * |grad w|``) or one score
                per synapse, ``(S,)`` in :meth:`synapses` order. Finite reals.
            growth_scores: Optional dense ``(units, units)`` finite scores (e.g. ``|grad|`` of
                the dense weight); the highest-scoring new pairs grow. None: uniform draw.

        Returns:
            ``(pruned_src, pruned_dst, grown_src, grown_dst)`` int64 arrays of ``k`` synapses
            each, sorted by ``(src, dst)``. ``connectivity_version`` is incremented (also
            when ``k == 0``).
        """
        src, dst, polarity = self.synapses()
        importance = synapse_scores(importance_scores, "importance_scores", src, dst, self.units)
        if growth_scores is not None:
            growth_scores = score_matrix(growth_scores, "growth_scores", self.units)
        keys = _keys(src, dst, self.units)
        count = min(int(round(self._prune_fraction * keys.size)), self.units**2 - keys.size)
        rng = np.random.default_rng([self._seed, self._version])
        pruned = lowest(importance, count)
        if growth_scores is None:
            grown = grow_uniform(keys, self.units**2, count, rng)
        else:
            grown = grow_top(keys, growth_scores, count)
        grown_src, grown_dst = np.divmod(grown, self.units)
        keep = np.ones(keys.size, bool)
        keep[pruned] = False
        self._synapses.replace(
            np.concatenate([src[keep], grown_src]),
            np.concatenate([dst[keep], grown_dst]),
            np.concatenate([polarity[keep], draw_polarity(count, self._growth_polarity, rng)]),
        )
        self._version += 1
        as_int64 = (a.astype(np.int64) for a in (src[pruned], dst[pruned], grown_src, grown_dst))
        return tuple(as_int64)

    # ------------------------------------------------------------------ the base's neurons
    @property
    def num_layers(self) -> int:
        return self._base.num_layers

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        return self._base.get_neurons_of_layer(layer_id)

    def neuron_types(self) -> np.ndarray:
        return self._base.neuron_types()

    def get_type_of_neuron(self, neuron_id: int) -> str:
        return self._base.get_type_of_neuron(neuron_id)

    def neuron_time_scales(self) -> np.ndarray:
        return self._base.neuron_time_scales()

    def _config_args(self):
        return {
            "base_wiring_or_units": self._base.get_config(),
            "prune_fraction": self._prune_fraction,
            "growth_polarity": self._growth_polarity,
            "seed": self._seed,
            "connectivity_version": self._version,
        }


def _base_wiring(base, seed: int, output_dim, sparsity_level) -> Wiring:
    if isinstance(base, (Wiring, dict)):
        for name, value in (("output_dim", output_dim), ("sparsity_level", sparsity_level)):
            if value is not None:
                raise ValueError(f"{name} applies only when base_wiring_or_units is an int")
        return Wiring.from_config(base.get_config() if isinstance(base, Wiring) else base)
    if isinstance(base, bool) or not isinstance(base, numbers.Integral):
        raise TypeError(
            "base_wiring_or_units must be a Wiring, a wiring config dict or an int, "
            f"got {base!r} ({type(base).__name__})"
        )
    sparsity_level = 0.5 if sparsity_level is None else sparsity_level
    return Random(
        check_int(base, "base_wiring_or_units", minimum=1), output_dim, sparsity_level, seed
    )


def _keys(src: np.ndarray, dst: np.ndarray, units: int) -> np.ndarray:
    return src.astype(np.int64) * units + dst


def score_matrix(scores, name: str, units: int) -> np.ndarray:
    """``scores`` as a finite real ``(units, units)`` array, or raise naming ``name``."""
    array = _real_array(scores, name)
    if array.shape != (units, units):
        raise ValueError(f"{name} must have shape ({units}, {units}), got {array.shape}")
    return _finite(array, name)


def synapse_scores(scores, name: str, src: np.ndarray, dst: np.ndarray, units: int) -> np.ndarray:
    """One score per synapse from a dense ``(units, units)`` matrix or an ``(S,)`` vector."""
    array = _real_array(scores, name)
    if array.shape == (units, units):
        return _finite(array, name)[src, dst]
    if array.shape == (src.size,):
        return _finite(array, name)
    raise ValueError(
        f"{name} must be a dense ({units}, {units}) matrix or one score per synapse "
        f"({src.size},), got shape {array.shape}"
    )


def lowest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest values, ties broken by lower index; sorted."""
    return np.sort(np.argsort(values, kind="stable")[:count])


def grow_top(keys: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` keys not in ``keys`` with the highest ``scores`` (a ``(units, units)``
    matrix), ties broken by lower key; sorted ascending."""
    flat = scores.reshape(-1)
    free = np.ones(flat.size, bool)
    free[keys] = False
    candidates = np.flatnonzero(free)
    order = np.lexsort((candidates, -flat[candidates]))[:count]
    return np.sort(candidates[order])


def grow_uniform(keys: np.ndarray, population: int, count: int, rng) -> np.ndarray:
    """``count`` distinct keys drawn uniformly from ``[0, population)`` minus ``keys`` (sorted,
    unique); sorted ascending. Memory ``O(len(keys) + count)``.

    The ``r``-th free key is ``r + #{keys below it}``; with ``keys[i] - i`` (free keys before
    ``keys[i]``, non-decreasing) that count is a binary search.
    """
    free = population - keys.size
    ranks = sample_without_replacement(rng, free, count)[0]
    free_before = keys - np.arange(keys.size)
    return ranks + np.searchsorted(free_before, ranks, side="right")


def _real_array(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    return array


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array
