"""Seeds and vectorised sampling without replacement for large sparse wirings.

ncps 1.0.1 draws its random wirings by enumerating every candidate pair (``Random``) or by
permuting the whole target layer once per source neuron (``NCP``). Both cost time (and, for
``Random``, memory) proportional to the number of *candidate* pairs, not to the synapses kept.
The classic wirings reproduce those draws exactly while the candidate count is at most
:data:`EXACT_DRAW_LIMIT`; above it they switch to :func:`sample_without_replacement`, which
draws from the same distribution (uniform subsets, the same polarity probabilities) in time and
memory proportional to the synapses drawn.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import normalize_seed

__all__ = ["EXACT_DRAW_LIMIT", "normalize_seed", "sample_without_replacement"]

#: Largest number of candidate pairs for which the classic wirings replay ncps's exact draws.
EXACT_DRAW_LIMIT = 2**24


def sample_without_replacement(
    rng: np.random.Generator, population: int, k: int, rows: int = 1
) -> np.ndarray:
    """Draw, for each of ``rows`` rows, ``k`` distinct integers uniformly from ``[0, population)``.

    Each row is a uniformly random ``k``-subset, independent of the other rows. Cost is
    ``O(rows * k * log k)`` time and ``O(rows * k)`` memory when ``2k <= population`` (iid draws
    whose duplicates are redrawn until none remain; the procedure is invariant under relabelling
    the population, so the resulting subset is uniform); otherwise ``O(rows * population)``,
    which is then at most twice the output size (``k`` smallest of iid random keys).

    Args:
        rng: The generator to draw from.
        population: Size of the population (> 0).
        k: Elements per row, ``0 <= k <= population``.
        rows: Number of independent rows.

    Returns:
        An int64 array of shape ``(rows, k)``; entries of a row are sorted ascending.
    """
    if not 0 <= k <= population:
        raise ValueError(f"k must be in [0, population={population}], got {k}")
    if k == 0 or rows == 0:
        return np.zeros((rows, k), np.int64)
    if k == population:
        return np.broadcast_to(np.arange(population, dtype=np.int64), (rows, k)).copy()
    if 2 * k > population:
        keys = rng.random((rows, population))
        chosen = np.argpartition(keys, k - 1, axis=1)[:, :k]
        return np.sort(chosen, axis=1).astype(np.int64)
    if rows == 1:
        return _sample_one_row(rng, population, k)[None, :]
    values = rng.integers(0, population, size=(rows, k))
    pending = np.arange(rows)
    while pending.size:
        block = np.sort(values[pending], axis=1)
        duplicate = np.zeros(block.shape, bool)
        duplicate[:, 1:] = block[:, 1:] == block[:, :-1]
        block[duplicate] = rng.integers(0, population, size=int(duplicate.sum()))
        values[pending] = block
        pending = pending[duplicate.any(axis=1)]
    return np.sort(values, axis=1)


def _sample_one_row(rng: np.random.Generator, population: int, k: int) -> np.ndarray:
    """One uniform ``k``-subset (sorted) with a single sort, for ``2k <= population``.

    Draws enough iid values that their distinct set exceeds ``k`` with overwhelming
    probability, then deletes a uniformly random surplus: a uniform subset of a uniform subset.
    """
    chosen = np.zeros(0, np.int64)
    while chosen.size < k:
        target = k + 4 * math.isqrt(k) + 16 - chosen.size
        # Expected distinct values among m iid draws: population * (1 - (1 - 1/population)**m).
        fraction = min(target / population, 0.99)
        draws = int(math.ceil(math.log1p(-fraction) / math.log1p(-1.0 / population)))
        chosen = np.sort(np.concatenate([chosen, rng.integers(0, population, size=draws)]))
        chosen = chosen[np.concatenate(([True], chosen[1:] != chosen[:-1]))]
    surplus = chosen.size - k
    return np.delete(chosen, rng.choice(chosen.size, size=surplus, replace=False))
