"""Padded fan-in tables: a sparse synapse layout for cells whose cost is per synapse.

A wiring's synapses ``src -> dst`` become, for every target neuron, a row of ``K`` slots (``K``
= the largest fan-in) naming its sources; unused slots point at source 0 with weight 0. A
per-synapse quantity then costs ``N * K`` instead of ``num_sources * N`` operations and sums
over a contiguous last axis, with no scatter (MLX's scatter-add is slow on the CPU). This is the
"ELLPACK" sparse format.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import numpy as np

__all__ = ["FanInTable", "fan_in_table", "gather_synapse_values"]


class FanInTable(NamedTuple):
    """Synapses grouped by target neuron.

    Attributes:
        sources: ``(N * K,)`` int32 source index of every slot, target-major.
        flat: ``(N, K)`` int32 index of each slot's synapse in a flattened ``(num_sources, N)``
            parameter matrix.
        valid: ``(N, K)`` float32, 1 where a slot holds a synapse and 0 for padding.
        slot_of_synapse: ``(S,)`` numpy int64, the flat slot (``row * K + column``) of each
            synapse in the order given to :func:`fan_in_table`.
    """

    sources: mx.array
    flat: mx.array
    valid: mx.array
    slot_of_synapse: np.ndarray

    @property
    def width(self) -> int:
        """``K``, the largest fan-in."""
        return self.valid.shape[-1]

    def synapse_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, slots)``: ``src * N + dst`` of every occupied slot, and the flat slot."""
        slots = np.flatnonzero(np.array(self.valid).reshape(-1) > 0)
        targets = slots // self.width
        return np.array(self.sources)[slots].astype(np.int64) * self.valid.shape[0] + targets, slots

    def lay_out(self, values: np.ndarray) -> np.ndarray:
        """Per-synapse ``values`` ``(S,)``, in the table's synapse order, as ``(N, K)``."""
        table = np.zeros(self.valid.shape, np.float32)
        table.reshape(-1)[self.slot_of_synapse] = values
        return table


def fan_in_table(
    src: np.ndarray, dst: np.ndarray, num_targets: int, min_width: int = 1
) -> FanInTable:
    """Build the table of synapses ``src[s] -> dst[s]`` onto ``num_targets`` neurons.

    ``min_width`` pads the table to at least that many slots per target (to keep shapes).
    """
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    order = np.lexsort((src, dst))
    counts = np.bincount(dst, minlength=num_targets)
    width = max(int(counts.max(initial=0)), min_width, 1)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.empty(src.size, np.int64)
    slot[order] = np.arange(src.size) - starts[dst[order]]
    flat_slot = dst * width + slot
    sources = np.zeros(num_targets * width, np.int64)
    valid = np.zeros(num_targets * width, np.float32)
    sources[flat_slot] = src
    valid[flat_slot] = 1.0
    sources = sources.reshape(num_targets, width)
    flat = sources * num_targets + np.arange(num_targets)[:, None]
    return FanInTable(
        mx.array(sources.reshape(-1).astype(np.int32)),
        mx.array(flat.astype(np.int32)),
        mx.array(valid.reshape(num_targets, width)),
        flat_slot,
    )


def gather_synapse_values(matrix: mx.array, table: FanInTable) -> mx.array:
    """Values of a ``(num_sources, N)`` matrix at the table's slots: ``(N, K)``, 0 at padding."""
    return mx.take(matrix.reshape(-1), table.flat) * table.valid
