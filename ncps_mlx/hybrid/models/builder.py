"""``HybridBuilder``: stack wiring-masked sequence layers from a pattern of layer names.

One code path validates and constructs: :meth:`HybridBuilder.build`,
:meth:`HybridBuilder.param_count` and :meth:`HybridBuilder.layer` (which exploration uses to
test option values) all construct the layers with their registered factories, which validate
their own arguments. Errors are raised in the builder's words: a layer's constructor keywords
are renamed to the builder options they come from (``num_heads`` -> ``attention_num_heads``,
``d_model`` -> ``hidden_size``) and the message starts with the layer type.
"""

from __future__ import annotations

import warnings

import mlx.nn as nn
from mlx.utils import tree_flatten

from ..._validation import check_int
from ...wirings import Wiring
from ..layers.wired_linear import WiringResampledWarning, user_stacklevel
from .hybrid_model import HybridModel
from .layer_types import (
    LAYER_TYPES,
    PATTERN_CYCLES,
    LayerType,
    expand_layers,
    register_layer_type,
)

__all__ = ["HybridBuilder", "LayerType", "PATTERN_CYCLES", "expand_layers"]


class HybridBuilder:
    """Builds :class:`HybridModel` stacks from patterns such as ``["mamba", "attention"]``.

    A pattern is a list of layer types and named patterns (see :func:`expand_layers`), or one
    named pattern. Options are the per-layer options (``mamba_state_size``,
    ``attention_num_heads``, ...; see :meth:`options`) plus ``wiring``: one Wiring masking every
    projection (a liquid layer's input and output projections included), or a dict from layer
    type to Wiring (for ``cfc``/``ltc``: the liquid cell's own circuit). A wiring whose
    ``units`` differ from ``hidden_size`` is resampled to the projections, with a
    :class:`~ncps_mlx.hybrid.WiringResampledWarning`.
    """

    _registry: dict[str, LayerType] = LAYER_TYPES
    PATTERNS = tuple(PATTERN_CYCLES)

    @classmethod
    def register(cls, name, code, factory, options=None, cell_wiring=False) -> None:
        """Register a layer type (also for user layers).

        :meth:`build` and :meth:`param_count` both construct the layer with ``factory``, so
        they accept and reject the same options and always agree on its parameter count.

        Args:
            name: Pattern name; an identifier, not a named pattern. Registering a name again
                replaces its type.
            code: One character for :meth:`visualize`, not used by another layer type.
            factory: ``factory(d_model, wiring=..., **kwargs)`` (see :class:`LayerType`).
            options: Builder option -> constructor keyword; None for none.
            cell_wiring: Whether ``wiring`` is the layer's own circuit (see
                :class:`LayerType`).

        Raises:
            ValueError: If ``name`` is not an identifier or is a pattern name, or ``code`` is
                not one free character.
        """
        register_layer_type(name, code, factory, options, cell_wiring)

    @classmethod
    def layer_types(cls) -> list[str]:
        """The registered layer type names, sorted."""
        return sorted(cls._registry)

    @classmethod
    def options(cls) -> list[str]:
        """Every builder option name."""
        return sorted({o for t in cls._registry.values() for o in t.options} | {"wiring"})

    @classmethod
    def _check_pattern(cls, pattern) -> list[str]:
        return expand_layers(pattern)

    @classmethod
    def _check_options(cls, options: dict) -> None:
        unknown = sorted(set(options) - set(cls.options()))
        if unknown:
            raise ValueError(f"unknown options {unknown}; valid: {cls.options()}")
        wiring = options.get("wiring")
        if isinstance(wiring, dict):
            unknown = sorted(str(name) for name in set(wiring) - set(cls._registry))
            if unknown:
                raise ValueError(
                    f"wiring: unknown layer types {unknown}; valid: {cls.layer_types()}"
                )
        for key, value in wiring.items() if isinstance(wiring, dict) else [(None, wiring)]:
            if value is not None and not isinstance(value, Wiring):
                where = "wiring" if key is None else f"wiring[{key!r}]"
                kinds = "a Wiring" if key else "a Wiring or a dict of Wirings by layer type"
                raise TypeError(f"{where} must be {kinds}, got {type(value).__name__}")

    @classmethod
    def _arguments(cls, name: str, options: dict) -> dict:
        """The constructor keywords of layer ``name`` (its wirings included) from options."""
        layer_type = cls._registry[name]
        kwargs = {keyword: options[o] for o, keyword in layer_type.options.items() if o in options}
        wiring = options.get("wiring")
        if isinstance(wiring, dict):
            return {"wiring": wiring.get(name), **kwargs}
        if layer_type.cell_wiring:  # one wiring for all projections is not a liquid circuit
            return {"wiring": None, **kwargs, **({"projection_wiring": wiring} if wiring else {})}
        return {"wiring": wiring, **kwargs}

    @classmethod
    def layer(cls, name: str, hidden_size: int, **options) -> nn.Module:
        """One layer of type ``name``, exactly as :meth:`build` makes it in a stack.

        Args:
            name: A layer type.
            hidden_size: Model width ``H``.
            **options: Builder options (those ``name`` does not read are ignored) and
                ``wiring``.

        Raises:
            ValueError, TypeError: As :meth:`build` for a stack of this layer.
        """
        check_int(hidden_size, "hidden_size", minimum=1)
        cls._check_options(options)
        return cls._construct(expand_layers([name])[0], hidden_size, options)

    @classmethod
    def _construct(cls, name: str, hidden_size: int, options: dict) -> nn.Module:
        layer_type = cls._registry[name]
        try:
            return layer_type.factory(hidden_size, **cls._arguments(name, options))
        except (TypeError, ValueError) as error:
            try:
                renamed = type(error)(layer_type.in_option_names(str(error)))
            except Exception:  # noqa: BLE001 - an exception class with another signature
                raise error from None
            raise renamed from None

    @classmethod
    def _construct_noting_resampling(cls, name, hidden_size, options, resampled: dict):
        """:meth:`_construct`, with its :class:`WiringResampledWarning` s noted in
        ``resampled`` (``{wiring units: [layer names]}``) instead of shown; other warnings pass."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", WiringResampledWarning)
            layer = cls._construct(name, hidden_size, options)
        for record in caught:
            if issubclass(record.category, WiringResampledWarning):
                resampled.setdefault(record.message.units, []).append(name)
            else:
                warnings.warn_explicit(
                    record.message, record.category, record.filename, record.lineno
                )
        return layer

    @classmethod
    def _model(cls, pattern, embed_size: int, hidden_size: int, shared, options: dict):
        """The :class:`HybridModel` of :meth:`build` and :meth:`param_count` (one code path).

        Validates the pattern, sizes, sharing and option names, constructs one module per layer
        (one per name in ``shared``) with its factory, which validates that layer's options, and
        wraps them with the input projection and the norms. No weight is evaluated: parameters
        are lazy MLX arrays until used. Resampled wirings are reported once, by layer.
        """
        pattern = cls._check_pattern(pattern)
        check_int(embed_size, "embed_size", minimum=1)
        check_int(hidden_size, "hidden_size", minimum=1)
        shared = _check_shared(shared)
        cls._check_options(options)
        layers, index_of, shared_index, resampled = [], {}, [], {}
        for name in pattern:
            if name in shared and name in index_of:
                shared_index.append(index_of[name])
                continue
            index_of[name] = len(layers)
            shared_index.append(len(layers))
            layers.append(cls._construct_noting_resampling(name, hidden_size, options, resampled))
        for units, names in resampled.items():
            warnings.warn(
                WiringResampledWarning(
                    f"wiring resampled from {units} to {hidden_size} units (hidden_size) to mask "
                    f"the projections of {', '.join(dict.fromkeys(names))}",
                    units,
                    (hidden_size, hidden_size),
                ),
                stacklevel=user_stacklevel(),
            )
        return HybridModel(embed_size, hidden_size, pattern, layers, shared_index)

    @classmethod
    def build(
        cls, pattern, embed_size: int, hidden_size: int = 256, seq_len=None, shared=(), **options
    ):
        """Build the stack.

        Args:
            pattern: Layer types and named patterns, e.g. ``["mamba", "attention", "ffn"]``,
                ``"jamba_like"`` or ``["jamba_like", "ffn"]`` (see :func:`expand_layers`).
            embed_size: Input width ``E``.
            hidden_size: Model width ``H``.
            seq_len: Unused by the layers (all handle any length); kept for API compatibility.
            shared: Layer types whose blocks reuse one module each (e.g. ``("attention",)``).
            **options: Per-layer options (see :meth:`options`) and ``wiring``.

        Raises:
            ValueError: On unknown layer names, patterns or options (the message lists the
                valid ones), or on option values a layer rejects (e.g. heads that do not divide
                ``H``), named as the builder's options.
            TypeError: On option values of the wrong type, or a ``wiring`` that is not a
                Wiring or a dict of Wirings.

        Warns:
            WiringResampledWarning: If a wiring's ``units`` are not ``hidden_size`` (one warning
                per wiring size: ``"from N to M units"``).
        """
        return cls._model(pattern, embed_size, hidden_size, shared, options)

    @classmethod
    def named_pattern(cls, name: str, num_layers: int) -> tuple[list[str], tuple]:
        """The layer list (and shared layer names) of a named pattern of ``num_layers``."""
        n = check_int(num_layers, "num_layers", minimum=1)
        if name not in PATTERN_CYCLES:
            raise ValueError(f"unknown pattern {name!r}; valid: {list(cls.PATTERNS)}")
        cycle = PATTERN_CYCLES[name]
        shared = ("attention",) if name == "zamba_like" else ()  # one shared attention block
        return [cycle[i % len(cycle)] for i in range(n)], shared

    @classmethod
    def build_pattern(
        cls, name: str, num_layers: int, embed_size: int, hidden_size: int = 256, **options
    ):
        """Build a named pattern (``jamba_like``, ``zamba_like``, ``mamba_gla``, ...)."""
        pattern, shared = cls.named_pattern(name, num_layers)
        return cls.build(pattern, embed_size, hidden_size, shared=shared, **options)

    @classmethod
    def visualize(cls, pattern) -> str:
        """``"Layer pattern: M → A\\nLegend: A=attention, M=mamba"`` (one letter per layer type,
        every letter of the pattern explained)."""
        pattern = cls._check_pattern(pattern)
        codes = [cls._registry[name].code for name in pattern]
        legend = ", ".join(sorted({f"{cls._registry[n].code}={n}" for n in pattern}))
        return f"Layer pattern: {' → '.join(codes)}\nLegend: {legend}"

    @classmethod
    def param_count(
        cls, pattern, embed_size: int, hidden_size: int = 256, shared=(), **options
    ) -> int:
        """The exact parameter count of ``build(pattern, embed_size, hidden_size, ...)``.

        Constructs the model exactly as :meth:`build` does (same validation, layers, sharing,
        input projection, norms and warnings) and sums the sizes of its parameters without
        evaluating any of them: MLX arrays are lazy, so no weight is materialised (a projection
        ``wiring``'s masks are, while the layers exist). Weights that a wiring masks to zero
        are parameters too. Side effects are those of :meth:`build`: a liquid layer's wiring is
        built in place with ``liquid_features`` inputs and the global MLX random state
        advances.

        Args:
            pattern: Layer types and named patterns, as in :meth:`build`.
            embed_size: Input width ``E``.
            hidden_size: Model width ``H``.
            shared: Layer names whose blocks reuse one module each (counted once).
            **options: Per-layer options and ``wiring``, as in :meth:`build`.

        Returns:
            ``sum(a.size for _, a in tree_flatten(build(...).parameters()))``.

        Raises:
            ValueError: Exactly when :meth:`build` raises it, with the same message.
            TypeError: Exactly when :meth:`build` raises it, with the same message.
        """
        model = cls._model(pattern, embed_size, hidden_size, shared, options)
        return sum(array.size for _, array in tree_flatten(model.parameters()))


def _check_shared(shared) -> tuple[str, ...]:
    if isinstance(shared, str) or not isinstance(shared, (list, tuple, set, frozenset)):
        raise TypeError(f"shared must be a list or tuple of layer types, got {shared!r}")
    unknown = sorted(str(name) for name in set(shared) - set(LAYER_TYPES))
    if unknown:
        raise ValueError(f"shared: unknown layer types {unknown}; valid: {sorted(LAYER_TYPES)}")
    return tuple(shared)
