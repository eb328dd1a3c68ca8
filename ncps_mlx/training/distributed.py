"""Data-parallel training on MLX's own distributed engine (``mx.distributed``).

Launch the same script on every process with ``mlx.launch`` (ring backend over TCP, or MPI),
e.g. ``mlx.launch --backend ring -n 2 train.py`` on one machine, or ``mlx.launch --hostfile
hosts.json train.py`` across Macs. Each process (rank) trains on its share of every global
batch; :func:`average_gradients` sums the gradients of all ranks, weighted by the rows each
rank had, so every rank applies the gradient of the mean loss over the whole global batch —
the same update a single process would make on the combined batch.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

__all__ = ["init", "is_main", "rank_rows", "average_gradients", "all_mean"]


def init(backend: str = "any"):
    """The distributed group of this process, or None when it runs alone (size 1).

    Args:
        backend: ``"any"``, ``"ring"``, ``"mpi"`` (see ``mx.distributed.init``).
    """
    group = mx.distributed.init(backend=backend)
    return group if group.size() > 1 else None


def is_main(group) -> bool:
    """True on rank 0 (and without a group): the process that logs and writes files."""
    return group is None or group.rank() == 0


def rank_rows(rows: np.ndarray, group) -> np.ndarray:
    """This rank's contiguous share of a global batch's row indices (all of them without a
    group); shares differ in length by at most one row, and may be empty."""
    if group is None:
        return rows
    return np.array_split(rows, group.size())[group.rank()]


def average_gradients(grads, local_rows: int, group):
    """The gradient of the mean loss over all ranks' rows.

    Each rank passes the gradient of the mean loss over its own ``local_rows`` rows; the
    result is ``sum_r rows_r * grads_r / sum_r rows_r``, computed with one ``all_sum`` of a
    single buffer holding every gradient and the row count.

    Args:
        grads: The rank's gradient tree.
        local_rows: Rows behind the rank's gradient (0 for a rank with no rows this step).
        group: The distributed group (None: returned unchanged).
    """
    if group is None:
        return grads
    leaves = tree_flatten(grads)
    flat = [value.reshape(-1) * local_rows for _, value in leaves]
    buffer = mx.concatenate([*flat, mx.array([float(local_rows)], flat[0].dtype)])
    total = mx.distributed.all_sum(buffer, group=group)
    count = total[-1]
    averaged, offset = [], 0
    for name, value in leaves:
        averaged.append((name, (total[offset : offset + value.size] / count).reshape(value.shape)))
        offset += value.size
    return tree_unflatten(averaged)


def all_mean(value: float, local_rows: int, group) -> float:
    """The row-weighted mean of a per-rank mean ``value`` (e.g. a batch loss) over all ranks."""
    if group is None:
        return value
    pair = mx.distributed.all_sum(mx.array([value * local_rows, float(local_rows)]), group=group)
    return (pair[0] / pair[1]).item()
