"""Small sequence tasks for examples, the ``ncps-mlx demo`` command and tests (numpy only).

* :func:`load_digits_sequences` — scikit-learn's handwritten digits (a real dataset that ships
  with the package, no download) as 8-step sequences of 8 pixels, split into train and test
  sets with the same class balance.
* :func:`irregular_sine` — sine waves sampled at irregular times: the input is the sampled
  value, the target the quadrature (cosine) component, which a model can only recover if it
  knows the elapsed time between samples (``timespans``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import normalize_seed


@dataclass(frozen=True)
class SequenceSplit:
    """A classification task split into train and test sets.

    Attributes:
        x_train: ``(N_train, T, F)`` float32 inputs.
        y_train: ``(N_train,)`` int32 class labels.
        x_test: ``(N_test, T, F)`` float32 inputs.
        y_test: ``(N_test,)`` int32 class labels.
        num_classes: Number of classes ``C``; labels are ``0 .. C-1``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Indices ``(train, test)`` drawing ``round(test_fraction * n_c)`` test items per class.

    Args:
        labels: ``(N,)`` integer labels.
        test_fraction: Share of every class that goes to the test set, in ``(0, 1)``.
        seed: Seed of the draw (the same seed gives the same split).

    Returns:
        Two sorted int64 index arrays that partition ``range(N)``.
    """
    fraction = float(test_fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(normalize_seed(seed))
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(fraction * len(members)))
        test.append(rng.choice(members, size=count, replace=False))
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def load_digits_sequences(test_fraction: float = 0.2, seed: int = 0) -> SequenceSplit:
    """scikit-learn's 1,797 handwritten 8×8 digits as sequences: row ``t`` is time step ``t``.

    Args:
        test_fraction: Share of each digit held out for testing.
        seed: Seed of the train/test split.

    Returns:
        A :class:`SequenceSplit` with ``x`` shaped ``(N, 8, 8)`` (pixel intensities scaled to
        ``[0, 1]``) and 10 classes.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError(
            "the digits task needs scikit-learn (pip install scikit-learn)"
        ) from error

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int32)
    train, test = stratified_split(labels, test_fraction, seed)
    return SequenceSplit(images[train], labels[train], images[test], labels[test], 10)


def irregular_sine(
    num_sequences: int,
    length: int,
    seed: int = 0,
    min_gap: float = 0.05,
    max_gap: float = 0.6,
    noise: float = 0.0,
):
    """Sine waves of random frequency and phase, observed at irregular times.

    Sequence ``i`` samples ``sin(ω_i t_k + φ_i)`` at times ``t_k`` whose gaps are drawn
    uniformly from ``[min_gap, max_gap]``; the target at each step is ``cos(ω_i t_k + φ_i)``.
    ``ω`` is uniform in ``[0.5, 2]`` and ``φ`` in ``[0, 2π)``.

    Args:
        num_sequences: Number of sequences ``B``.
        length: Steps per sequence ``T``.
        seed: Seed of every draw.
        min_gap, max_gap: Range of the time between samples (``0 < min_gap <= max_gap``).
        noise: Standard deviation of Gaussian noise added to the inputs (not the targets).

    Returns:
        ``(x, timespans, y)``: inputs ``(B, T, 1)``, elapsed time of each step ``(B, T)`` (the
        first step's gap is drawn like the others) and targets ``(B, T, 1)``, all float32.
    """
    if int(num_sequences) < 1 or int(length) < 1:
        raise ValueError(
            f"num_sequences and length must be >= 1, got {num_sequences!r} and {length!r}"
        )
    if not 0.0 < min_gap <= max_gap:
        raise ValueError(f"need 0 < min_gap <= max_gap, got {min_gap!r} and {max_gap!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(normalize_seed(seed))
    shape = (int(num_sequences), int(length))
    gaps = rng.uniform(min_gap, max_gap, shape)
    omega = rng.uniform(0.5, 2.0, (shape[0], 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, (shape[0], 1))
    angle = omega * np.cumsum(gaps, axis=1) + phase
    x = np.sin(angle) + noise * rng.standard_normal(shape)
    return (
        x[..., None].astype(np.float32),
        gaps.astype(np.float32),
        np.cos(angle)[..., None].astype(np.float32),
    )
