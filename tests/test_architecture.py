"""The package's architecture: no import cycles, imports only point down the layers, and the old
import paths still lead to the same objects.

The import graph is read with ``ast`` from the source of the installed package (nothing of ours is
imported to build it): module-level imports and imports inside functions and methods, absolute and
relative. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
``pkg`` (its ``__init__``). The implicit import of parent packages is not an edge: importing
``ncps_mlx.wirings.base`` runs ``ncps_mlx/__init__.py``, but that is Python's doing, not the
module's dependency.

The layers, bottom to top, are in ``RANKS`` (see ``docs/architecture.rst``). A module takes the
rank of its top-level module or package under ``ncps_mlx``, so a new module inside a package
needs no entry here; a new top-level module or package must be added to ``RANKS``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

PACKAGE = "ncps_mlx"

# Layers, bottom to top: an import may go to the same rank or a lower one, never a higher one.
TOP = 7
RANKS = {
    # Shared argument checks, dtype casting, opt-in finite checks, plots: nothing of ours.
    "_validation": 0,
    "_dtypes": 0,
    "_version": 0,  # the version string: nothing of ours
    "checks": 0,
    "viz": 0,
    "wirings": 1,  # the connectome: numpy + networkx, never MLX
    "cells": 2,  # one-step MLX cells driven by a wiring
    "kernels": 2,  # fused GPU kernels of whole sequences of a cell
    "sequence": 3,  # the time loop around a cell, model files
    "hybrid": 4,  # wiring-masked sequence layers and the models built from them
    "training": 5,
    "serialization": 5,
    "quantization": 5,
    "streaming": 5,
    # Applications: nothing in the library imports them.
    "datasets": 6,
    "explore": 6,
    "apps": 6,
    # The old import paths (re-exports of the new homes) and the package's entry points.
    "rnn": TOP,
    "io": TOP,
    "models": TOP,
    "__main__": TOP,
}
FOUNDATION = 0


# ---------------------------------------------------------------------------- the import graph
@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.path}:{self.line})"


def package_root() -> Path:
    """The directory of the installed package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.origin is not None, f"{PACKAGE} is not installed"
    return Path(spec.origin).parent


@cache
def module_files() -> dict[str, Path]:
    """``{dotted module name: source file}`` of every module of the package."""
    root = package_root()
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


@cache
def module_names() -> frozenset[str]:
    """Every module and package of ours, namespace packages (no ``__init__.py``) included."""
    names = set(module_files())
    for name in module_files():
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(names)


def imports_of(module: str, is_package: bool, source: str, modules: frozenset[str]):
    """``(imported module, line)`` of every import statement in ``source``, at any depth."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: level 1 is the module's own package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                yield (candidate if candidate in modules else origin), node.lineno


@cache
def all_imports() -> tuple[Edge, ...]:
    """Every import statement of the package, ours and third-party."""
    root = package_root().parent
    edges = []
    for name, path in module_files().items():
        source = path.read_text(encoding="utf-8")
        for target, line in imports_of(name, path.name == "__init__.py", source, module_names()):
            edges.append(Edge(name, target, str(path.relative_to(root)), line))
    return tuple(edges)


def is_ours(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


@cache
def internal_edges() -> tuple[Edge, ...]:
    """Imports of one of our modules by another (a module importing itself is left out)."""
    return tuple(e for e in all_imports() if is_ours(e.target) and e.target != e.source)


def find_cycle(edges) -> list[Edge] | None:
    """One import cycle as its edges, or None (depth-first search, white/grey/black)."""
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
    state: dict[str, str] = {}  # absent: unvisited; "open": on the current path; "done"
    path: list[Edge] = []

    def visit(node: str) -> list[Edge] | None:
        state[node] = "open"
        for edge in graph.get(node, []):
            if state.get(edge.target) == "open":
                start = next(i for i, e in enumerate(path) if e.source == edge.target)
                return path[start:] + [edge]
            if edge.target not in state:
                path.append(edge)
                found = visit(edge.target)
                if found:
                    return found
                path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def rank_of(module: str) -> int:
    """The layer of a module: its top-level module's or package's entry in ``RANKS``."""
    parts = module.split(".")
    if len(parts) == 1:  # the package's __init__, which re-exports the public names
        return TOP
    if parts[1] not in RANKS:
        pytest.fail(
            f"{PACKAGE}.{parts[1]} has no layer: add {parts[1]!r} to RANKS in "
            "tests/test_architecture.py (and to the diagram in docs/architecture.rst), with a "
            "rank at least that of every module it imports"
        )
    return RANKS[parts[1]]


# ---------------------------------------------------------------------------- the reader itself
def test_import_reader_resolves_relative_absolute_and_nested_imports():
    modules = frozenset(
        {"pkg", "pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.other", "pkg.ns", "pkg.ns.c"}
    )
    source = """
import numpy as np
from . import b, helper
from .b import name
from .. import other
from ..ns import c
from pkg.sub import b as bee, CONSTANT

def later():
    import pkg.other.deep
    from ..other import thing
"""
    found = sorted(imports_of("pkg.sub.a", False, source, modules))
    assert found == [
        ("numpy", 2),
        ("pkg.ns.c", 6),
        ("pkg.other", 5),
        ("pkg.other", 11),
        ("pkg.other.deep", 10),
        ("pkg.sub", 3),  # `helper` is no module: an edge to the package's __init__
        ("pkg.sub", 7),
        ("pkg.sub.b", 3),
        ("pkg.sub.b", 4),
        ("pkg.sub.b", 7),
    ]
    # In a package's __init__, `from . import x` is relative to the package itself.
    assert list(imports_of("pkg.sub", True, "from . import a", modules)) == [("pkg.sub.a", 1)]


def test_import_graph_covers_every_module_of_the_package():
    sources = {edge.source for edge in internal_edges()}
    assert PACKAGE in sources and f"{PACKAGE}.sequence.ltc" in sources
    assert len(module_files()) > 50, "the package's modules were not found"


def test_find_cycle_returns_the_cycle():
    edges = [Edge("a", "b", "a.py", 1), Edge("b", "c", "b.py", 2), Edge("c", "b", "c.py", 3)]
    assert [e.source for e in find_cycle(edges)] == ["b", "c"]
    assert find_cycle(edges[:2]) is None


# ---------------------------------------------------------------------------- the properties
def test_no_import_cycles():
    cycle = find_cycle(internal_edges())
    assert cycle is None, "import cycle:\n  " + "\n  ".join(map(str, cycle))


def test_every_top_level_module_has_a_layer():
    for module in module_names():
        rank_of(module)


def test_imports_never_point_to_a_higher_layer():
    upward = [e for e in internal_edges() if rank_of(e.target) > rank_of(e.source)]
    assert not upward, "imports pointing up the layers (see RANKS):\n  " + "\n  ".join(
        f"{e}  [rank {rank_of(e.source)} -> {rank_of(e.target)}]" for e in upward
    )


def test_foundation_modules_import_nothing_of_ours():
    ours = [e for e in internal_edges() if rank_of(e.source) == FOUNDATION]
    assert not ours, "modules of rank 0 import from the package:\n  " + "\n  ".join(map(str, ours))


#: The one place a wiring hands data to MLX: ``Wiring.mask()`` (DESIGN, "The Wiring contract":
#: a dense mask for MLX kernels) imports MLX when it is called. Importing or using a wiring
#: otherwise needs no MLX; any other MLX import under ``wirings`` fails the test below.
MLX_BRIDGE = ("ncps_mlx.wirings.base", "Wiring", "mask")


def lines_of_method(module: str, class_name: str, method: str) -> range:
    """The source lines of ``class_name.method`` in ``module``."""
    tree = ast.parse(module_files()[module].read_text(encoding="utf-8"))
    owner = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    node = next(n for n in owner.body if isinstance(n, ast.FunctionDef) and n.name == method)
    return range(node.lineno, node.end_lineno + 1)


def test_wirings_never_reach_mlx():
    """No module of ``wirings``, nor anything it imports of ours, imports MLX, except for the
    call-time import in ``Wiring.mask`` (:data:`MLX_BRIDGE`)."""
    edges = internal_edges()
    reached = {m: None for m in module_files() if m.startswith(f"{PACKAGE}.wirings")}
    frontier = list(reached)
    while frontier:  # our modules the wirings import, directly or not, with the edge to each
        module = frontier.pop()
        for edge in edges:
            if edge.source == module and edge.target not in reached:
                reached[edge.target] = edge
                frontier.append(edge.target)

    def chain(module):
        links = []
        while reached[module] is not None:
            links.append(reached[module])
            module = reached[module].source
        return "".join(f"\n    via {link}" for link in reversed(links))

    bridge = lines_of_method(*MLX_BRIDGE)
    mlx = [
        e
        for e in all_imports()
        if e.source in reached
        and e.target.split(".")[0] == "mlx"
        and not (e.source == MLX_BRIDGE[0] and e.line in bridge)
    ]
    assert not mlx, "wirings must not need MLX:\n  " + "\n  ".join(
        f"{e}{chain(e.source)}" for e in mlx
    )


# ---------------------------------------------------------------------------- old import paths
def resolve(dotted: str):
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


OLD_PATHS = {
    **{
        f"ncps_mlx.rnn.{n}": f"ncps_mlx.sequence.{n}"
        for n in ["LTC", "CfC", "LiquidSequence", "CTRNN", "CTGRU", "ODELSTM"]
    },
    **{
        f"ncps_mlx.io.{n}": f"ncps_mlx.serialization.{n}"
        for n in ["load_model", "save_model", "load_ncps_state_dict"]
    },
    **{
        f"ncps_mlx.models.{n}": f"ncps_mlx.training.classifier.{n}"
        for n in ["SequenceClassifier", "accuracy", "classification_loss", "fit_classifier"]
    },
    "ncps_mlx.training.fit": "ncps_mlx.training.loop.fit",
}


@pytest.mark.parametrize("old, new", OLD_PATHS.items(), ids=list(OLD_PATHS))
def test_old_import_path_is_the_object_of_the_new_home(old, new):
    assert resolve(old) is resolve(new)


def top_level_names():
    import ncps_mlx

    return list(ncps_mlx.__all__)


@pytest.mark.parametrize("name", top_level_names())
def test_top_level_name_is_the_object_its_home_defines(name):
    import ncps_mlx

    obj = getattr(ncps_mlx, name)
    if isinstance(obj, ModuleType):
        assert obj is importlib.import_module(f"{PACKAGE}.{name}")
    elif inspect.isclass(obj) or inspect.isfunction(obj):
        home = importlib.import_module(obj.__module__)
        assert is_ours(home.__name__), f"{name} is defined outside {PACKAGE}"
        assert getattr(home, obj.__qualname__) is obj
    else:
        assert name == "__version__" and isinstance(obj, str)
