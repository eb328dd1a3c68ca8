"""The two sources of random draws behind :class:`~ncps_mlx.wirings.NCP`.

:class:`ExactNcpDraws` replays ncps 1.0.1's calls on a legacy ``RandomState`` one source neuron at
a time (each ``choice(..., replace=False)`` permutes the whole target layer, so the cost is
``O(sources * targets)``); :class:`FastNcpDraws` draws the same distribution for all sources at
once with a ``Generator`` in ``O(synapses)``. Both return targets in ``[0, population)``.
"""

from __future__ import annotations

import numpy as np

from .sampling import sample_without_replacement

__all__ = ["ExactNcpDraws", "FastNcpDraws"]

_SIGNS = [-1, 1]


class ExactNcpDraws:
    """ncps's draw sequence on ``np.random.RandomState`` (bit-identical matrices)."""

    def __init__(self, rng: np.random.RandomState):
        self._rng = rng

    def fan(self, rows: int, population: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row: ``k`` distinct targets, then ``k`` polarities; two ``(rows, k)`` arrays."""
        targets = np.empty((rows, k), np.int64)
        polarity = np.empty((rows, k), np.int64)
        for row in range(rows):
            targets[row] = self._rng.choice(population, size=k, replace=False)
            polarity[row] = self._rng.choice(_SIGNS, size=k)
        return targets, polarity

    def random_pairs(
        self, population: int, count: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``count`` independent ``(src, dst, polarity)`` draws, interleaved as ncps draws them."""
        draws = np.empty((count, 3), np.int64)
        for i in range(count):
            draws[i] = (
                self._rng.choice(population),
                self._rng.choice(population),
                self._rng.choice(_SIGNS),
            )
        return draws[:, 0], draws[:, 1], draws[:, 2]


class FastNcpDraws:
    """The same distribution as :class:`ExactNcpDraws`, vectorised over all rows."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng

    def fan(self, rows: int, population: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        targets = sample_without_replacement(self._rng, population, k, rows)
        return targets, self._rng.choice(_SIGNS, size=(rows, k))

    def random_pairs(
        self, population: int, count: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = self._rng.integers(0, population, size=count)
        dst = self._rng.integers(0, population, size=count)
        return src, dst, self._rng.choice(_SIGNS, size=count)
