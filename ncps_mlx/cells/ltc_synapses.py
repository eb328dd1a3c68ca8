"""The LTC cell's synapse currents (see :class:`~ncps_mlx.cells.LTCCell`), in either layout.

Dense: parameters are ``(S, N)`` matrices over all source/target pairs (masked). Fan-in
tables (:mod:`~ncps_mlx.cells.fan_in`): parameters are ``(N, K)``, one row per target neuron
holding its synapses, with the sources gathered per solver iteration; cost per synapse, never
``N x N``.
"""

from __future__ import annotations

import mlx.core as mx

from .fan_in import FanInTable, fan_in_table
from .fast_math import sigmoid
from .ltc_routing import routing_gains

__all__ = ["synapse_sums", "table_if_sparse", "routed_synapses"]


def synapse_sums(presynaptic, w_erev, w, mu, sigma, sources):
    """Per target: ``sum_i w * sigmoid(sigma * (x_i - mu)) * erev`` and the same without erev.

    ``presynaptic`` is ``(..., S)`` (source potentials or inputs). Dense: the parameters are
    ``(S, N)`` and ``sources`` None; fan-in table: they are ``(N, K)`` and ``sources`` ``(N*K,)``.
    Returns two ``(..., N)`` arrays.
    """
    if sources is None:
        activation = sigmoid(sigma * (presynaptic[..., :, None] - mu))
        axis = -2
    else:
        gathered = mx.take(presynaptic, sources, axis=-1).reshape(
            *presynaptic.shape[:-1], *mu.shape
        )
        activation = sigmoid(sigma * (gathered - mu))
        axis = -1
    return (activation * w_erev).sum(axis=axis), (activation * w).sum(axis=axis)


def table_if_sparse(sparse, src, dst, num_sources: int, num_targets: int) -> FanInTable | None:
    """A fan-in table for the synapse set ``src -> dst``, or None to use dense matrices.

    ``sparse`` is :class:`~ncps_mlx.cells.LTCCell`'s argument: True (always a table), False
    (never) or None (a table when the largest fan-in is at most half of ``num_sources``).
    """
    if sparse is False:
        return None
    table = fan_in_table(src, dst, num_targets)
    return table if sparse or 2 * table.width <= num_sources else None


def routed_synapses(v, synapses, plan):
    """``synapses`` ``(w_erev, w, mu, sigma, sources)`` (fan-in layout) with their weights
    scaled by routing-by-agreement gains computed from the potentials ``v`` ``(B, N)`` at the
    step's start (:func:`~ncps_mlx.cells.ltc_routing.routing_gains`)."""
    w_erev, w, mu, sigma, sources = synapses
    gathered = mx.take(v, sources, axis=-1).reshape(*v.shape[:-1], *mu.shape)
    gain = routing_gains(sigmoid(sigma * (gathered - mu)) * w, plan)
    return w_erev * gain, w * gain, mu, sigma, sources
