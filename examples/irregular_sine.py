"""Regression on irregularly sampled sine waves: a CfC that is told the time between samples.

    python examples/irregular_sine.py          # ~60 s on a 2-core CPU
    python examples/irregular_sine.py --long   # bigger circuit, more data and epochs (~5 min)

Task (``ncps_mlx.datasets.irregular_sine``): each sequence samples ``sin(ω t + φ)`` at
irregular times (gaps uniform in ``[0.05, 1.0]``); the target at every step is the quadrature
component ``cos(ω t + φ)``. Recovering it needs the elapsed time between samples, which a CfC
receives through ``timespans``. The script trains ``CfC(1, AutoNCP(units, 1))`` twice with
``ncps_mlx.training.fit`` on the same data (MSE over all steps, Adam with a cosine decay): once
fed the true ``timespans``, once fed all ones (no time information), and prints the test MSE of
both (over all steps, and after the first ``--warmup`` steps, where a single sample cannot tell
the sign of the cosine), their ratio, and writes ``irregular_sine.png`` (a test sequence: input,
target and both predictions) to ``--out-dir`` (default ``examples_output/``).
"""

from __future__ import annotations

import argparse
import os
import time

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ncps_mlx import CfC
from ncps_mlx.datasets import irregular_sine
from ncps_mlx.training import cosine_adam, evaluate_loss, fit
from ncps_mlx.wirings import AutoNCP

#: Settings of the default and ``--long`` runs.
SETTINGS = {
    "fast": {"units": 16, "train": 512, "length": 64, "epochs": 25, "learning_rate": 0.02},
    "long": {"units": 32, "train": 1024, "length": 64, "epochs": 60, "learning_rate": 0.01},
}
TEST_SEQUENCES, MAX_GAP, BATCH_SIZE = 256, 1.0, 64


def mse_loss(model, x, timespans, y):
    """Mean squared error of the model's outputs over all steps; ``fit`` calls it per batch."""
    return nn.losses.mse_loss(model(x, timespans=timespans)[0], y)


def train(data, test, settings, epochs, seed, progress):
    """A fresh ``CfC(1, AutoNCP(units, 1))`` trained on ``data``; returns it, history, seconds."""
    mx.random.seed(seed)
    model = CfC(1, AutoNCP(settings["units"], 1, seed=seed))
    optimizer = cosine_adam(settings["learning_rate"], epochs, len(data[0]), BATCH_SIZE)
    started = time.perf_counter()
    history = fit(
        model,
        mse_loss,
        optimizer,
        data,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        seed=seed,
        # The held-out sequences are a test set (nothing selects on them): "test_mse" in the
        # history and the progress bar, as in the printed results.
        metrics={"test_mse": lambda m: evaluate_loss(m, mse_loss, test)},
        progress=progress,
    )
    return model, history, time.perf_counter() - started


def save_prediction_plot(path, timespans, x, y, predictions: dict) -> None:
    """Plot one sequence's input, target and each ``{label: prediction}`` against time."""
    from matplotlib.figure import Figure

    t = np.cumsum(timespans)
    figure = Figure(figsize=(9, 3.5), dpi=100)
    ax = figure.add_subplot()
    ax.plot(t, x, "o", color="tab:gray", markersize=3, label="input sin (samples)")
    ax.plot(t, y, "k-", linewidth=2, alpha=0.4, label="target cos")
    for (label, prediction), style in zip(predictions.items(), ("-", "--"), strict=False):
        ax.plot(t, prediction, style, label=label)
    ax.set(xlabel="time", title="CfC + AutoNCP on an irregularly sampled test sequence")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="bigger circuit, more data/epochs")
    parser.add_argument("--epochs", type=int, help="override the setting's number of epochs")
    parser.add_argument("--warmup", type=int, default=8, help="steps left out of the 2nd MSE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="examples_output", help="where the PNG goes")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    args = parser.parse_args()
    settings = SETTINGS["long" if args.long else "fast"]
    epochs = settings["epochs"] if args.epochs is None else args.epochs
    train_data = irregular_sine(
        settings["train"], settings["length"], seed=args.seed, max_gap=MAX_GAP
    )
    test_data = irregular_sine(
        TEST_SEQUENCES, settings["length"], seed=args.seed + 1, max_gap=MAX_GAP
    )
    print(
        f"irregular sine: {settings['train']} train / {TEST_SEQUENCES} test sequences of "
        f"{settings['length']} steps (gaps 0.05-{MAX_GAP}); CfC + AutoNCP({settings['units']}, 1),"
        f" {epochs} epochs"
    )

    def without_time(data):
        return data[0], np.ones_like(data[1]), data[2]

    results = {}
    for label, transform in (("with timespans", None), ("without timespans", without_time)):
        train_set = train_data if transform is None else transform(train_data)
        test_set = test_data if transform is None else transform(test_data)
        model, history, seconds = train(
            train_set, test_set, settings, epochs, args.seed, args.progress
        )
        x, timespans, y = (mx.array(a) for a in test_set)
        prediction = np.array(model(x, timespans=timespans)[0])
        late = ((prediction - test_set[2])[:, args.warmup :] ** 2).mean()
        results[label] = (history.epochs[-1]["test_mse"], float(late), prediction)
        print(
            f"{label:18} test MSE {results[label][0]:.4f} (all steps), {late:.4f} (steps >= "
            f"{args.warmup})  train loss {history.epochs[-1]['train_loss']:.4f}  "
            f"({seconds:.1f} s, {seconds / epochs:.2f} s/epoch)"
        )
    (with_all, with_late, with_pred), (without_all, without_late, without_pred) = results.values()
    print(
        f"without/with timespans: test MSE ratio {without_all / with_all:.2f}x (all steps), "
        f"{without_late / with_late:.2f}x (steps >= {args.warmup})"
    )
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "irregular_sine.png")
    save_prediction_plot(
        path,
        test_data[1][0],
        test_data[0][0, :, 0],
        test_data[2][0, :, 0],
        {"with timespans": with_pred[0, :, 0], "without timespans": without_pred[0, :, 0]},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
