"""Argument checks shared by every layer of the package (wirings, cells, layers, tools).

Each raises ``TypeError`` or ``ValueError`` with a message that names the argument and the value
it expected, so that bad input fails at the public boundary with a clear error.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_int", "normalize_seed"]

_SEED_BOUND = 2**32


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise naming the argument.

    Args:
        value: The value to check. Booleans and non-integral numbers are rejected.
        name: The argument name used in the error message.
        minimum: Smallest allowed value (inclusive), or ``None``.
        maximum: Largest allowed value (inclusive), or ``None``.

    Raises:
        TypeError: If ``value`` is not an integer.
        ValueError: If ``value`` is outside ``[minimum, maximum]``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def normalize_seed(seed, name: str = "seed") -> int:
    """Turn ``seed`` into a JSON-safe int in ``[0, 2**32)``, once.

    Args:
        seed: An int (used as is, so ncps seeds give ncps draws), ``None`` (fresh OS entropy),
            or a ``np.random.Generator`` (one draw from it picks the seed).
        name: The argument name for error messages.

    Returns:
        The seed as an int, which a wiring stores in its config so it can be rebuilt exactly.

    Raises:
        TypeError: For any other type. ValueError: For an int outside ``[0, 2**32)``.
    """
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, _SEED_BOUND))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int, None or a numpy Generator, got {seed!r}")
    if not 0 <= int(seed) < _SEED_BOUND:
        raise ValueError(f"{name} must be in [0, 2**32), got {seed}")
    return int(seed)
