"""Casting a model to another floating dtype, in place (parameters and constants alike).

Every model family's ``astype`` method calls :func:`astype`; :mod:`ncps_mlx.quantization`
re-exports it beside ``quantize``, with which it composes.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

__all__ = ["FLOAT_DTYPES", "astype"]

#: The dtypes :func:`astype` accepts.
FLOAT_DTYPES = (mx.float32, mx.float16, mx.bfloat16)


def astype(model: nn.Module, dtype: mx.Dtype) -> nn.Module:
    """Cast a model to ``float32``, ``float16`` or ``bfloat16`` in place; returns the model.

    Casts every floating array that a module of the model holds: the parameters (the scales
    and biases of quantized layers included; their packed weights stay as they are) and the
    constants kept in private attributes (wiring masks, fan-in tables, time-scale factors), so
    that no float32 array is left to promote the computation back to float32.
    :class:`~ncps_mlx.sequence.LiquidSequence` modules cast their inputs to the dtype of their
    parameters, so their outputs come back in ``dtype``; other modules compute in ``dtype``
    when their inputs are in ``dtype``. Casting to a narrower dtype rounds the weights:
    casting back does not restore them.

    Args:
        model (nn.Module): The model, changed in place.
        dtype (mx.Dtype): ``mx.float32``, ``mx.float16`` or ``mx.bfloat16``.

    Raises:
        TypeError: If ``dtype`` is not an ``mlx.core.Dtype``.
        ValueError: If ``dtype`` is not one of the three floating dtypes.
    """
    if not isinstance(dtype, mx.Dtype):
        raise TypeError(f"dtype must be an mlx.core.Dtype such as mx.float16, got {dtype!r}")
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {list(FLOAT_DTYPES)}, got {dtype}")
    for module in model.modules():
        for name, value in list(module.items()):
            module[name] = _cast_floating(value, dtype)
    return model


def _cast_floating(value, dtype: mx.Dtype):
    """``value`` with its floating MLX arrays cast to ``dtype``, through lists, dicts and
    (named) tuples; anything else unchanged (modules too: :func:`astype` visits each)."""
    if isinstance(value, nn.Module):
        return value
    if isinstance(value, mx.array):
        return value.astype(dtype) if mx.issubdtype(value.dtype, mx.floating) else value
    if isinstance(value, dict):
        return {key: _cast_floating(item, dtype) for key, item in value.items()}
    if isinstance(value, list):
        return [_cast_floating(item, dtype) for item in value]
    if isinstance(value, tuple):
        items = [_cast_floating(item, dtype) for item in value]
        return type(value)._make(items) if hasattr(value, "_make") else tuple(items)
    return value
