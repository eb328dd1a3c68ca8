"""``HybridBuilder``: stack wiring-masked sequence layers from a pattern of layer names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import mlx.nn as nn
from mlx.utils import tree_flatten

from ..._validation import check_int
from ...wirings import Wiring
from ..layers.conv import CausalConvBlock
from ..layers.conv_attention import ConvAttentionFusion
from ..layers.ffn import FeedForward
from ..layers.gla import GatedLinearAttention
from ..layers.kan import KANLayer
from ..layers.liquid import LiquidLayer
from ..layers.rwkv import RWKVBlock
from ..layers.self_attention import CausalSelfAttention
from ..layers.ssm import MambaBlock
from .hybrid_model import HybridModel

__all__ = ["HybridBuilder", "LayerType"]


@dataclass(frozen=True)
class LayerType:
    """A registered layer: ``factory(d_model, wiring=..., **kwargs)`` builds it.

    The factory is the one description of the layer: :meth:`HybridBuilder.build` calls it, and
    :meth:`HybridBuilder.param_count` calls it too and sums the shapes of the parameters it
    makes (MLX arrays are lazy, so no weight is materialised), so a registered layer needs no
    separate parameter-count formula.

    Attributes:
        name: Pattern name (``"mamba"``).
        code: One-letter code for diagrams (``"M"``).
        factory: The layer class or a function returning a module with ``__call__(x, cache)
            -> (y, cache)``, ``step(x_t, cache) -> (y_t, cache)`` and ``make_cache(batch)``. It
            validates its arguments (raising ``ValueError``/``TypeError``) and should leave its
            parameters unevaluated, so that counting them stays cheap.
        options: Builder option -> constructor keyword (``{"mamba_state_size": "state_size"}``).
        cell_wiring: True if the layer's ``wiring`` is the wiring of a liquid cell rather than a
            mask for projections: such layers take a wiring only from a dict by layer name.
    """

    name: str
    code: str
    factory: Callable
    options: dict
    cell_wiring: bool = False


class HybridBuilder:
    """Builds :class:`HybridModel` stacks from patterns such as ``["mamba", "attention"]``.

    Options are the per-layer options (``mamba_state_size``, ``attention_num_heads``, ...; see
    :meth:`options`) plus ``wiring``: one Wiring for every masked projection, or a dict from
    layer name to Wiring.
    """

    _registry: dict[str, LayerType] = {}
    PATTERNS = (
        "jamba_like",
        "zamba_like",
        "mamba_gla",
        "rwkv_attention",
        "full_hybrid",
        "ssm_stack",
        "conv_transformer",
    )

    @classmethod
    def register(cls, name, code, factory, options=None, cell_wiring=False) -> None:
        """Register a layer type (also for user layers).

        :meth:`build` and :meth:`param_count` both construct the layer with ``factory``, so
        they accept and reject the same options and always agree on its parameter count.

        Args:
            name: Pattern name; an identifier. Registering a name again replaces its type.
            code: One character for :meth:`visualize`, not used by another layer type.
            factory: ``factory(d_model, wiring=..., **kwargs)`` (see :class:`LayerType`).
            options: Builder option -> constructor keyword; None for none.
            cell_wiring: Whether ``wiring`` is the layer's own circuit (see
                :class:`LayerType`).

        Raises:
            ValueError: If ``name`` is not an identifier or ``code`` is not one free character.
        """
        if not name.isidentifier():
            raise ValueError(f"name must be an identifier, got {name!r}")
        taken = {t.code: t.name for t in cls._registry.values() if t.name != name}
        if len(code) != 1 or code in taken:
            raise ValueError(f"code must be one new character, got {code!r} (taken: {taken})")
        cls._registry[name] = LayerType(name, code, factory, dict(options or {}), cell_wiring)

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
        if isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty list of layer names")
        unknown = [p for p in pattern if p not in cls._registry]
        if unknown:
            raise ValueError(f"unknown layer types {unknown}; valid: {cls.layer_types()}")
        return list(pattern)

    @classmethod
    def _arguments(cls, name: str, options: dict) -> dict:
        """The constructor keywords of layer ``name`` (its ``wiring`` included) from options."""
        layer_type = cls._registry[name]
        wiring = options.get("wiring")
        if isinstance(wiring, dict):
            wiring = wiring.get(name)
        elif layer_type.cell_wiring:
            wiring = None  # one wiring for all projections is not a liquid cell's circuit
        if wiring is not None and not isinstance(wiring, Wiring):
            raise TypeError(
                f"wiring must be a Wiring or a dict of Wirings, got {type(wiring).__name__}"
            )
        kwargs = {keyword: options[o] for o, keyword in layer_type.options.items() if o in options}
        return {"wiring": wiring, **kwargs}

    @classmethod
    def _layer(cls, name: str, hidden_size: int, options: dict) -> nn.Module:
        return cls._registry[name].factory(hidden_size, **cls._arguments(name, options))

    @classmethod
    def _check_options(cls, options: dict) -> None:
        unknown = sorted(set(options) - set(cls.options()))
        if unknown:
            raise ValueError(f"unknown options {unknown}; valid: {cls.options()}")

    @classmethod
    def _model(cls, pattern, embed_size: int, hidden_size: int, shared, options: dict):
        """The :class:`HybridModel` of :meth:`build` and :meth:`param_count` (one code path).

        Validates the pattern, sizes and option names, constructs one module per layer (one per
        name in ``shared``) with its factory, which validates that layer's options, and wraps
        them with the input projection and the norms. No weight is evaluated: parameters are
        lazy MLX arrays until used.
        """
        pattern = cls._check_pattern(pattern)
        check_int(embed_size, "embed_size", minimum=1)
        check_int(hidden_size, "hidden_size", minimum=1)
        cls._check_options(options)
        layers, index_of, shared_index = [], {}, []
        for name in pattern:
            if name in shared and name in index_of:
                shared_index.append(index_of[name])
                continue
            index_of[name] = len(layers)
            shared_index.append(len(layers))
            layers.append(cls._layer(name, hidden_size, options))
        return HybridModel(embed_size, hidden_size, pattern, layers, shared_index)

    @classmethod
    def build(
        cls, pattern, embed_size: int, hidden_size: int = 256, seq_len=None, shared=(), **options
    ):
        """Build the stack.

        Args:
            pattern: Layer names, e.g. ``["mamba", "attention", "ffn"]``.
            embed_size: Input width ``E``.
            hidden_size: Model width ``H``.
            seq_len: Unused by the layers (all handle any length); kept for API compatibility.
            shared: Layer names whose blocks reuse one module each (e.g. ``("attention",)``).
            **options: Per-layer options (see :meth:`options`) and ``wiring``.

        Raises:
            ValueError: On unknown layer names or options (the message lists the valid ones),
                or on option values a layer rejects (e.g. heads that do not divide ``H``).
            TypeError: On option values of the wrong type, or a ``wiring`` that is not a
                Wiring or a dict of Wirings.
        """
        return cls._model(pattern, embed_size, hidden_size, shared, options)

    @classmethod
    def named_pattern(cls, name: str, num_layers: int) -> tuple[list[str], tuple]:
        """The layer list (and shared layer names) of a named pattern."""
        n = check_int(num_layers, "num_layers", minimum=1)
        cycles = {
            "jamba_like": ["mamba", "attention"],
            "mamba_gla": ["mamba", "mamba", "gla"],
            "rwkv_attention": ["rwkv", "rwkv", "rwkv", "attention", "rwkv", "rwkv"],
            "full_hybrid": ["mamba", "attention", "gla", "rwkv", "mamba", "ffn"],
            "ssm_stack": ["mamba"],
            "conv_transformer": ["conv", "attention", "conv_attention", "ffn"],
        }
        if name == "zamba_like":  # all Mamba, one shared attention block every 3rd layer
            return ["attention" if i % 3 == 2 else "mamba" for i in range(n)], ("attention",)
        if name not in cycles:
            raise ValueError(f"unknown pattern {name!r}; valid: {list(cls.PATTERNS)}")
        return [cycles[name][i % len(cycles[name])] for i in range(n)], ()

    @classmethod
    def build_pattern(
        cls, name: str, num_layers: int, embed_size: int, hidden_size: int = 256, **options
    ):
        """Build a named pattern (``jamba_like``, ``zamba_like``, ``mamba_gla``, ...)."""
        pattern, shared = cls.named_pattern(name, num_layers)
        return cls.build(pattern, embed_size, hidden_size, shared=shared, **options)

    @classmethod
    def visualize(cls, pattern) -> str:
        """``"Layer pattern: M → A\\nLegend: A=attention, M=mamba"``."""
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
        input projection and norms) and sums the sizes of its parameters without evaluating
        any of them: MLX arrays are lazy, so no weight is materialised (a projection
        ``wiring``'s masks are, while the layers exist). Side effects are those of
        :meth:`build`: a liquid layer's wiring is built in place with ``liquid_features`` inputs
        and the global MLX random state advances.

        Args:
            pattern: Layer names, as in :meth:`build`.
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


def _register_builtin_layers() -> None:

    HybridBuilder.register(
        "mamba",
        "M",
        MambaBlock,
        {
            "mamba_state_size": "state_size",
            "mamba_expand_factor": "expand_factor",
            "mamba_conv_width": "conv_width",
        },
    )
    HybridBuilder.register(
        "attention",
        "A",
        CausalSelfAttention,
        {
            "attention_num_heads": "num_heads",
            "attention_head_dim": "head_dim",
            "attention_window_size": "window_size",
        },
    )
    HybridBuilder.register(
        "gla", "G", GatedLinearAttention, {"gla_num_heads": "num_heads", "gla_head_dim": "head_dim"}
    )
    HybridBuilder.register("rwkv", "R", RWKVBlock, {"rwkv_head_size": "head_size"})
    HybridBuilder.register("ffn", "F", FeedForward, {"ffn_hidden_size": "hidden"})
    HybridBuilder.register(
        "kan", "K", KANLayer, {"kan_grid_size": "grid_size", "kan_spline_order": "spline_order"}
    )
    HybridBuilder.register("conv", "C", CausalConvBlock, {"conv_kernel_size": "kernel_size"})
    HybridBuilder.register(  # its branches take the conv and attention options
        "conv_attention",
        "X",
        ConvAttentionFusion,
        {
            "conv_kernel_size": "kernel_size",
            "attention_num_heads": "num_heads",
            "attention_head_dim": "head_dim",
            "attention_window_size": "window_size",
        },
    )
    liquid_options = {"liquid_units": "units", "liquid_features": "features"}
    for name, code in (("cfc", "L"), ("ltc", "T")):
        HybridBuilder.register(
            name, code, partial(LiquidLayer, kind=name), liquid_options, cell_wiring=True
        )


_register_builtin_layers()
