"""Routing-by-agreement between capsules (Sabour, Frosst & Hinton, 2017), in numpy.

The reference maths behind :class:`~ncps_mlx.wirings.dynamic.DynamicRoutingWiring`: given the
predictions ``u_hat[i, j]`` that each input capsule ``i`` makes for the pose vector of each
output capsule ``j``, routing finds coupling coefficients ``c[i, j]`` (a distribution over
output capsules for every input capsule) that send each input capsule's vote to the output
capsules that agree with it. :mod:`ncps_mlx.cells.ltc_routing` has the same functions in MLX for
use inside cells; tests check that both agree.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int

__all__ = ["squash", "routing_by_agreement", "routing_coefficients"]

#: Added under the square root of ``squash`` so that a zero vector maps to zero, not NaN.
SQUASH_EPSILON = 1e-9


def squash(s, axis: int = -1) -> np.ndarray:
    r"""The capsule non-linearity :math:`v = \frac{\|s\|^2}{1 + \|s\|^2} \frac{s}{\|s\|}`.

    Keeps the direction of ``s`` and maps its length into ``[0, 1)``.
    """
    s = np.asarray(s)
    norm2 = np.sum(s * s, axis=axis, keepdims=True)
    return s * (norm2 / ((1.0 + norm2) * np.sqrt(norm2 + SQUASH_EPSILON)))


def routing_by_agreement(predictions, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Dynamic routing: coupling coefficients and output capsules.

    .. math::

        b_{ij} &= 0 \\
        \text{repeat } r \text{ times:}\quad c_{ij} &= \operatorname{softmax}_j(b_{ij}), \quad
        s_j = \sum_i c_{ij}\,\hat u_{j|i}, \quad v_j = \operatorname{squash}(s_j), \quad
        b_{ij} \mathrel{+}= \langle \hat u_{j|i}, v_j \rangle

    Args:
        predictions: ``u_hat`` of shape ``(..., num_in, num_out, dim)``: the prediction of input
            capsule ``i`` for output capsule ``j``; leading axes (e.g. batch) are independent.
        iterations: Routing iterations ``r >= 1``. With ``r = 1`` the coupling is uniform.

    Returns:
        ``(c, v)``: ``c`` of shape ``(..., num_in, num_out)``, the coefficients used in the last
        iteration (each row sums to 1 over output capsules), and ``v`` of shape
        ``(..., num_out, dim)``, the output capsules they produce.

    Raises:
        TypeError: If ``iterations`` is not an int or ``predictions`` not numeric.
        ValueError: If ``iterations < 1``, ``predictions`` has fewer than 3 axes, an empty
            capsule axis, or non-finite values.
    """
    iterations = check_int(iterations, "iterations", minimum=1)
    u_hat = _check_predictions(predictions)
    logits = np.zeros(u_hat.shape[:-1], u_hat.dtype)
    for _ in range(iterations):
        shifted = logits - logits.max(axis=-1, keepdims=True)
        coupling = np.exp(shifted)
        coupling /= coupling.sum(axis=-1, keepdims=True)
        outputs = squash(np.einsum("...ij,...ijd->...jd", coupling, u_hat))
        logits = logits + np.einsum("...ijd,...jd->...ij", u_hat, outputs)
    return coupling, outputs


def routing_coefficients(predictions, iterations: int) -> np.ndarray:
    """Only the coupling coefficients ``c`` of :func:`routing_by_agreement`."""
    return routing_by_agreement(predictions, iterations)[0]


def _check_predictions(predictions) -> np.ndarray:
    array = np.asarray(predictions)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"predictions must be an array of real numbers, got dtype {array.dtype}")
    if array.ndim < 3:
        raise ValueError(
            f"predictions must have shape (..., num_in, num_out, dim), got shape {array.shape}"
        )
    if 0 in array.shape[-3:]:
        raise ValueError(f"predictions has an empty capsule axis: shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("predictions must be finite")
    return array if array.dtype.kind == "f" else array.astype(np.float64)
