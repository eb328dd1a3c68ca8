"""Routing-by-agreement in MLX, for cells driven by a
:class:`~ncps_mlx.wirings.dynamic.DynamicRoutingWiring`.

The same maths as the numpy reference :mod:`ncps_mlx.wirings.routing` (tests check they agree),
plus the two gathers a cell needs around it: per-synapse drives -> capsule predictions
(:func:`capsule_predictions_mx`, with the wiring's ``routing_slots()``) and coupling
coefficients -> per-synapse gains (:func:`synapse_coupling_mx`, with ``routing_pairs()``).
Everything is differentiable.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import numpy as np

from .._validation import check_int
from ..wirings.routing import SQUASH_EPSILON

__all__ = [
    "squash_mx",
    "routing_by_agreement_mx",
    "routing_coefficients_mx",
    "capsule_predictions_mx",
    "synapse_coupling_mx",
    "RoutingPlan",
    "routing_plan",
    "routing_gains",
]


def squash_mx(s: mx.array, axis: int = -1) -> mx.array:
    r"""The capsule non-linearity :math:`\frac{\|s\|^2}{1 + \|s\|^2} \frac{s}{\|s\|}`."""
    norm2 = mx.sum(s * s, axis=axis, keepdims=True)
    return s * (norm2 / ((1.0 + norm2) * mx.sqrt(norm2 + SQUASH_EPSILON)))


def routing_by_agreement_mx(predictions: mx.array, iterations: int) -> tuple[mx.array, mx.array]:
    """Dynamic routing (see :func:`ncps_mlx.wirings.routing.routing_by_agreement`).

    Args:
        predictions: ``u_hat`` ``(..., num_in, num_out, dim)``.
        iterations: Routing iterations ``>= 1``.

    Returns:
        ``(c, v)``: coupling ``(..., num_in, num_out)`` (rows sum to 1 over output capsules)
        and output capsules ``(..., num_out, dim)``.
    """
    iterations = check_int(iterations, "iterations", minimum=1)
    if predictions.ndim < 3:
        raise ValueError(
            f"predictions must have shape (..., num_in, num_out, dim), got {predictions.shape}"
        )
    logits = mx.zeros(predictions.shape[:-1], predictions.dtype)
    for _ in range(iterations):
        coupling = mx.softmax(logits, axis=-1)
        outputs = squash_mx(mx.sum(coupling[..., None] * predictions, axis=-3))
        logits = logits + mx.sum(predictions * outputs[..., None, :, :], axis=-1)
    return coupling, outputs


def routing_coefficients_mx(predictions: mx.array, iterations: int) -> mx.array:
    """The coupling coefficients ``(..., num_in, num_out)`` of :func:`routing_by_agreement_mx`."""
    return routing_by_agreement_mx(predictions, iterations)[0]


def capsule_predictions_mx(
    drives: mx.array, slots, num_input: int, num_output: int, capsule_dim: int
) -> mx.array:
    """Sum per-synapse drives into capsule predictions ``u_hat``.

    Args:
        drives: ``(..., S)``, the contribution of every synapse (order of ``synapses()``) to
            its target neuron.
        slots: ``(S,)`` ``wiring.routing_slots()``; synapses with slot -1 are left out.

    Returns:
        ``(..., num_input, num_output, capsule_dim)``: ``u_hat[i, j, k]`` is the summed drive
        of primary capsule ``i`` onto neuron ``k`` of output capsule ``j``.
    """
    slots = np.asarray(slots)
    routed = np.flatnonzero(slots >= 0)
    size = num_input * num_output * capsule_dim
    flat = mx.zeros((*drives.shape[:-1], size), drives.dtype)
    flat = flat.at[..., mx.array(slots[routed])].add(drives[..., mx.array(routed)])
    return flat.reshape(*drives.shape[:-1], num_input, num_output, capsule_dim)


def synapse_coupling_mx(coupling: mx.array, pairs) -> mx.array:
    """Per-synapse gain ``(..., S)``: ``c[i, j]`` for a routing synapse of pair ``i * J + j``,
    1 for the others (``pairs = wiring.routing_pairs()``)."""
    pairs = np.asarray(pairs)
    flat = coupling.reshape(*coupling.shape[:-2], -1)
    gathered = mx.take(flat, mx.array(np.maximum(pairs, 0)), axis=-1)
    return mx.where(mx.array(pairs >= 0), gathered, 1.0)


class RoutingPlan(NamedTuple):
    """Where a DynamicRoutingWiring's routing synapses sit in a cell's fan-in table.

    Attributes:
        source_capsule: ``(J*D, K, I)`` float one-hot of each output-neuron slot's primary
            capsule (all zero for slots that do not route).
        pair: ``(N, K)`` int32 index ``i * J + j`` of each routing slot (0 elsewhere).
        routed: ``(N, K)`` float, 1 for routing slots.
        shape: ``(I, J, D)``; iterations: routing iterations per step.
    """

    source_capsule: mx.array
    pair: mx.array
    routed: mx.array
    shape: tuple
    iterations: int


def routing_plan(wiring, table) -> RoutingPlan:
    """Lay out ``wiring``'s routing synapses (``routing_pairs()``) in a fan-in ``table``."""
    num_in, num_out, dim = wiring.num_input_capsules, wiring.num_capsules, wiring.capsule_dim
    pairs = np.asarray(wiring.routing_pairs())
    rows, width = table.valid.shape
    pair = np.full(rows * width, -1, np.int64)
    pair[table.slot_of_synapse] = pairs
    pair = pair.reshape(rows, width)
    routed = pair >= 0
    one_hot = np.zeros((num_out * dim, width, num_in), np.float32)
    row, slot = np.nonzero(routed[: num_out * dim])
    one_hot[row, slot, pair[row, slot] // num_out] = 1.0
    return RoutingPlan(
        mx.array(one_hot),
        mx.array(np.maximum(pair, 0).astype(np.int32)),
        mx.array(routed.astype(np.float32)),
        (num_in, num_out, dim),
        int(wiring.routing_iterations),
    )


def routing_gains(drive: mx.array, plan: RoutingPlan) -> mx.array:
    """Per-slot gains ``(B, N, K)`` from the synapses' drives ``(B, N, K)``.

    The drives onto each output capsule, summed per primary capsule, are the predictions
    ``u_hat`` ``(B, I, J, D)``; routing by agreement turns them into coupling coefficients
    ``c`` ``(B, I, J)`` (summing to 1 over ``J``), and each routing synapse ``i -> j`` is scaled
    by ``J * c[i, j]`` (1 when the coupling is uniform). Other synapses get gain 1.
    """
    num_in, num_out, dim = plan.shape
    batch = drive.shape[:-2]
    outputs = drive[..., : num_out * dim, :, None] * plan.source_capsule  # (B, J*D, K, I)
    predictions = outputs.sum(axis=-2).reshape(*batch, num_out, dim, num_in)
    predictions = mx.moveaxis(predictions, -1, -3)  # (B, I, J, D)
    coupling = routing_coefficients_mx(predictions, plan.iterations).reshape(*batch, -1)
    gathered = mx.take(coupling, plan.pair.reshape(-1), axis=-1).reshape(*batch, *plan.pair.shape)
    return mx.where(plan.routed > 0, num_out * gathered, 1.0)
