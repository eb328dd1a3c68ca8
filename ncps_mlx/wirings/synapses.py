"""Sparse storage of signed synapses and the synapse-argument checks of the wirings.

A :class:`SynapseSet` holds the synapses from a source range ``0..num_sources-1`` to a target
range ``0..num_targets-1`` as three parallel numpy arrays (``src``, ``dst``, ``polarity``).
Adds are buffered and merged lazily, so both single ``add`` calls in a Python loop and bulk adds
of millions of synapses cost time proportional to the synapses added, and no
``num_sources x num_targets`` matrix is ever allocated unless :meth:`SynapseSet.dense` is asked
for.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SynapseSet", "check_polarity", "check_indices"]


def check_indices(values, name: str, limit: int, limit_name: str) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array of indices in ``[0, limit)``.

    Args:
        values: An integer or an array-like of integers.
        name: The argument name used in error messages.
        limit: Exclusive upper bound.
        limit_name: What ``limit`` is (e.g. ``"units"``), for the error message.

    Raises:
        TypeError: If the values are not integers.
        ValueError: If an index is negative or ``>= limit``.
    """
    array = np.asarray(values)
    if array.ndim > 1:
        raise ValueError(
            f"{name} must be an index or a 1-D list of indices, got shape {array.shape}"
        )
    if array.size == 0:  # an empty list is float64 to numpy, but it is a valid empty index list
        return np.zeros(0, np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must contain integers, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False).reshape(-1)
    if array.size and (array.min() < 0 or array.max() >= limit):
        bad = array[(array < 0) | (array >= limit)][0]
        raise ValueError(
            f"{name}={bad} is out of range: expected 0 <= {name} < {limit_name}={limit}"
        )
    return array


def check_polarity(values, name: str = "polarity") -> np.ndarray:
    """Return ``values`` as a 1-D int8 array of +1/-1, or raise naming the argument.

    Raises:
        TypeError: If the values are not numbers.
        ValueError: If any value is not exactly +1 or -1 (NaN included).
    """
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be +1 or -1, got dtype {array.dtype}")
    array = array.reshape(-1)
    valid = (array == 1) | (array == -1)
    if not np.all(valid):
        raise ValueError(f"{name} must be +1 or -1, got {array[~valid][0]!r}")
    return array.astype(np.int8)


class SynapseSet:
    """A sparse set of signed synapses ``src -> dst`` with last-write-wins semantics.

    Adding a synapse that already exists overwrites its polarity, in the order the adds were
    made (within one bulk add, later entries win too).

    Args:
        num_sources: Size of the source range.
        num_targets: Size of the target range.
        source_name: What the sources are (``"units"`` or ``"input_dim"``), for error messages.
    """

    def __init__(self, num_sources: int, num_targets: int, source_name: str = "units"):
        self.num_sources = num_sources
        self.num_targets = num_targets
        self.source_name = source_name
        index_dtype = np.int32 if max(num_sources, num_targets) < 2**31 else np.int64
        self._src = np.zeros(0, index_dtype)
        self._dst = np.zeros(0, index_dtype)
        self._polarity = np.zeros(0, np.int8)
        for array in (self._src, self._dst, self._polarity):
            array.flags.writeable = False
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_scalars: list[tuple[int, int, int]] = []

    def add(self, src, dst, polarity) -> None:
        """Add one synapse or many (``src``/``dst`` arrays, ``polarity`` array or scalar).

        Raises:
            TypeError, ValueError: On non-integer or out-of-range indices, or a polarity that is
                not +1/-1. Nothing is added when an error is raised.
        """
        if np.ndim(src) == 0 and np.ndim(dst) == 0 and np.ndim(polarity) == 0:
            s = check_indices(src, "src", self.num_sources, self.source_name)[0]
            d = check_indices(dst, "dst", self.num_targets, "units")[0]
            p = check_polarity(polarity)[0]
            self._pending_scalars.append((int(s), int(d), int(p)))
            return
        src = check_indices(src, "src", self.num_sources, self.source_name)
        dst = check_indices(dst, "dst", self.num_targets, "units")
        if src.shape != dst.shape:
            raise ValueError(
                f"src and dst must have the same length, got {src.size} and {dst.size}"
            )
        polarity = check_polarity(polarity)
        if polarity.size == 1:
            polarity = np.broadcast_to(polarity, src.shape)
        elif polarity.shape != src.shape:
            raise ValueError(
                f"polarity must be a scalar or have the length of src ({src.size}), "
                f"got {polarity.size}"
            )
        self._flush_scalars()
        self._pending.append((src, dst, polarity))

    def replace(self, src, dst, polarity) -> None:
        """Drop every synapse and store the given ones instead (validated like :meth:`add`)."""
        self._src = self._src[:0]
        self._dst = self._dst[:0]
        self._polarity = self._polarity[:0]
        self._pending.clear()
        self._pending_scalars.clear()
        self.add(np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(polarity))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return read-only ``(src, dst, polarity)`` arrays, sorted by ``(src, dst)``."""
        self._consolidate()
        return self._src, self._dst, self._polarity

    def dense(self) -> np.ndarray:
        """Return the ``(num_sources, num_targets)`` int32 matrix of polarities (0 = none)."""
        src, dst, polarity = self.arrays()
        matrix = np.zeros((self.num_sources, self.num_targets), np.int32)
        matrix[src, dst] = polarity
        return matrix

    def __len__(self) -> int:
        return int(self.arrays()[0].size)

    def _flush_scalars(self) -> None:
        if self._pending_scalars:
            triples = np.asarray(self._pending_scalars, np.int64)
            self._pending_scalars.clear()
            self._pending.append((triples[:, 0], triples[:, 1], triples[:, 2].astype(np.int8)))

    def _consolidate(self) -> None:
        self._flush_scalars()
        if not self._pending:
            return
        src = np.concatenate([self._src] + [chunk[0] for chunk in self._pending])
        dst = np.concatenate([self._dst] + [chunk[1] for chunk in self._pending])
        polarity = np.concatenate([self._polarity] + [chunk[2] for chunk in self._pending])
        self._pending.clear()
        keys = src.astype(np.int64) * self.num_targets + dst
        if np.all(keys[1:] > keys[:-1]):  # already sorted and unique: nothing to merge
            unique_keys = keys
        else:
            # np.unique keeps the first occurrence: reverse so that the last add wins.
            unique_keys, first_in_reversed = np.unique(keys[::-1], return_index=True)
            polarity = polarity[::-1][first_in_reversed]
        index_dtype = self._src.dtype
        self._src = (unique_keys // self.num_targets).astype(index_dtype)
        self._dst = (unique_keys % self.num_targets).astype(index_dtype)
        self._polarity = np.ascontiguousarray(polarity, dtype=np.int8)
        for array in (self._src, self._dst, self._polarity):
            array.flags.writeable = False
