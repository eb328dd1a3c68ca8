"""A small, explicit training loop: shuffled mini-batches, Adam-style optimizers, a progress bar.

``fit`` runs ``epochs`` passes over ``train_data`` (a tuple of arrays sharing their first axis),
calling ``loss_fn(model, *batch)`` and updating ``model`` with ``optimizer``; after each epoch it
evaluates ``val_data`` and any ``metrics``. It is a loop you could write yourself, with the
details done once: seeded shuffling, lazy-evaluation boundaries, loss bookkeeping and a
progress bar with loss and throughput.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .wirings.sampling import normalize_seed
from .wirings.synapses import check_int


@dataclass
class History:
    """What :func:`fit` measured.

    Attributes:
        step_losses: Training loss of every optimizer step.
        epochs: One dict per epoch: ``epoch`` (1-based), ``train_loss`` (the step losses'
            mean weighted by batch size), ``val_loss`` (if ``val_data`` was given), each
            metric's value, and ``seconds`` (wall time of the epoch, evaluation included).
    """

    step_losses: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        """The per-epoch values of ``key`` (e.g. ``"val_loss"``)."""
        return [epoch[key] for epoch in self.epochs]


def _as_arrays(data, name: str) -> tuple[np.ndarray, ...]:
    if not isinstance(data, (tuple, list)) or not data:
        raise TypeError(f"{name} must be a non-empty tuple of arrays, got {type(data).__name__}")
    arrays = tuple(np.asarray(array) for array in data)
    lengths = {array.shape[0] if array.ndim else None for array in arrays}
    if len(lengths) != 1 or None in lengths:
        raise ValueError(
            f"{name}: every array needs the same first axis, got shapes "
            f"{[array.shape for array in arrays]}"
        )
    if not lengths.pop():
        raise ValueError(f"{name} is empty")
    return arrays


def batches(arrays: Sequence[np.ndarray], batch_size: int, order: np.ndarray | None = None):
    """Yield tuples of ``mx.array`` slices of ``arrays``, ``batch_size`` rows at a time, in
    ``order`` (row indices; default: as stored). The last batch may be smaller."""
    count = arrays[0].shape[0]
    order = np.arange(count) if order is None else order
    for start in range(0, count, batch_size):
        rows = order[start : start + batch_size]
        yield tuple(mx.array(array[rows]) for array in arrays)


def evaluate_loss(model: nn.Module, loss_fn: Callable, data, batch_size: int = 256) -> float:
    """Mean of ``loss_fn(model, *batch)`` over ``data``, weighted by batch size."""
    arrays = _as_arrays(data, "data")
    total = 0.0
    for batch in batches(arrays, batch_size):
        total += loss_fn(model, *batch).item() * batch[0].shape[0]
    return total / arrays[0].shape[0]


class _Progress:
    """One progress bar over all of training on stderr (tqdm): the epoch, the running loss of
    the epoch, samples per second, and the previous epoch's validation loss and metrics."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int):
        self.bar, self.epochs, self.last_epoch = None, epochs, {}
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=epochs * steps_per_epoch, unit="step", file=sys.stderr, dynamic_ncols=True
            )

    def step(self, epoch: int, loss: float, samples_per_second: float) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch}/{self.epochs}", refresh=False)
            self.bar.set_postfix(
                loss=f"{loss:.4f}",
                samples_s=f"{samples_per_second:.0f}",
                **self.last_epoch,
                refresh=False,
            )
            self.bar.update(1)

    def epoch_done(self, record: dict) -> None:
        skip = ("epoch", "train_loss", "seconds")
        self.last_epoch = {k: f"{v:.4g}" for k, v in record.items() if k not in skip}

    def close(self, record: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix(
                {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")}
            )
            self.bar.close()


def fit(
    model: nn.Module,
    loss_fn: Callable,
    optimizer,
    train_data,
    val_data=None,
    epochs: int = 1,
    batch_size: int = 32,
    seed: int = 0,
    metrics: dict[str, Callable] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` in place on mini-batches and return the :class:`History`.

    Args:
        model: An ``mlx.nn.Module``.
        loss_fn: ``loss_fn(model, *batch) -> scalar`` (e.g.
            :func:`~ncps_mlx.models.classification_loss`).
        optimizer: An ``mlx.optimizers`` optimizer (its state persists across calls).
        train_data: Tuple of arrays (numpy or MLX) sharing their first axis ``N``, e.g.
            ``(x, y)``; each step takes ``batch_size`` rows of each.
        val_data: Optional tuple like ``train_data``; its mean loss is recorded per epoch.
        epochs: Passes over ``train_data``.
        batch_size: Rows per step (the last step of an epoch may have fewer).
        seed: Seed of the shuffling (epoch ``e`` uses a permutation drawn from it).
        metrics: ``{name: fn(model) -> float}`` evaluated after every epoch (e.g. test
            accuracy).
        progress: Show a progress bar on stderr.

    Returns:
        The :class:`History` of step losses and per-epoch records.
    """
    arrays = _as_arrays(train_data, "train_data")
    if val_data is not None:
        val_data = _as_arrays(val_data, "val_data")
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    rng = np.random.default_rng(normalize_seed(seed))
    loss_and_grad = nn.value_and_grad(model, loss_fn)
    count = arrays[0].shape[0]
    steps_per_epoch = -(-count // batch_size)
    history = History()
    bar = _Progress(progress, epochs, steps_per_epoch)
    model.train()
    for epoch in range(1, epochs + 1):
        started, total, samples = time.perf_counter(), 0.0, 0
        for batch in batches(arrays, batch_size, rng.permutation(count)):
            loss, grads = loss_and_grad(model, *batch)
            optimizer.update(model, grads)
            mx.eval(loss, model.parameters(), optimizer.state)
            history.step_losses.append(loss.item())
            rows = batch[0].shape[0]
            total, samples = total + history.step_losses[-1] * rows, samples + rows
            bar.step(epoch, total / samples, samples / (time.perf_counter() - started))
        record = {"epoch": epoch, "train_loss": total / count}
        model.eval()
        if val_data is not None:
            record["val_loss"] = evaluate_loss(model, loss_fn, val_data)
        for name, metric in (metrics or {}).items():
            record[name] = float(metric(model))
        model.train()
        record["seconds"] = time.perf_counter() - started
        history.epochs.append(record)
        bar.epoch_done(record)
    bar.close(history.epochs[-1])
    model.eval()
    return history
