"""A position-wise feed-forward layer (Dense + GELU + Dense) with wiring-masked projections."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from .wired_linear import WiredLinear

__all__ = ["FeedForward"]


class FeedForward(nn.Module):
    r"""The transformer MLP, applied to every position independently.

    .. math::

        y_t = W_2 \, \operatorname{GELU}(W_1 x_t + b_1) + b_2

    ``x`` is ``(B, T, D)``; the hidden activation is ``(B, T, hidden)``. The layer has no state:
    its cache is ``None``, and :meth:`step` is the call on one position.

    Args:
        d_model (int): Model width ``D``.
        hidden (int, optional): Hidden width. Default: ``4 * D``.
        wiring (Wiring, optional): Structure of both projections.
    """

    def __init__(self, d_model: int, hidden: int | None = None, wiring=None):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.hidden = check_int(4 * self.d_model if hidden is None else hidden, "hidden", 1)
        self.up = WiredLinear(self.d_model, self.hidden, wiring)
        self.down = WiredLinear(self.hidden, self.d_model, wiring)

    def make_cache(self, batch: int, dtype=mx.float32) -> None:
        """The layer is stateless: no cache."""
        check_int(batch, "batch", minimum=1)
        return None

    def __call__(self, x: mx.array, cache=None):
        """``x`` ``(B, T, D)`` -> ``(y (B, T, D), cache)`` (the cache passes through)."""
        return self.down(nn.gelu(self.up(x))), cache

    def step(self, x_t: mx.array, cache=None):
        """One position: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        return self(x_t, cache)

    def _extra_repr(self) -> str:
        return f"d_model={self.d_model}, hidden={self.hidden}"
