"""Argument checks shared by every layer of the package (wirings, cells, layers, tools).

Each raises ``TypeError`` or ``ValueError`` with a message that names the argument and the value
it expected, so that bad input fails at the public boundary with a clear error.
"""

from __future__ import annotations

import functools
import inspect
import numbers

import numpy as np

__all__ = ["check_int", "normalize_seed", "keyword_aliases"]

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


def keyword_aliases(**aliases: str):
    """Decorator: let a function also take some arguments under other names.

    Each ``alias="name"`` makes ``f(alias=value)`` mean ``f(name=value)``, e.g. ncps's ``hx``
    for our ``h``, or the wiring guide's ``fast_weights`` for ``fast_neurons``. The signature,
    positional order and defaults stay those of the function.

    Args:
        **aliases: Alias -> the name of the function's parameter it stands for.

    Raises:
        TypeError: At a call that passes an argument under both names (the parameter by
            position or by keyword, and the alias), naming both.
    """

    def decorate(function):
        parameters = inspect.signature(function).parameters
        positional = [
            name
            for name, parameter in parameters.items()
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        ]
        unknown = set(aliases.values()) - set(parameters)
        if unknown:
            raise ValueError(f"{function.__qualname__} has no parameters {sorted(unknown)}")

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for alias, name in aliases.items():
                if alias not in kwargs:
                    continue
                by_position = name in positional and positional.index(name) < len(args)
                if by_position or name in kwargs:
                    raise TypeError(
                        f"{function.__qualname__}() got both {name} and {alias}, two names of "
                        "the same argument: pass one of them"
                    )
                kwargs[name] = kwargs.pop(alias)
            return function(*args, **kwargs)

        return wrapper

    return decorate
