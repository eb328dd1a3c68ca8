"""The LTC cell's synapse currents (see :class:`~ncps_mlx.cells.LTCCell`), in either layout.

Dense: parameters are ``(S, N)`` matrices over all source/target pairs (masked). Fan-in
tables (:mod:`~ncps_mlx.cells.fan_in`): parameters are ``(N, K)``, one row per target neuron
holding its synapses, with the sources gathered per solver iteration; cost per synapse, never
``N x N``.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx

from .fan_in import FanInTable, fan_in_table
from .fast_math import sigmoid
from .ltc_routing import routing_gains

__all__ = ["SynapseParams", "synapse_sums", "table_if_sparse", "routed_synapses"]


class SynapseParams(NamedTuple):
    """One synapse set of an LTC step (``S`` sources onto ``N`` neurons), in either layout:
    dense ``(S, N)`` matrices, or ``(N, K)`` fan-in tables (``K`` the largest fan-in; padding
    slots have weight 0). The weights are constrained (positive) and masked.

    Attributes:
        w_erev: ``w * erev``, ``(S, N)`` or ``(N, K)``.
        w: Synapse weights, ``(S, N)`` or ``(N, K)``.
        mu: Sigmoid midpoints, ``(S, N)`` or ``(N, K)``.
        sigma: Sigmoid slopes, ``(S, N)`` or ``(N, K)``.
        sources: ``(N * K,)`` int32 source of every slot, target-major (fan-in layout); None in
            the dense layout.
    """

    w_erev: mx.array
    w: mx.array
    mu: mx.array
    sigma: mx.array
    sources: mx.array | None


def _activation_sums(presynaptic, sigma, mu, w_erev, w, axis: int):
    activation = sigmoid(sigma * (presynaptic - mu))
    return (activation * w_erev).sum(axis=axis), (activation * w).sum(axis=axis)


#: One fused kernel for the activations and both sums (the prepared sensory sums of a whole
#: sequence otherwise make several passes over a ``(T, B, N, K)`` intermediate).
_compiled_activation_sums = mx.compile(_activation_sums)


def synapse_sums(presynaptic, synapses: SynapseParams):
    """Per target: ``sum_i w * sigmoid(sigma * (x_i - mu)) * erev`` and the same without erev.

    Args:
        presynaptic: ``(..., S)`` source potentials or inputs.
        synapses (SynapseParams): The synapse set, dense or fan-in layout.

    Returns:
        Two ``(..., N)`` arrays: the sums with and without ``erev``.
    """
    mu = synapses.mu
    if synapses.sources is None:
        presynaptic, axis = presynaptic[..., :, None], -2
    else:
        gathered = mx.take(presynaptic, synapses.sources, axis=-1)
        presynaptic, axis = gathered.reshape(*presynaptic.shape[:-1], *mu.shape), -1
    return _compiled_activation_sums(
        presynaptic, synapses.sigma, mu, synapses.w_erev, synapses.w, axis
    )


def table_if_sparse(sparse, src, dst, num_sources: int, num_targets: int) -> FanInTable | None:
    """A fan-in table for the synapse set ``src -> dst``, or None to use dense matrices.

    ``sparse`` is :class:`~ncps_mlx.cells.LTCCell`'s argument: True (always a table), False
    (never) or None (a table when the largest fan-in is at most half of ``num_sources``).
    """
    if sparse is False:
        return None
    table = fan_in_table(src, dst, num_targets)
    return table if sparse or 2 * table.width <= num_sources else None


def routed_synapses(v, synapses: SynapseParams, plan) -> SynapseParams:
    """``synapses`` (fan-in layout) with their weights scaled by routing-by-agreement gains
    ``(B, N, K)`` computed from the potentials ``v`` ``(B, N)`` at the step's start
    (:func:`~ncps_mlx.cells.ltc_routing.routing_gains`); the weights become ``(B, N, K)``."""
    mu = synapses.mu
    gathered = mx.take(v, synapses.sources, axis=-1).reshape(*v.shape[:-1], *mu.shape)
    gain = routing_gains(sigmoid(synapses.sigma * (gathered - mu)) * synapses.w, plan)
    return synapses._replace(w_erev=synapses.w_erev * gain, w=synapses.w * gain)
