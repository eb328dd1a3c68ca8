"""Sphinx configuration of the ncps-mlx documentation.

Build (warnings are errors, references are checked):

    sphinx-build -W -n -b html docs docs/_build/html
    sphinx-build -W -n -b doctest docs docs/_build/doctest
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")  # headless: tutorials and make_plots.py never open a window

sys.path.insert(0, os.path.abspath(".."))

import ncps_mlx  # noqa: E402

project = "ncps-mlx"
author = "ncps-mlx contributors"
copyright = "ncps-mlx contributors"
release = ncps_mlx.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"ncps-mlx {release}"
default_role = "code"

# ---------------------------------------------------------------------------- autodoc / napoleon
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_inherit_docstrings = True
autodoc_preserve_defaults = False  # show default values, not the names of private constants

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True

# ---------------------------------------------------------------------------- nitpicky references
# Types of third-party libraries cannot be resolved without intersphinx (no network at build
# time), and the library's annotations use their short import names.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(np|numpy)(\..*)?"),
    (r"py:.*", r"(mx|mlx)(\..*)?"),
    (r"py:.*", r"(nn)(\..*)?"),
    (r"py:.*", r"(nx|networkx)(\..*)?"),
    (r"py:.*", r"(matplotlib|os|collections|argparse|datetime|abc|pathlib)(\..*)?"),
    # Prose in Google-style type fields ("tuple of 3 floats", "sequence of int").
    (r"py:class", r"(optional|callable|sequence|array-like|floats|ints|\d+ \w+)"),
]

# ---------------------------------------------------------------------------- doctest
doctest_global_setup = """
import os
import tempfile

import matplotlib
matplotlib.use("Agg")
import mlx.core as mx
import numpy as np

try:  # the reference implementation, for the parity examples (the ``parity`` extra)
    import ncps.wirings as ncps_wirings
except ImportError:
    ncps_wirings = None
import importlib.util
# The examples that run ncps's PyTorch modules are skipped when this is True.
no_ncps_torch = ncps_wirings is None or importlib.util.find_spec("torch") is None

mx.random.seed(0)
_doc_cwd = os.getcwd()
_doc_tmp = tempfile.TemporaryDirectory()
os.chdir(_doc_tmp.name)  # files written by the examples land in a scratch directory
"""
doctest_global_cleanup = """
os.chdir(_doc_cwd)
_doc_tmp.cleanup()
"""
doctest_test_doctest_blocks = "default"


# ---------------------------------------------------------------------------- build hooks
import importlib  # noqa: E402
import inspect  # noqa: E402

from sphinx.util.nodes import make_refnode  # noqa: E402


def _public_bases(app, name, obj, options, bases):
    """Show a private mixin's (``_MultiHead``) or helper base's public bases instead of it."""

    def public(cls):
        if cls.__name__.startswith("_"):
            return [p for base in cls.__bases__ if base is not object for p in public(base)]
        return [cls]

    expanded = []
    for base in bases:
        for cls in public(base) if isinstance(base, type) else [base]:
            if cls not in expanded:
                expanded.append(cls)
    bases[:] = expanded


def _import_dotted(path):
    """The Python object a dotted name stands for (members looked up statically, along the
    MRO), or None."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                obj = inspect.getattr_static(obj, part)
        except AttributeError:
            return None
        return obj
    return None


def _identifiable(obj) -> bool:
    return (
        inspect.ismodule(obj)
        or inspect.isclass(obj)
        or inspect.isfunction(obj)
        or (isinstance(obj, (property, classmethod, staticmethod)))
    )


# Built once per build, after reading (object ids are only valid in this process, so the index
# is kept here rather than in the pickled build environment).
_IDENTITY_INDEX: dict = {}


def _reset_identity_index(app, env):
    _IDENTITY_INDEX.clear()


def _documented_objects(env) -> dict:
    """``{id(python object): (documented name, entry)}`` of every documented py object."""
    if not _IDENTITY_INDEX:
        for name, entry in env.get_domain("py").objects.items():
            obj = _import_dotted(name)
            if obj is not None and _identifiable(obj) and not entry.aliased:
                _IDENTITY_INDEX.setdefault(id(obj), (name, entry))
    return _IDENTITY_INDEX


def _resolve_by_identity(app, env, node, contnode):
    """Resolve a Python reference the library writes by another path than the documented one.

    The API reference documents each object once, under its public name
    (``ncps_mlx.wirings.Wiring``); docstrings may name it by its defining module
    (``ncps_mlx.wirings.base.Wiring``) or, in a subclass, name an inherited member
    (``:meth:`synapses```). Both resolve to the same Python object, which is looked up here.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module and cls:
        candidates.append(f"{module}.{cls}.{target}")
    if module:
        candidates.append(f"{module}.{target}")
    index = _documented_objects(env)
    for candidate in candidates:
        obj = _import_dotted(candidate)
        if obj is None or not _identifiable(obj) or id(obj) not in index:
            continue
        name, entry = index[id(obj)]
        return make_refnode(
            app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name
        )
    return None


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("env-updated", _reset_identity_index)
    app.connect("missing-reference", _resolve_by_identity)
