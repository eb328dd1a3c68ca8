"""The registry of hybrid layer types and named patterns, and :func:`expand_layers`.

A layer type is a factory plus the builder options it reads (:class:`LayerType`);
:class:`~ncps_mlx.hybrid.HybridBuilder` stacks them. Named patterns are cycles of layer types
(:data:`PATTERN_CYCLES`) that a layer list may name in place of layers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..layers.conv import CausalConvBlock
from ..layers.conv_attention import ConvAttentionFusion
from ..layers.ffn import FeedForward
from ..layers.gla import GatedLinearAttention
from ..layers.kan import KANLayer
from ..layers.liquid import LiquidLayer
from ..layers.rwkv import RWKVBlock
from ..layers.self_attention import CausalSelfAttention
from ..layers.ssm import MambaBlock

__all__ = [
    "LAYER_TYPES",
    "LayerType",
    "PATTERN_CYCLES",
    "expand_layers",
    "register_layer_type",
    "rename_identifiers",
]

#: Named pattern -> the cycle of layer types it repeats (``zamba_like`` also shares its
#: attention block; see :meth:`~ncps_mlx.hybrid.HybridBuilder.named_pattern`).
PATTERN_CYCLES: dict[str, tuple[str, ...]] = {
    "jamba_like": ("mamba", "attention"),
    "zamba_like": ("mamba", "mamba", "attention"),
    "mamba_gla": ("mamba", "mamba", "gla"),
    "rwkv_attention": ("rwkv", "rwkv", "rwkv", "attention", "rwkv", "rwkv"),
    "full_hybrid": ("mamba", "attention", "gla", "rwkv", "mamba", "ffn"),
    "ssm_stack": ("mamba",),
    "conv_transformer": ("conv", "attention", "conv_attention", "ffn"),
}


@dataclass(frozen=True)
class LayerType:
    """A registered layer: ``factory(d_model, wiring=..., **kwargs)`` builds it.

    The factory is the one description of the layer:
    :meth:`~ncps_mlx.hybrid.HybridBuilder.build` calls it, and
    :meth:`~ncps_mlx.hybrid.HybridBuilder.param_count` calls it too and sums the shapes of the
    parameters it makes (MLX arrays are lazy, so no weight is materialised), so a registered
    layer needs no separate parameter-count formula or validation rules.

    Attributes:
        name: Pattern name (``"mamba"``).
        code: One-letter code for diagrams (``"M"``).
        factory: The layer class or a function returning a module with ``__call__(x, cache)
            -> (y, cache)``, ``step(x_t, cache) -> (y_t, cache)`` and ``make_cache(batch)``. It
            validates its arguments (raising ``ValueError``/``TypeError`` that name its
            keywords; the builder renames them to the options) and should leave its
            parameters unevaluated, so that counting them stays cheap.
        options: Builder option -> constructor keyword (``{"mamba_state_size": "state_size"}``).
        cell_wiring: True if the layer's ``wiring`` is the wiring of a liquid cell rather than a
            mask for projections: such layers take their ``wiring`` only from a dict by layer
            name, and a single builder ``wiring`` as ``projection_wiring``.
    """

    name: str
    code: str
    factory: Callable
    options: dict
    cell_wiring: bool = False

    def in_option_names(self, message: str) -> str:
        """``message`` with the factory's keywords renamed to the builder's options."""
        names = {"d_model": "hidden_size"}
        names.update({keyword: option for option, keyword in self.options.items()})
        return f"{self.name} layer: {rename_identifiers(message, names)}"


def rename_identifiers(message: str, names: dict[str, str]) -> str:
    """``message`` with every whole identifier ``old`` of ``names`` replaced by ``names[old]``
    (``num_heads`` becomes ``attention_num_heads``; ``gla_num_heads`` is left alone)."""
    if not names:
        return message
    words = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
    return re.sub(rf"\b({words})\b", lambda match: names[match.group(1)], message)


#: Layer type name -> :class:`LayerType` (``HybridBuilder.register`` adds to it).
LAYER_TYPES: dict[str, LayerType] = {}


def register_layer_type(name, code, factory, options=None, cell_wiring=False) -> None:
    """Register a layer type; see :meth:`~ncps_mlx.hybrid.HybridBuilder.register`."""
    if not name.isidentifier() or name in PATTERN_CYCLES:
        raise ValueError(f"name must be an identifier and not a pattern name, got {name!r}")
    taken = {t.code: t.name for t in LAYER_TYPES.values() if t.name != name}
    if len(code) != 1 or code in taken:
        raise ValueError(f"code must be one new character, got {code!r} (taken: {taken})")
    LAYER_TYPES[name] = LayerType(name, code, factory, dict(options or {}), cell_wiring)


def expand_layers(spec) -> list[str]:
    """The layer types of ``spec``: a named pattern, a layer type, or a list of both.

    A named pattern (a key of :data:`PATTERN_CYCLES`, the builder's ``PATTERNS``) stands for one
    cycle of its layers (``"jamba_like"`` -> ``["mamba", "attention"]``); for a deeper stack
    repeat it (``["jamba_like"] * 3``) or use
    :meth:`~ncps_mlx.hybrid.HybridBuilder.build_pattern`, which also shares ``zamba_like``'s
    attention block across its cycles.

    Args:
        spec: ``"jamba_like"``, ``"mamba"``, or e.g. ``["jamba_like", "ffn"]``.

    Returns:
        The list of registered layer type names, patterns expanded in place.

    Raises:
        ValueError: If ``spec`` is empty or not a string or list of strings, or names something
            that is neither a layer type nor a pattern; the message lists both and points at
            ``build_pattern``.
    """
    items = [spec] if isinstance(spec, str) else spec
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(
            f"layers must be a pattern name or a non-empty list of layer types and pattern "
            f"names, got {spec!r}; {_known_layers()}"
        )
    known = set(LAYER_TYPES) | set(PATTERN_CYCLES)
    unknown = [item for item in items if not isinstance(item, str) or item not in known]
    if unknown:
        raise ValueError(f"unknown layer types or patterns {unknown}; {_known_layers()}")
    return [layer for item in items for layer in PATTERN_CYCLES.get(item, (item,))]


def _known_layers() -> str:
    return (
        f"layer types: {sorted(LAYER_TYPES)}; named patterns (one cycle each; "
        f"HybridBuilder.build_pattern(name, num_layers, ...) for a given depth): "
        f"{list(PATTERN_CYCLES)}"
    )


def _register_builtin_layers() -> None:
    """The built-in types. Each code is its name's initial where that is unique; the names
    starting with c take C (cfc), V (con-v-olution) and X (conv × attention), so that L is ltc."""
    register = register_layer_type
    mamba = {
        "mamba_state_size": "state_size",
        "mamba_expand_factor": "expand_factor",
        "mamba_conv_width": "conv_width",
    }
    attention = {
        "attention_num_heads": "num_heads",
        "attention_head_dim": "head_dim",
        "attention_window_size": "window_size",
    }
    register("mamba", "M", MambaBlock, mamba)
    register("attention", "A", CausalSelfAttention, attention)
    gla = {"gla_num_heads": "num_heads", "gla_head_dim": "head_dim"}
    register("gla", "G", GatedLinearAttention, gla)
    register("rwkv", "R", RWKVBlock, {"rwkv_head_size": "head_size"})
    register("ffn", "F", FeedForward, {"ffn_hidden_size": "hidden"})
    kan = {"kan_grid_size": "grid_size", "kan_spline_order": "spline_order"}
    register("kan", "K", KANLayer, kan)
    register("conv", "V", CausalConvBlock, {"conv_kernel_size": "kernel_size"})
    # the fused layer's branches take the conv and attention options
    fused = {"conv_kernel_size": "kernel_size", **attention}
    register("conv_attention", "X", ConvAttentionFusion, fused)
    liquid = {"liquid_units": "units", "liquid_features": "features"}
    for name, code in (("cfc", "C"), ("ltc", "L")):
        register(name, code, partial(LiquidLayer, kind=name), liquid, cell_wiring=True)


_register_builtin_layers()
