"""Mini-batches for the training loop, variable-length sequences padded with a mask.

A dataset is a tuple of columns sharing their first axis: arrays (``(N, ...)``, numpy or MLX)
or lists of ``N`` variable-length sequences (each ``(T_i, ...)``). In a batch, a list column
becomes *two* arguments: the sequences padded to the batch's longest, ``(B, T_max, ...)``, and
a boolean mask ``(B, T_max)`` (True at real steps), ready for the ``mask`` argument of
:class:`~ncps_mlx.sequence.LTC` / :class:`~ncps_mlx.sequence.CfC`.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlx.core as mx
import numpy as np

__all__ = ["pad_sequences", "as_columns", "batches", "dataset_size"]


def pad_sequences(sequences: Sequence, max_length: int | None = None, value: float = 0.0):
    """Pad variable-length sequences into one array and a mask.

    Args:
        sequences: ``N`` arrays ``(T_i, ...)`` with equal trailing shapes.
        max_length: Pad (or cut) to this many steps (default: the longest ``T_i``).
        value: The padding value.

    Returns:
        ``(padded (N, T, ...) numpy array, mask (N, T) bool)``.
    """
    arrays = [np.asarray(sequence) for sequence in sequences]
    if not arrays:
        raise ValueError("sequences must hold at least one sequence")
    if any(array.ndim < 1 for array in arrays) or len({a.shape[1:] for a in arrays}) != 1:
        raise ValueError(
            "sequences must be arrays (T_i, ...) with equal trailing shapes, got "
            f"{sorted({a.shape for a in arrays})[:4]}"
        )
    lengths = np.array([len(array) for array in arrays])
    steps = int(lengths.max()) if max_length is None else int(max_length)
    if steps < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length!r}")
    dtype = np.result_type(*arrays)
    padded = np.full((len(arrays), steps, *arrays[0].shape[1:]), value, dtype=dtype)
    for row, array in enumerate(arrays):
        padded[row, : min(len(array), steps)] = array[:steps]
    return padded, np.arange(steps)[None, :] < lengths[:, None]


def _is_ragged(column) -> bool:
    return isinstance(column, (list, tuple)) and not isinstance(column, np.ndarray)


def as_columns(data, name: str) -> tuple:
    """Validate a dataset (see the module docstring) and return its columns (arrays as numpy)."""
    if not isinstance(data, (tuple, list)) or not data:
        raise TypeError(f"{name} must be a non-empty tuple of arrays, got {type(data).__name__}")
    columns = tuple(list(c) if _is_ragged(c) else np.asarray(c) for c in data)
    lengths = {len(c) if isinstance(c, list) else (c.shape[0] if c.ndim else None) for c in columns}
    if len(lengths) != 1 or None in lengths:
        raise ValueError(
            f"{name}: every column needs the same first axis, got lengths "
            f"{[len(c) if isinstance(c, list) else c.shape for c in columns]}"
        )
    if not lengths.pop():
        raise ValueError(f"{name} is empty")
    return columns


def dataset_size(columns: tuple) -> int:
    """Rows ``N`` of validated columns."""
    first = columns[0]
    return len(first) if isinstance(first, list) else first.shape[0]


def batches(columns: tuple, batch_size: int, order: np.ndarray | None = None):
    """Yield batches (tuples of ``mx.array``) of ``batch_size`` rows in ``order`` (default: as
    stored); the last may be smaller. List columns become ``(padded, mask)`` pairs."""
    order = np.arange(dataset_size(columns)) if order is None else order
    for start in range(0, len(order), batch_size):
        yield take_rows(columns, order[start : start + batch_size])


def take_rows(columns: tuple, rows: np.ndarray) -> tuple:
    """The batch of ``rows`` (see :func:`batches`)."""
    batch = []
    for column in columns:
        if isinstance(column, list):
            padded, mask = pad_sequences([column[row] for row in rows])
            batch += [mx.array(padded), mx.array(mask)]
        else:
            batch.append(mx.array(column[rows]))
    return tuple(batch)
