"""Export an :class:`~ncps_mlx.explore.Architecture` as a standalone, readable Python module.

The module spells the canonical architecture out as literals: the pattern, the builder
options, the shared layers and, for a wiring, the constructor call of its class (keywords in
signature order; nested wiring configs, such as an :class:`~ncps_mlx.wirings.AdaptiveWiring`'s
base, as ``Class.from_config({...})``). Its ``build_model()`` calls
:meth:`~ncps_mlx.hybrid.HybridBuilder.build` as :meth:`Architecture.build` does, so for the
same weights it computes the same outputs; with ``num_classes`` it returns a
:class:`~ncps_mlx.explore.tasks.HybridClassifier`, which loads the weights of a classifier
trained by :meth:`~ncps_mlx.explore.tasks.Task.evaluate`. The module imports only
``ncps_mlx`` (and ``mlx``, to print the parameter count when run as a script). The same
architecture always gives the same source.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .._validation import check_int
from ..wirings import Wiring
from .architecture import Architecture

__all__ = ["export_module", "write_module"]

LINE_LENGTH = 100


class _Name(str):
    """Source text that is rendered as is (a name, not a string literal)."""


@dataclass(frozen=True)
class _Call:
    """A call to render: ``function(...)`` with ``(keyword or None, value)`` arguments."""

    function: str
    arguments: tuple = ()


def _flat(value) -> str:
    """``value`` as Python source on one line (strings double-quoted)."""
    if isinstance(value, _Name):
        return str(value)
    if isinstance(value, _Call):
        arguments = ", ".join(_argument(k, _flat(v)) for k, v in value.arguments)
        return f"{value.function}({arguments})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _argument(keyword: str | None, source: str) -> str:
    return source if keyword is None else f"{keyword}={source}"


def _source(value, column: int, indent: int) -> str:
    """``value`` as Python source starting at ``column`` of a line indented by ``indent``.

    One line if it fits (leaving room for a closing comma or bracket). Otherwise the brackets
    open and close on their own lines around one item per line (lists of scalars: several to
    a line), each item indented 4 more and ending with a comma.
    """
    flat = _flat(value)
    if column + len(flat) < LINE_LENGTH or not isinstance(value, (_Call, dict, list)):
        return flat
    inner = indent + 4
    if isinstance(value, _Call):
        items = [
            _argument(k, _source(v, inner + len(k or "") + 1, inner)) for k, v in value.arguments
        ]
    elif isinstance(value, dict):
        items = [
            f"{_flat(k)}: {_source(v, inner + len(_flat(k)) + 2, inner)}" for k, v in value.items()
        ]
    elif any(isinstance(v, (_Call, dict, list)) for v in value):
        items = [_source(v, inner, inner) for v in value]
    else:
        words = " ".join(f"{_flat(v)}," for v in value)
        items = [line[:-1] for line in textwrap.wrap(words, LINE_LENGTH - inner)]
    opening, closing = {_Call: "()", dict: "{}", list: "[]"}[type(value)]
    if isinstance(value, _Call):
        opening = value.function + opening
    body = "".join(f"{' ' * inner}{item},\n" for item in items)
    return f"{opening}\n{body}{' ' * indent}{closing}"


def _wrapped_json(data, width: int = LINE_LENGTH - 4) -> list[str]:
    """``data`` as JSON with sorted keys, broken after commas into lines of at most ``width``
    where possible (whitespace between JSON tokens is insignificant)."""
    encoder = json.JSONEncoder(sort_keys=True, separators=(", ", ": "))
    segments = [""]  # each starts at a comma between items
    for chunk in encoder.iterencode(data):
        if chunk.startswith(", "):
            segments.append("")
        segments[-1] += chunk
    lines = [segments[0]]
    for segment in segments[1:]:
        if len(lines[-1]) + len(segment) >= width:  # keep room for the comma
            lines[-1] += ","
            lines.append(segment[2:])
        else:
            lines[-1] += segment
    return lines


class _Imports:
    """The ``from module import name`` lines of a generated module."""

    def __init__(self):
        self.names: dict[str, set[str]] = {}

    def add(self, module: str, name: str) -> _Name:
        self.names.setdefault(module, set()).add(name)
        return _Name(name)

    def wiring_class(self, class_name: str) -> type:
        """Import the wiring class registered as ``class_name`` and return it.

        Raises:
            ValueError: If the class cannot be imported by name.
        """
        from .. import wirings

        klass = Wiring._registry[class_name]
        if getattr(wirings, klass.__name__, None) is klass:
            self.add("ncps_mlx.wirings", klass.__name__)
        elif klass.__module__ == "__main__" or "." in klass.__qualname__:
            raise ValueError(
                f"wiring class {class_name!r} cannot be imported by a generated module: define "
                "it at the top level of an importable module"
            )
        else:
            self.add(klass.__module__, klass.__name__)
        return klass

    def lines(self) -> list[str]:
        """Sorted as isort (ruff) sorts them: by module, then constants, classes, others."""

        def order(name: str):
            kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
            return kind, name

        return [
            f"from {module} import {', '.join(sorted(names, key=order))}"
            for module, names in sorted(self.names.items())
        ]


def _wiring_call(spec: dict, imports: _Imports) -> _Call:
    """The constructor call of a wiring spec, keywords in signature order; nested wiring
    configs (dicts with a ``class_name``) become ``Class.from_config({...})``."""
    klass = imports.wiring_class(spec["class_name"])
    order = list(inspect.signature(klass).parameters)
    arguments = []
    for keyword in sorted(spec["args"], key=order.index):
        value = spec["args"][keyword]
        if isinstance(value, dict) and "class_name" in value:
            nested = imports.wiring_class(value["class_name"]).__name__
            value = _Call(f"{nested}.from_config", ((None, value),))
        arguments.append((keyword, value))
    return _Call(klass.__name__, tuple(arguments))


_MODULE = '''"""A hybrid stack generated by ``ncps_mlx.explore.codegen``.

{description}

Architecture key ``{key}``. Canonical JSON (whitespace between tokens is insignificant):

{json}

{returns}
"""

{imports}

EMBED_SIZE = {embed_size}
HIDDEN_SIZE = {hidden_size}
PATTERN = {pattern}
SHARED = {shared}
OPTIONS = {options}
{constants}

{functions}

if __name__ == "__main__":
    from mlx.utils import tree_flatten

    model = build_model()
    print(sum(array.size for _, array in tree_flatten(model.parameters())), "parameters")
'''

_BUILD_WIRING = '''def build_wiring():
    """The wiring that masks the projections, built for ``HIDDEN_SIZE`` inputs."""
    wiring = {call}
    wiring.build(HIDDEN_SIZE)
    return wiring
'''

_BUILD_MODEL = '''def build_model():
    """{returns}"""
{body}
'''


def export_module(
    architecture: Architecture, embed_size: int, num_classes: int | None = None
) -> str:
    """The source of a standalone module that rebuilds ``architecture``.

    Args:
        architecture: The architecture to export (its canonical form is written out).
        embed_size: Input width ``E`` of the model.
        num_classes: If given, ``build_model()`` returns a
            :class:`~ncps_mlx.explore.tasks.HybridClassifier` with this many classes
            (``(B, T, E)`` to logits ``(B, C)``); otherwise the
            :class:`~ncps_mlx.hybrid.HybridModel`, ``(B, T, E)`` to ``((B, T, H), cache)``.

    Returns:
        Python source that passes ``ruff check`` at line length 100.

    Raises:
        ValueError: If the wiring's class cannot be imported by name.
    """
    embed_size = check_int(embed_size, "embed_size", minimum=1)
    canonical = json.loads(architecture.canonical_json())  # sorted keys: one source per key
    imports = _Imports()
    arguments = [(None, _Name(n)) for n in ("PATTERN", "EMBED_SIZE", "HIDDEN_SIZE")]
    arguments.append(("shared", _Name("SHARED")))
    functions = []
    if canonical["wiring"] is not None:
        call = _source(_wiring_call(canonical["wiring"], imports), 13, 4)
        functions.append(_BUILD_WIRING.format(call=call))
        arguments.append(("wiring", _Name("build_wiring()")))
    arguments.append((None, _Name("**OPTIONS")))
    build = _Call(f"{imports.add('ncps_mlx.hybrid', 'HybridBuilder')}.build", tuple(arguments))
    shape = f"(B, T, {embed_size})"
    if num_classes is None:
        outputs = f"(B, T, {canonical['hidden_size']})"
        returns = f"The HybridModel ``{shape} -> ({outputs}, cache)``."
        body, constants = f"    return {_source(build, 11, 4)}", ""
    else:
        num_classes = check_int(num_classes, "num_classes", minimum=2)
        classifier = imports.add("ncps_mlx.explore.tasks", "HybridClassifier")
        returns = f"The {classifier} ``{shape} -> (B, {num_classes})`` (logits)."
        body = f"    body = {_source(build, 11, 4)}\n    return {classifier}(body, NUM_CLASSES)"
        constants = f"NUM_CLASSES = {num_classes}\n"
    functions.append(_BUILD_MODEL.format(returns=returns, body=body))
    json_text = "\n".join("    " + line for line in _wrapped_json(canonical))
    return _MODULE.format(
        description=textwrap.fill(f"Architecture: {architecture.describe()}.", LINE_LENGTH),
        key=architecture.key(),
        json=json_text.replace("\\", "\\\\"),
        returns=textwrap.fill(
            f"``build_model()`` returns {returns[0].lower()}{returns[1:]} Run this file to "
            "print its parameter count.",
            LINE_LENGTH,
        ),
        imports="\n".join(imports.lines()),
        embed_size=embed_size,
        hidden_size=canonical["hidden_size"],
        pattern=_source(canonical["pattern"], 10, 0),
        shared=_source(canonical["shared"], 9, 0),
        options=_source(canonical["options"], 10, 0),
        constants=constants,
        functions="\n\n".join(functions),
    )


def write_module(
    architecture: Architecture, path, embed_size: int, num_classes: int | None = None
) -> Path:
    """Write :func:`export_module` to ``path`` (UTF-8) and return it as a ``Path``."""
    path = Path(path)
    path.write_text(export_module(architecture, embed_size, num_classes), encoding="utf-8")
    return path
