"""A small, explicit training loop: shuffled mini-batches, gradient clipping, early stopping,
atomic checkpoints with exact resume, and data parallelism over ``mx.distributed``.

``fit`` runs ``epochs`` passes over ``train_data`` (a tuple of columns sharing their first
axis; a list of variable-length sequences is padded per batch and comes with a mask, see
:mod:`ncps_mlx.training.batching`), calling ``loss_fn(model, *batch)`` and updating ``model`` with
``optimizer``; after each epoch it evaluates ``val_data`` and any ``metrics``. It is a loop you
could write yourself, with the details done once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from .._validation import check_int, normalize_seed
from . import distributed
from .batching import as_columns, batches, dataset_size, take_rows
from .checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint

__all__ = ["History", "EarlyStopping", "fit", "evaluate_loss", "cosine_adam"]


@dataclass
class History:
    """What :func:`fit` measured.

    Attributes:
        step_losses: Training loss of every optimizer step (the mean over the global batch).
        epochs: One dict per epoch: ``epoch`` (1-based), ``train_loss`` (the step losses'
            mean weighted by batch size), ``val_loss`` (if ``val_data`` was given), each
            metric's value, and ``seconds`` (wall time of the epoch, evaluation included).
        stopped_early: True if :class:`EarlyStopping` ended training.
    """

    step_losses: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    stopped_early: bool = False

    def series(self, key: str) -> list[float]:
        """The per-epoch values of ``key`` (e.g. ``"val_loss"``)."""
        return [epoch[key] for epoch in self.epochs]


@dataclass
class EarlyStopping:
    """Stop when a monitored quantity has not improved for ``patience`` epochs.

    Attributes:
        monitor: A key of the epoch records (``"val_loss"``, a metric name, ``"train_loss"``).
        patience: Epochs without improvement before stopping.
        mode: ``"min"`` or ``"max"``; default: ``"min"`` for names ending in ``loss``, else
            ``"max"``.
        min_delta: Smallest change that counts as an improvement.
        restore_best: Put back the weights of the best epoch when training stops (or ends);
            after a resume, of the best epoch since the resume.
    """

    monitor: str = "val_loss"
    patience: int = 5
    mode: str | None = None
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self):
        check_int(self.patience, "patience", minimum=1)
        if self.mode is None:
            self.mode = "min" if self.monitor.endswith("loss") else "max"
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")


class _Progress:
    """One progress bar over all of training on stderr (tqdm): the epoch, the running training
    loss of the epoch (``train_loss``), samples per second, and the previous epoch's record
    (``val_loss``, metrics), each under its name in :class:`History`, so that plots of the
    history can use the same names."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int, done_epochs: int):
        self.bar, self.epochs, self.last_epoch = None, epochs, {}
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=epochs * steps_per_epoch,
                initial=done_epochs * steps_per_epoch,
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def step(self, epoch: int, loss: float, samples_per_second: float) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch}/{self.epochs}", refresh=False)
            self.bar.set_postfix(
                train_loss=f"{loss:.4f}",
                samples_s=f"{samples_per_second:.0f}",
                **self.last_epoch,
                refresh=False,
            )
            self.bar.update(1)

    def epoch_done(self, record: dict) -> None:
        skip = ("epoch", "train_loss", "seconds")
        self.last_epoch = {k: f"{v:.4g}" for k, v in record.items() if k not in skip}

    def close(self, record: dict | None) -> None:
        if self.bar is not None:
            if record:
                self.bar.set_postfix(
                    {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")}
                )
            self.bar.close()


def cosine_adam(
    learning_rate: float, epochs: int, rows: int, batch_size: int, floor: float = 0.05
) -> optim.Adam:
    """Adam whose learning rate falls along a cosine from ``learning_rate`` to ``floor`` times
    it over the steps of ``epochs`` passes over ``rows`` rows in batches of ``batch_size``."""
    steps = check_int(epochs, "epochs", 1) * -(-check_int(rows, "rows", 1) // batch_size)
    return optim.Adam(learning_rate=optim.cosine_decay(learning_rate, steps, learning_rate * floor))


def evaluate_loss(model: nn.Module, loss_fn: Callable, data, batch_size: int = 256) -> float:
    """Mean of ``loss_fn(model, *batch)`` over ``data``, weighted by batch size."""
    columns = as_columns(data, "data")
    total = 0.0
    for batch in batches(columns, batch_size):
        total += loss_fn(model, *batch).item() * batch[0].shape[0]
    return total / dataset_size(columns)


def _improved(stopping: EarlyStopping, value: float, best: float | None) -> bool:
    if best is None:
        return True
    if stopping.mode == "min":
        return value < best - stopping.min_delta
    return value > best + stopping.min_delta


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
    clip_norm: float | None = None,
    early_stopping: EarlyStopping | None = None,
    checkpoint_dir=None,
    resume: bool = False,
    group=None,
    progress: bool = True,
) -> History:
    """Train ``model`` in place on mini-batches and return the :class:`History`.

    Args:
        model: An ``mlx.nn.Module``.
        loss_fn: ``loss_fn(model, *batch) -> scalar`` mean loss of the batch (e.g.
            :func:`~ncps_mlx.training.classifier.classification_loss`).
        optimizer: An ``mlx.optimizers`` optimizer (its state persists across calls).
        train_data: Tuple of columns sharing their first axis ``N``: arrays (numpy or MLX),
            or lists of variable-length sequences (padded per batch, each followed by its mask
            in the batch; see :mod:`ncps_mlx.training.batching`).
        val_data: Optional tuple like ``train_data``; its mean loss is recorded per epoch.
        epochs: Passes over ``train_data`` (in total, counting those of a resumed run).
        batch_size: Rows per step and rank (a global batch holds ``batch_size`` rows per
            rank; the last step of an epoch may have fewer).
        seed: Seed of the shuffling (the same on every rank) and of MLX's random draws during
            training (``mx.random.seed`` is set from ``(seed, epoch)`` at every epoch).
        metrics: ``{name: fn(model) -> float}`` evaluated after every epoch.
        clip_norm: Rescale the gradient to at most this global L2 norm (after averaging
            over ranks).
        early_stopping: An :class:`EarlyStopping` rule, or None.
        checkpoint_dir: Directory of checkpoints (one per epoch, written atomically by rank 0
            with :func:`ncps_mlx.training.checkpoint.save_checkpoint`).
        resume: Continue from the newest complete checkpoint in ``checkpoint_dir`` (if any):
            weights, optimizer state, shuffling and history are restored, so the losses equal
            those of an uninterrupted run.
        group: An ``mx.distributed`` group (see :func:`ncps_mlx.training.distributed.init`) to train
            data-parallel: every rank takes its share of each global batch, gradients are
            averaged over the ranks, and only rank 0 shows progress and writes checkpoints.
        progress: Show a progress bar on stderr (rank 0 only).

    Returns:
        The :class:`History` of step losses and per-epoch records.
    """
    columns = as_columns(train_data, "train_data")
    if val_data is not None:
        val_data = as_columns(val_data, "val_data")
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0, got {clip_norm!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    ranks = 1 if group is None else group.size()
    global_batch = batch_size * ranks
    count = dataset_size(columns)
    steps_per_epoch = -(-count // global_batch)
    seed = normalize_seed(seed)
    rng = np.random.default_rng(seed)
    history, best = History(), None
    best_weights = None
    start_epoch = 0
    if resume:
        restored = _resume(checkpoint_dir, model, optimizer)
        if restored is not None:
            start_epoch, state = restored
            rng.bit_generator.state = state["shuffle_rng"]
            history = History(**state["history"])
            best = state.get("best")
    loss_and_grad = nn.value_and_grad(model, loss_fn)
    main = distributed.is_main(group)
    bar = _Progress(progress and main, epochs, steps_per_epoch, start_epoch)
    model.train()
    for epoch in range(start_epoch + 1, epochs + 1):
        started, total, samples = time.perf_counter(), 0.0, 0
        # MLX's random draws of the epoch (dropout) follow (seed, epoch): a resumed run
        # draws the same ones as an uninterrupted run.
        mx.random.seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
        order = rng.permutation(count)
        for start in range(0, count, global_batch):
            global_rows = order[start : start + global_batch]
            rows = distributed.rank_rows(global_rows, group)
            batch = take_rows(columns, rows if len(rows) else global_rows[:1])
            loss, grads = loss_and_grad(model, *batch)
            grads = distributed.average_gradients(grads, len(rows), group)
            if clip_norm is not None:
                grads, _ = optim.clip_grad_norm(grads, clip_norm)
            optimizer.update(model, grads)
            mx.eval(loss, model.parameters(), optimizer.state)
            step_loss = distributed.all_mean(loss.item(), len(rows), group)
            history.step_losses.append(step_loss)
            total, samples = total + step_loss * len(global_rows), samples + len(global_rows)
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
        stop = False
        if early_stopping is not None:
            value = record[early_stopping.monitor]
            if _improved(early_stopping, value, None if best is None else best["value"]):
                best = {"value": value, "epoch": epoch}
                if early_stopping.restore_best:
                    best_weights = tree_flatten(model.parameters())
            stop = epoch - best["epoch"] >= early_stopping.patience
        if checkpoint_dir is not None and main:
            _save(
                checkpoint_dir,
                model,
                optimizer,
                epoch,
                len(history.step_losses),
                rng,
                history,
                best,
            )
        if stop:
            history.stopped_early = True
            break
    bar.close(history.epochs[-1] if history.epochs else None)
    if best_weights is not None:
        model.update(tree_unflatten(best_weights))
        mx.eval(model.parameters())
    model.eval()
    return history


def _save(directory, model, optimizer, epoch, step, rng, history, best) -> None:
    """Write the checkpoint of the finished ``epoch`` (``<directory>/step-<step>``)."""
    state = {"shuffle_rng": rng.bit_generator.state, "history": asdict(history), "best": best}
    save_checkpoint(checkpoint_path(directory, step), model, optimizer, step, epoch, state)


def _resume(directory, model, optimizer):
    """``(epochs done, state)`` from the newest checkpoint in ``directory``, or None."""
    path = latest_checkpoint(directory)
    if path is None:
        return None
    restored = load_checkpoint(path, model, optimizer)
    return restored["epoch"], restored["state"]
