"""Classify handwritten digits read row by row with a CfC and/or an LTC on an AutoNCP wiring.

    python examples/digits_classification.py               # CfC and LTC, ~80 s on a 2-core CPU
    python examples/digits_classification.py --cell cfc    # CfC only, ~15 s
    python examples/digits_classification.py --long        # AutoNCP(64, 16), 80 epochs (~6 min)

Task (``ncps_mlx.datasets.load_digits_sequences``): scikit-learn's 8×8 digits as sequences of
8 rows (time steps) of 8 pixels; a ``SequenceClassifier`` reads the motor neurons' last output.
Each cell is trained with ``ncps_mlx.training.fit`` (cross-entropy, Adam with a cosine decay to
5 % of the learning rate, batches of 32) using the settings of ``ncps-mlx demo``
(``ncps_mlx.apps.demo.SETTINGS``), except that the default run takes 20 epochs instead of 30 to
keep it short, and the LTC uses twice the learning rate (it learns more slowly). The
script prints each model's parameter count, test accuracy and seconds per epoch, and writes
``digits_<cell>_training.png`` (loss and test accuracy per epoch) to ``--out-dir`` (default
``examples_output/``).
"""

from __future__ import annotations

import argparse
import os

import mlx.core as mx
from mlx.utils import tree_flatten

from ncps_mlx import LTC, CfC
from ncps_mlx.apps.demo import SETTINGS, save_training_curve
from ncps_mlx.datasets import load_digits_sequences
from ncps_mlx.training import SequenceClassifier, fit_classifier
from ncps_mlx.wirings import AutoNCP

CELLS = {"cfc": (CfC, 1.0), "ltc": (LTC, 2.0)}  # cell class, learning-rate factor
DEFAULT_EPOCHS, BATCH_SIZE = 20, 32


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("cfc", "ltc", "both"), default="both")
    parser.add_argument("--long", action="store_true", help="demo's long settings (80 epochs)")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="examples_output", help="where the PNGs go")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    args = parser.parse_args()
    settings = SETTINGS["long" if args.long else "fast"]
    epochs = (
        (settings["epochs"] if args.long else DEFAULT_EPOCHS)
        if args.epochs is None
        else args.epochs
    )
    data = load_digits_sequences(seed=args.seed)
    units, motors = settings["units"], settings["motor_neurons"]
    print(
        f"digits: {len(data.y_train)} train / {len(data.y_test)} test sequences of 8 steps × 8 "
        f"pixels; AutoNCP({units}, {motors}), {epochs} epochs, batch {BATCH_SIZE}"
    )
    os.makedirs(args.out_dir, exist_ok=True)
    for name in ("cfc", "ltc") if args.cell == "both" else (args.cell,):
        cell, factor = CELLS[name]
        mx.random.seed(args.seed)
        model = SequenceClassifier(
            cell(data.x_train.shape[-1], AutoNCP(units, motors, seed=args.seed)),
            data.num_classes,
        )
        mx.eval(model.parameters())
        parameters = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
        rate = settings["learning_rate"] * factor
        history = fit_classifier(
            model, data, epochs, rate, BATCH_SIZE, args.seed, progress=args.progress
        )
        seconds = history.series("seconds")
        path = os.path.join(args.out_dir, f"digits_{name}_training.png")
        save_training_curve(history, path, f"{name.upper()} + AutoNCP({units}, {motors}) on digits")
        print(
            f"{name.upper()}: {parameters} parameters, test accuracy "
            f"{100 * history.epochs[-1]['test_accuracy']:.1f}% (best "
            f"{100 * max(history.series('test_accuracy')):.1f}%), lr {rate:g}, "
            f"{sum(seconds) / len(seconds):.2f} s/epoch; wrote {path}"
        )


if __name__ == "__main__":
    main()
