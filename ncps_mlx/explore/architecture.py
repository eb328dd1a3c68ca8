"""``Architecture``: one hybrid stack as data — a layer pattern, builder options and a wiring.

Exploration compares, stores and regenerates architectures, so each has a *canonical*
description: two architectures that build the same model have the same canonical JSON (and
so the same :meth:`Architecture.key`). Canonicalisation drops options that no layer of the
pattern reads, options equal to the layers' defaults and ``shared`` names that are used at
most once; numbers that are whole are written as ints, and keys are sorted.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field

from .._validation import check_int
from ..hybrid.models.builder import HybridBuilder
from ..wirings import Wiring

__all__ = ["Architecture", "option_defaults"]


def option_defaults(layer: str) -> dict:
    """``{builder option: default value}`` of a registered layer type (from its factory's
    signature; options without a default are left out)."""
    layer_type = HybridBuilder._registry[layer]
    parameters = inspect.signature(layer_type.factory).parameters
    return {
        option: parameters[keyword].default
        for option, keyword in layer_type.options.items()
        if keyword in parameters and parameters[keyword].default is not inspect.Parameter.empty
    }


def _plain(value):
    """JSON-normal form: whole floats as ints, tuples as lists, dict keys sorted (by json)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Architecture:
    """A hybrid stack as data.

    Attributes:
        pattern: Layer type names, e.g. ``("mamba", "attention", "ffn")`` (see
            :meth:`~ncps_mlx.hybrid.HybridBuilder.layer_types`).
        hidden_size: Model width ``H``.
        options: Builder options (``{"attention_num_heads": 2}``; see
            :meth:`~ncps_mlx.hybrid.HybridBuilder.options`), without ``wiring``.
        wiring: A wiring spec (:meth:`~ncps_mlx.wirings.Wiring.spec`) masking every
            projection, or None.
        shared: Layer names whose blocks reuse one module.
    """

    pattern: tuple = ()
    hidden_size: int = 64
    options: dict = field(default_factory=dict)
    wiring: dict | None = None
    shared: tuple = ()

    def __post_init__(self):
        pattern = self.pattern
        if isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty sequence of layer names")
        object.__setattr__(self, "pattern", tuple(HybridBuilder._check_pattern(list(pattern))))
        object.__setattr__(self, "hidden_size", check_int(self.hidden_size, "hidden_size", 1))
        if not isinstance(self.options, dict):
            raise TypeError(f"options must be a dict, got {type(self.options).__name__}")
        if "wiring" in self.options:
            raise ValueError(
                "give the wiring as Architecture(wiring=wiring.spec()), not in options"
            )
        HybridBuilder._check_options(self.options)
        object.__setattr__(self, "options", _plain(self.options))
        if isinstance(self.wiring, Wiring):
            object.__setattr__(self, "wiring", self.wiring.spec())
        if self.wiring is not None:
            Wiring.from_spec(self.wiring)  # validates
            object.__setattr__(self, "wiring", _plain(self.wiring))
        if isinstance(self.shared, str):
            raise ValueError("shared must be a sequence of layer names, not a string")
        object.__setattr__(self, "shared", tuple(self.shared))

    # ------------------------------------------------------------------ canonical form
    def canonical(self) -> dict:
        """The canonical description (a JSON-safe dict; see the module docstring)."""
        options = {}
        for option, value in sorted(self.options.items()):
            readers = [
                layer
                for layer in set(self.pattern)
                if option in HybridBuilder._registry[layer].options
            ]
            if not readers:
                continue
            if all(option_defaults(layer).get(option, object()) == value for layer in readers):
                continue
            options[option] = value
        shared = sorted(name for name in set(self.shared) if self.pattern.count(name) > 1)
        return {
            "pattern": list(self.pattern),
            "hidden_size": self.hidden_size,
            "options": options,
            "wiring": self.wiring,
            "shared": shared,
        }

    def canonical_json(self) -> str:
        """:meth:`canonical` as compact JSON with sorted keys."""
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """A 16-hex-digit digest of :meth:`canonical_json`: equal for equal architectures."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def __eq__(self, other) -> bool:
        return isinstance(other, Architecture) and self.canonical_json() == other.canonical_json()

    def __hash__(self) -> int:
        return hash(self.canonical_json())

    @classmethod
    def from_dict(cls, data: dict) -> Architecture:
        """Rebuild from :meth:`canonical` (or any dict with the same keys).

        Raises:
            ValueError: On unknown keys, layer names or options.
        """
        if not isinstance(data, dict):
            raise TypeError(f"an architecture is a dict, got {type(data).__name__}")
        unknown = set(data) - {"pattern", "hidden_size", "options", "wiring", "shared"}
        if unknown:
            raise ValueError(f"unknown architecture keys {sorted(unknown)}")
        return cls(
            tuple(data.get("pattern", ())),
            data.get("hidden_size", 64),
            dict(data.get("options", {})),
            data.get("wiring"),
            tuple(data.get("shared", ())),
        )

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        """Rebuild from :meth:`canonical_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not an architecture description: {error}") from None
        return cls.from_dict(data)

    # ------------------------------------------------------------------ models
    def builder_options(self) -> dict:
        """Keyword arguments for :meth:`HybridBuilder.build`: the options, and the wiring made
        from its spec and built with ``hidden_size`` inputs (so NCP-style wirings have drawn
        their synapses)."""
        options = dict(self.options)
        if self.wiring is not None:
            wiring = Wiring.from_spec(self.wiring)
            wiring.build(self.hidden_size)
            options["wiring"] = wiring
        return options

    def build(self, embed_size: int):
        """The :class:`~ncps_mlx.hybrid.HybridModel`: ``model(x, cache=None) -> (y, cache)``
        with ``x`` ``(B, T, embed_size)`` and ``y`` ``(B, T, H)``."""
        return HybridBuilder.build(
            list(self.pattern),
            embed_size,
            self.hidden_size,
            shared=self.shared,
            **self.builder_options(),
        )

    def param_count(self, embed_size: int) -> int:
        """Exact parameter count of :meth:`build`: the model is constructed as :meth:`build`
        does, without evaluating its weights (see
        :meth:`~ncps_mlx.hybrid.HybridBuilder.param_count`), and raises the same errors."""
        return HybridBuilder.param_count(
            list(self.pattern),
            embed_size,
            self.hidden_size,
            shared=self.shared,
            **self.builder_options(),
        )

    def describe(self) -> str:
        """One line: the layer codes, the width, non-default options, wiring and sharing."""
        codes = " → ".join(HybridBuilder._registry[name].code for name in self.pattern)
        canonical = self.canonical()
        parts = [codes, f"H={self.hidden_size}"]
        parts += [f"{k}={v}" for k, v in canonical["options"].items()]
        if self.wiring is not None:
            parts.append(f"wiring={self.wiring['class_name']}")
        if canonical["shared"]:
            parts.append(f"shared={','.join(canonical['shared'])}")
        return " ".join(parts)
