"""``ComponentRegistry``: the search space of exploration — layer types with candidate option
values, projection wirings, and an editable compatibility score between consecutive layers.

Layer types are read live from :class:`~ncps_mlx.hybrid.HybridBuilder`, so layers registered by
the user take part (with the neutral score and no searched options until told otherwise).

Default compatibility (how well layer ``second`` follows layer ``first``, in ``[0, 1]``) comes
from the kind of each layer and a few named pairs:

* Kinds: ``recurrent`` (mamba, gla, rwkv: linear-time sequence mixers with a state), ``attention``
  (attention, conv_attention), ``conv`` (short causal convolution), ``liquid`` (cfc, ltc: a
  small wired ODE circuit seen through a narrow projection) and ``channel`` (ffn, kan: mix
  features, not time).
* A sequence mixer followed by a channel mixer scores high (the transformer block: mix time,
  then features); a channel mixer followed by a sequence mixer is the next block, also high.
  Two channel mixers in a row are low (more depth, no mixing over time); a sequence mixer
  followed by a different sequence mixer is a hybrid (Jamba's mamba → attention: high), the
  same kind again is medium; a convolution is best followed by global mixing (attention).
* Named pairs: stacked mamba or rwkv blocks are the published designs (their blocks gate and
  expand channels themselves), so they score above other repeats; rwkv already ends in a channel
  mix, so a channel mixer after it adds less; conv → conv_attention repeats the convolution the
  fused layer already has.

Pairs with a layer of no known kind (user layers) score :data:`NEUTRAL_SCORE`. Edited scores
(:meth:`ComponentRegistry.set_score`) override the table and persist through
:meth:`~ComponentRegistry.overrides` (e.g. into a results store) or
:meth:`~ComponentRegistry.to_json`.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import numbers
from collections.abc import Callable

from .._validation import check_int
from ..hybrid.models.builder import HybridBuilder
from ..wirings import AttentionWiring, AutoNCP, HierarchicalWiring, MultiScaleWiring, Random
from .architecture import _plain

__all__ = [
    "ComponentRegistry",
    "KIND_SCORES",
    "LAYER_KINDS",
    "NEUTRAL_SCORE",
    "OPTION_CANDIDATES",
    "PAIR_SCORES",
    "check_hidden_size",
]

#: Score of a pair involving a layer of no known kind (a user-registered layer).
NEUTRAL_SCORE = 0.5

#: Layer type -> kind; the kind table below scores pairs of kinds.
LAYER_KINDS = {
    "mamba": "recurrent",
    "gla": "recurrent",
    "rwkv": "recurrent",
    "attention": "attention",
    "conv_attention": "attention",
    "conv": "conv",
    "cfc": "liquid",
    "ltc": "liquid",
    "ffn": "channel",
    "kan": "channel",
}

_KINDS = ("recurrent", "attention", "conv", "liquid", "channel")
_KIND_ROWS = (  # first kind (row) -> second kind (column), in the order of _KINDS
    (0.6, 0.8, 0.4, 0.5, 0.8),  # recurrent
    (0.7, 0.5, 0.4, 0.5, 0.9),  # attention
    (0.6, 0.8, 0.3, 0.5, 0.7),  # conv
    (0.5, 0.6, 0.4, 0.3, 0.8),  # liquid
    (0.8, 0.8, 0.6, 0.6, 0.2),  # channel
)
#: ``(first kind, second kind) -> score``: the default score of a pair of known layers.
KIND_SCORES = {
    (first, second): score
    for first, row in zip(_KINDS, _KIND_ROWS, strict=True)
    for second, score in zip(_KINDS, row, strict=True)
}

#: ``(first, second) -> score``: named pairs that differ from their kinds' score.
PAIR_SCORES = {
    ("mamba", "mamba"): 0.7,
    ("rwkv", "rwkv"): 0.7,
    ("rwkv", "ffn"): 0.5,
    ("rwkv", "kan"): 0.5,
    ("conv", "conv_attention"): 0.3,
}


def check_hidden_size(hidden_size) -> int:
    """``hidden_size`` as an int; exploration uses positive multiples of 8 (every candidate
    option and wiring below fits those widths)."""
    hidden_size = check_int(hidden_size, "hidden_size", minimum=8)
    if hidden_size % 8:
        raise ValueError(f"hidden_size must be a multiple of 8, got {hidden_size}")
    return hidden_size


#: Builder option -> ``candidates(H)``: the values searched at width ``H`` (before
#: :meth:`ComponentRegistry.valid_values` drops those that do not fit). An option not listed
#: keeps the value it is given (or its layer's default) and is not searched.
OPTION_CANDIDATES: dict[str, Callable[[int], tuple]] = {
    "attention_num_heads": lambda h: (1, 2, 4),
    "attention_window_size": lambda h: (None, 16),
    "conv_kernel_size": lambda h: (3, 4),
    "ffn_hidden_size": lambda h: (None, 2 * h),
    "gla_num_heads": lambda h: (1, 2, 4),
    "kan_grid_size": lambda h: (3, 5),
    "kan_spline_order": lambda h: (2, 3),
    "liquid_features": lambda h: (None, 8),
    "liquid_units": lambda h: (24, 32),
    "mamba_conv_width": lambda h: (3, 4),
    "mamba_expand_factor": lambda h: (1, 2),
    "mamba_state_size": lambda h: (8, 16),
    "rwkv_head_size": lambda h: (8, 16, 32, 64),
}


def _default_wirings() -> dict[str, Callable[[int], dict]]:
    """``{class name: factory(H) -> spec}``: wirings whose structure means something as a mask
    of ``H``-wide projections (each has ``H`` neurons, so the mask is the wiring's own synapse
    pattern, stretched to non-square projections, never resampled to another width). Left out:
    FullyConnected (the dense default), NCP (AutoNCP sizes it), wirings defined by their input
    geometry (cross-attention context, signal, vision, language) and those whose point is a
    state-dependent structure that a fixed mask would drop (dynamic routing, adaptive, meta)."""
    return {
        "AutoNCP": lambda h: AutoNCP(h, h // 4).spec(),
        "Random": lambda h: Random(h, sparsity_level=0.5).spec(),
        "MultiScaleWiring": lambda h: MultiScaleWiring(h // 4, h // 4, h // 4, h // 4).spec(),
        "HierarchicalWiring": lambda h: HierarchicalWiring([h // 2, h // 4, h // 4]).spec(),
        "AttentionWiring": lambda h: AttentionWiring(h // 4, 2, h // 8, output_size=h // 8).spec(),
    }


def _check_score(score, name: str = "score") -> float:
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {score!r}")
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {score!r}")
    return float(score)


def _check_pair(pair) -> tuple[str, str]:
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
        raise ValueError(f"overrides keys must be (first, second) layer names, got {pair!r}")
    return pair


class ComponentRegistry:
    """Layer types, their searched options, projection wirings and compatibility scores.

    Args:
        overrides: ``{(first, second): score}`` replacing the default scores (e.g. a results
            store's ``compatibility()``). Pairs naming layers not registered now are kept (and
            returned by :meth:`overrides`): they apply once the layer is registered.
        wirings: ``{name: factory(hidden_size) -> wiring spec}`` replacing the default
            wirings (see :meth:`wirings`).

    Raises:
        ValueError: On a malformed pair or a score outside ``[0, 1]``.
    """

    def __init__(
        self,
        overrides: dict[tuple[str, str], float] | None = None,
        wirings: dict[str, Callable[[int], dict]] | None = None,
    ):
        self._overrides = {
            _check_pair(pair): _check_score(score, "overrides")
            for pair, score in dict(overrides or {}).items()
        }
        self._wirings = _default_wirings() if wirings is None else dict(wirings)
        self._specs: dict[int, list] = {}  # wiring_specs by hidden size
        self._builds: dict[tuple, bool] = {}  # (layer, H, its options) -> whether it builds

    def __repr__(self) -> str:
        return (
            f"ComponentRegistry(layers={len(self.layers())}, wirings={len(self._wirings)}, "
            f"overrides={len(self._overrides)})"
        )

    # ------------------------------------------------------------------ layers and options
    def layers(self) -> list[str]:
        """Every layer type of the builder, sorted (user-registered ones included)."""
        return HybridBuilder.layer_types()

    def _check_layer(self, layer, name: str) -> str:
        if layer not in HybridBuilder._registry:
            raise ValueError(f"{name} must be a layer type, got {layer!r}; valid: {self.layers()}")
        return layer

    def layer_options(self, layer: str, hidden_size: int = 64) -> dict[str, tuple]:
        """``{option: candidate values}`` searched for ``layer`` at width ``hidden_size``: the
        layer's options that have candidates, each restricted to :meth:`valid_values`."""
        self._check_layer(layer, "layer")
        reads = HybridBuilder._registry[layer].options
        return {
            option: self.valid_values(option, hidden_size)
            for option in sorted(reads)
            if option in OPTION_CANDIDATES
        }

    def valid_values(self, option: str, hidden_size: int, options: dict | None = None) -> tuple:
        """The candidate values of ``option`` that :meth:`fits` width ``hidden_size`` and the
        other ``options``; ``()`` for an option that is not searched."""
        hidden_size = check_hidden_size(hidden_size)
        candidates = OPTION_CANDIDATES.get(option, lambda h: ())(hidden_size)
        return tuple(v for v in candidates if self.fits(option, v, hidden_size, options))

    def fits(self, option: str, value, hidden_size: int, options: dict | None = None) -> bool:
        """Whether ``option=value`` builds at width ``hidden_size`` next to ``options``.

        The rules are the layers' own: every layer type that reads ``option`` is constructed
        with these options by :meth:`HybridBuilder.layer
        <ncps_mlx.hybrid.HybridBuilder.layer>`, the validation :meth:`build
        <ncps_mlx.hybrid.HybridBuilder.build>` runs (e.g. attention heads must divide ``H``
        with an even head size, a liquid layer's default AutoNCP needs ``units >= features +
        3``). An option that no layer reads fits any value. Results are cached per registry.
        """
        options = {**dict(options or {}), option: value}
        readers = [
            name for name in self.layers() if option in HybridBuilder._registry[name].options
        ]
        return all(self._layer_builds(name, hidden_size, options) for name in readers)

    def _layer_builds(self, layer: str, hidden_size: int, options: dict) -> bool:
        reads = HybridBuilder._registry[layer].options
        relevant = tuple(sorted((o, v) for o, v in options.items() if o in reads))
        key = (layer, hidden_size, relevant)
        try:
            return self._builds[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: not cached
            key = None
        try:
            HybridBuilder.layer(layer, hidden_size, **dict(relevant))
            builds = True
        except (TypeError, ValueError):
            builds = False
        if key is not None:
            self._builds[key] = builds
        return builds

    # ------------------------------------------------------------------ wirings
    def wirings(self) -> dict[str, Callable[[int], dict]]:
        """``{name: factory(hidden_size) -> wiring spec}``: by default AutoNCP(H, H/4),
        Random(H, sparsity 0.5), MultiScaleWiring (four groups of H/4), HierarchicalWiring
        (H/2, H/4, H/4) and AttentionWiring (2 heads; query, key and value groups of H/4,
        feed-forward and output groups of H/8): H neurons each."""
        return dict(self._wirings)

    @staticmethod
    def wiring_classes() -> dict[str, dict]:
        """Every public wiring class with its constructor options: ``{class name: {argument:
        default}}`` (``inspect.Parameter.empty`` for required arguments). Strategies propose
        the sized wirings of :meth:`wirings`; the others (shaped by their inputs, such as
        ``VisionWiring``, or rewired at run time, such as ``AdaptiveWiring``) enter an
        architecture through its ``wiring`` spec."""
        from .. import wirings as module

        classes = {}
        for name in module.__all__:
            cls = getattr(module, name)
            bases = (module.Wiring, module.GroupedWiring)
            if isinstance(cls, type) and issubclass(cls, module.Wiring) and cls not in bases:
                parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
                classes[name] = {p.name: p.default for p in parameters}
        return classes

    def wiring_specs(self, hidden_size: int) -> list[dict | None]:
        """The wiring choices at width ``hidden_size``: None (dense) then one spec a wiring."""
        hidden_size = check_hidden_size(hidden_size)
        if hidden_size not in self._specs:
            names = sorted(self._wirings)
            specs = [_plain(self._wirings[name](hidden_size)) for name in names]
            self._specs[hidden_size] = [None, *specs]
        return copy.deepcopy(self._specs[hidden_size])

    # ------------------------------------------------------------------ compatibility
    @staticmethod
    def default_score(first: str, second: str) -> float:
        """The built-in score of ``second`` after ``first`` (see the module docstring)."""
        if (first, second) in PAIR_SCORES:
            return PAIR_SCORES[first, second]
        kinds = (LAYER_KINDS.get(first), LAYER_KINDS.get(second))
        return KIND_SCORES.get(kinds, NEUTRAL_SCORE)

    def score(self, first: str, second: str) -> float:
        """How well layer ``second`` follows layer ``first``, in ``[0, 1]`` (an edited score,
        else :meth:`default_score`)."""
        pair = (self._check_layer(first, "first"), self._check_layer(second, "second"))
        return self._overrides.get(pair, self.default_score(*pair))

    def set_score(self, first: str, second: str, score: float) -> None:
        """Edit the score of ``second`` after ``first``.

        Raises:
            ValueError: On an unknown layer or a score outside ``[0, 1]`` (naming which).
        """
        pair = (self._check_layer(first, "first"), self._check_layer(second, "second"))
        self._overrides[pair] = _check_score(score)

    def overrides(self) -> dict[tuple[str, str], float]:
        """The edited scores ``{(first, second): score}``, to persist."""
        return dict(sorted(self._overrides.items()))

    def to_json(self) -> str:
        """The edited scores as JSON: ``{"overrides": [[first, second, score], ...]}``."""
        rows = [[first, second, score] for (first, second), score in self.overrides().items()]
        return json.dumps({"overrides": rows})

    @classmethod
    def from_json(cls, text: str) -> ComponentRegistry:
        """A registry with the edited scores of :meth:`to_json` (default wirings).

        Raises:
            ValueError: If ``text`` is not such JSON.
        """
        try:
            rows = json.loads(text)["overrides"]
            pairs = {(first, second): score for first, second, score in rows}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"text is not ComponentRegistry.to_json output: {error}") from None
        return cls(pairs)

    def pattern_score(self, pattern) -> float:
        """Mean score of the consecutive pairs of ``pattern`` (:data:`NEUTRAL_SCORE` for a
        single layer, which has no pair)."""
        pattern = HybridBuilder._check_pattern(list(pattern))
        scores = [self.score(a, b) for a, b in zip(pattern[:-1], pattern[1:], strict=True)]
        return sum(scores) / len(scores) if scores else NEUTRAL_SCORE
