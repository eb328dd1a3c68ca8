"""Fast weights: synapses whose strength also follows a Hebbian trace within a sequence.

A wiring with fast synapses (e.g. :class:`~ncps_mlx.wirings.MetaWiring`) marks them with
``fast_synapse_mask()`` and gives the rule's ``decay`` and ``learning_rate``. The cell keeps one
trace :math:`F_s` per fast synapse ``s = i -> j`` in its state, adds it to the learned weight,
and after every step updates

.. math::

    F_s \\leftarrow \\text{decay} \\cdot F_s + \\text{learning\\_rate} \\cdot v_i v_j

with the new potentials. The trace starts at 0 with every sequence (the initial state), so what
it learns lasts one sequence; the learned weights carry what lasts across sequences.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import numpy as np

__all__ = ["FastWeights", "fast_weights_for", "with_fast_weights", "hebbian_update"]


class FastWeights(NamedTuple):
    """Where a cell's fast synapses sit in its weight layout, and their learning rule.

    Attributes:
        index_map: ``(L,)`` int32 over the flattened weight layout: 0 for ordinary positions,
            ``1 + k`` for the ``k``-th fast synapse.
        src, dst: ``(S_fast,)`` int32 neuron ids of the fast synapses.
        decay, learning_rate: The Hebbian rule's constants.
    """

    index_map: mx.array
    src: mx.array
    dst: mx.array
    decay: float
    learning_rate: float

    @property
    def count(self) -> int:
        return self.src.shape[0]


def fast_weights_for(wiring, positions: np.ndarray, layout_size: int) -> FastWeights | None:
    """The fast synapses of ``wiring`` (None if it has none).

    Args:
        wiring: A wiring with ``fast_synapse_mask()``, ``decay`` and ``learning_rate``.
        positions: ``(S,)`` flat position of each of ``wiring.synapses()`` in the weight layout.
        layout_size: Number of positions of the flattened weight layout.
    """
    fast = np.asarray(wiring.fast_synapse_mask(), bool)
    if not fast.any():
        return None
    src, dst, _ = wiring.synapses()
    index_map = np.zeros(layout_size, np.int32)
    index_map[positions[fast]] = np.arange(1, int(fast.sum()) + 1)
    return FastWeights(
        mx.array(index_map),
        mx.array(src[fast].astype(np.int32)),
        mx.array(dst[fast].astype(np.int32)),
        float(wiring.decay),
        float(wiring.learning_rate),
    )


def with_fast_weights(w: mx.array, traces: mx.array, fast: FastWeights) -> mx.array:
    """The learned weight ``w`` (any layout) plus each sample's traces: ``(B, *w.shape)``."""
    padded = mx.concatenate([mx.zeros((*traces.shape[:-1], 1), traces.dtype), traces], axis=-1)
    return w + mx.take(padded, fast.index_map, axis=-1).reshape(*traces.shape[:-1], *w.shape)


def hebbian_update(traces: mx.array, v: mx.array, fast: FastWeights) -> mx.array:
    """One step of the rule: ``decay * F + learning_rate * v[src] * v[dst]``."""
    pre, post = mx.take(v, fast.src, axis=-1), mx.take(v, fast.dst, axis=-1)
    return fast.decay * traces + fast.learning_rate * pre * post
