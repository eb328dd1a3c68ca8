"""A per-token B-spline KAN layer (Liu et al. 2024) whose edges follow a wiring."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..._validation import check_int
from .wired_linear import WiredLinear

__all__ = ["KANLayer", "bspline_bases", "uniform_knots"]


def uniform_knots(grid_size: int, spline_order: int, low: float, high: float) -> np.ndarray:
    """The ``grid_size + 2 * spline_order + 1`` uniform knots: ``grid_size`` intervals on
    ``[low, high]`` extended by ``spline_order`` intervals on each side."""
    step = (high - low) / grid_size
    return low + step * np.arange(-spline_order, grid_size + spline_order + 1, dtype=np.float64)


def bspline_bases(x: mx.array, knots: mx.array, order: int) -> mx.array:
    r"""B-spline bases of degree ``order`` on ``knots``, by the Cox–de Boor recursion.

    .. math::

        B_j^0(x) = [t_j \le x < t_{j+1}], \qquad
        B_j^p(x) = \frac{x - t_j}{t_{j+p} - t_j} B_j^{p-1}(x)
                 + \frac{t_{j+p+1} - x}{t_{j+p+1} - t_{j+1}} B_{j+1}^{p-1}(x)

    Vectorised over all points and bases: ``x`` ``(...)`` and ``knots`` ``(M,)`` give
    ``(..., M - 1 - order)``. On ``[t_order, t_{M-1-order})`` the bases sum to one.
    """
    x = x[..., None]
    bases = ((x >= knots[:-1]) & (x < knots[1:])).astype(x.dtype)
    for p in range(1, order + 1):
        left = (x - knots[: -(p + 1)]) / (knots[p:-1] - knots[: -(p + 1)])
        right = (knots[p + 1 :] - x) / (knots[p + 1 :] - knots[1:-p])
        bases = left * bases[..., :-1] + right * bases[..., 1:]
    return bases


class KANLayer(nn.Module):
    r"""A Kolmogorov–Arnold layer applied to every position independently.

    Each edge :math:`i \to o` that the wiring keeps carries a learnable function

    .. math::

        \phi_{oi}(x) = w^{b}_{oi} \, \operatorname{SiLU}(x) + \sum_{c=0}^{C-1} w^{(c)}_{oi}
            B_c(x), \qquad y_{t,o} = b_o + \sum_i \phi_{oi}(x_{t,i})

    with :math:`C = G + k` B-spline bases of degree :math:`k` (``spline_order``) on a uniform
    grid of :math:`G` (``grid_size``) intervals over ``grid_range``, extended by :math:`k`
    intervals each side (:func:`.bspline_bases`); outside the extended grid the spline term is
    zero. The base weights :math:`w^b` and each coefficient matrix :math:`w^{(c)}` are
    ``(D, D)`` :class:`WiredLinear` weights sharing the wiring's mask, so a missing edge has
    neither a base nor a spline term (the coefficients start as ``WiredLinear``'s uniform
    initialisation divided by :math:`\sqrt{C}`). ``x`` is ``(B, T, D)``, the bases
    ``(B, T, D, C)``. The layer is stateless (cache ``None``).

    Args:
        d_model (int): Model width ``D``.
        grid_size (int): Grid intervals ``G``. Default: ``5``.
        spline_order (int): Spline degree ``k``. Default: ``3`` (cubic).
        wiring (Wiring, optional): Which input -> output edges exist.
        grid_range (tuple[float, float]): The grid's span. Default: ``(-1, 1)``.
    """

    def __init__(self, d_model, grid_size=5, spline_order=3, wiring=None, grid_range=(-1.0, 1.0)):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.grid_size = check_int(grid_size, "grid_size", minimum=1)
        self.spline_order = check_int(spline_order, "spline_order", minimum=0)
        low, high = (float(v) for v in grid_range)
        if not low < high:
            raise ValueError(f"grid_range must be (low, high) with low < high, got {grid_range}")
        self.grid_range = (low, high)
        knots = uniform_knots(self.grid_size, self.spline_order, low, high)
        self._knots = mx.array(knots.astype(np.float32))
        self.base = WiredLinear(self.d_model, self.d_model, wiring)
        count = self.grid_size + self.spline_order
        self.splines = [
            WiredLinear(self.d_model, self.d_model, wiring, bias=False) for _ in range(count)
        ]
        for spline in self.splines:  # C terms per edge: keep the spline's scale that of one
            spline.weight = spline.weight / math.sqrt(count)

    def spline_weight(self) -> mx.array:
        """The masked coefficients, ``(C, D_out, D_in)``."""
        return mx.stack([spline.effective_weight() for spline in self.splines])

    def make_cache(self, batch: int, dtype=mx.float32) -> None:
        """The layer is stateless: no cache."""
        check_int(batch, "batch", minimum=1)
        return None

    def __call__(self, x: mx.array, cache=None):
        """``x`` ``(B, T, D)`` -> ``(y (B, T, D), cache)`` (the cache passes through)."""
        bases = bspline_bases(x, self._knots, self.spline_order)  # (..., D_in, C)
        weight = self.spline_weight()  # (C, D_out, D_in)
        flat = bases.reshape(*x.shape[:-1], -1)  # index i * C + c
        coefficients = weight.transpose(1, 2, 0).reshape(self.d_model, -1)
        return self.base(nn.silu(x)) + flat @ coefficients.T, cache

    def step(self, x_t: mx.array, cache=None):
        """One position: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        return self(x_t, cache)

    def _extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, grid_size={self.grid_size}, "
            f"spline_order={self.spline_order}, grid_range={self.grid_range}"
        )
