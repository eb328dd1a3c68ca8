"""Opt-in checks that arrays are finite: NaN and inf reported where they appear.

By default nothing is checked and a NaN or inf in an input propagates silently to the outputs, as
in any MLX computation. Turn the checks on globally with :func:`enable` or for a block with
:func:`finite_checks`; :class:`~ncps_mlx.sequence.LiquidSequence` (``LTC``, ``CfC``) then validates
``x``, ``hx`` and its outputs and final state, raising :class:`NonFiniteError` with the path of
the first offending element (``"x[3, 17, 0] is nan"``). Timespans are validated always (finite,
non-negative), checks or not. While the checks are off the only cost is one boolean test per call.

Example::

    with finite_checks():
        outputs, state = model(x)  # raises NonFiniteError if x, hx or outputs hold NaN/inf

:class:`~ncps_mlx.hybrid.HybridModel` validates its input and outputs the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import mlx.core as mx
import numpy as np

__all__ = ["NonFiniteError", "check_finite", "enable", "finite_checks", "is_enabled", "validate"]

_enabled = False


class NonFiniteError(ValueError):
    """An array holds NaN or inf; the message names the array path and index."""


def enable(flag: bool = True) -> None:
    """Turn the finite checks on (``True``) or off (``False``) for the whole process."""
    global _enabled
    _enabled = bool(flag)


def is_enabled() -> bool:
    """Whether the finite checks are on."""
    return _enabled


@contextmanager
def finite_checks(flag: bool = True) -> Iterator[None]:
    """Turn the finite checks on (or off) inside a ``with`` block, restoring the previous setting
    on exit (exceptions included)."""
    previous = _enabled
    enable(flag)
    try:
        yield
    finally:
        enable(previous)


def check_finite(tree, name: str) -> None:
    """Raise if any floating array in ``tree`` holds NaN or inf (always, checks on or off).

    Args:
        tree: An ``mx.array``, a numpy array, a Python number, or nested tuples, lists and dicts
            of them (``None`` leaves are skipped). Integer and boolean arrays are always finite.
        name: The name of ``tree`` in the message; nested leaves add ``[index]`` or ``['key']``.

    Raises:
        NonFiniteError: Naming the first offending leaf and element, e.g. ``"x[3, 17, 0] is
            nan"`` or ``"hx[1][0, 4] is inf"``.
    """
    for path, leaf in _leaves(tree, name):
        array = leaf if isinstance(leaf, mx.array) else mx.array(np.asarray(leaf))
        if not mx.issubdtype(array.dtype, mx.inexact) or mx.all(mx.isfinite(array)).item():
            continue
        values = np.array(array.astype(mx.float32))
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
        where = f"{path}[{', '.join(map(str, index))}]" if index else path
        raise NonFiniteError(f"{where} is {values[index]}")


def validate(tree, name: str):
    """:func:`check_finite` if the checks are on; returns ``tree`` unchanged either way.

    The one-line hook for a module's inputs and outputs, e.g.
    ``return validate(self.body(validate(x, "x")), "outputs")``.
    """
    if _enabled:
        check_finite(tree, name)
    return tree


def _leaves(tree, path: str):
    """``(path, leaf)`` for every non-None leaf of nested tuples, lists and dicts."""
    if tree is None:
        return
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _leaves(value, f"{path}[{key!r}]")
    elif isinstance(tree, tuple | list):
        for index, value in enumerate(tree):
            yield from _leaves(value, f"{path}[{index}]")
    else:
        yield path, tree
