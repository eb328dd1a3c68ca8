"""Compare the recurrent cells on the digits task: CfC, LTC, CT-RNN, CT-GRU, ODE-LSTM and LSTM.

    python examples/cell_comparison.py                    # every cell, 8 epochs, ~100 s on 2 cores
    python examples/cell_comparison.py --cells cfc ctgru  # a subset
    python examples/cell_comparison.py --wiring autoncp   # AutoNCP(32, 10) instead of dense
    python examples/cell_comparison.py --long             # 40 epochs

Task (``ncps_mlx.datasets.load_digits_sequences``): scikit-learn's 8×8 digits read as 8 rows
(time steps) of 8 pixels; a ``SequenceClassifier`` classifies the last output. Every cell gets
the same number of neurons (``--units``, default 32; fully connected unless ``--wiring
autoncp``) with its module's defaults otherwise, and is trained with
``ncps_mlx.training.fit_classifier`` (cross-entropy, Adam with cosine decay, batches of 32) for
the same number of epochs, at a learning rate of 0.005 times a per-cell factor (``CELLS``).
``lstm`` is ``mlx.nn.LSTM``, a discrete-time baseline (it ignores timespans and wirings). The
script prints a Markdown table: cell, parameters (stored weights, masked-out ones included),
test accuracy after the last epoch, seconds per epoch (training and evaluation, this machine).
"""

from __future__ import annotations

import argparse

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from ncps_mlx import LTC, CfC
from ncps_mlx.datasets import load_digits_sequences
from ncps_mlx.sequence import CTGRU, CTRNN, ODELSTM
from ncps_mlx.training import SequenceClassifier, fit_classifier
from ncps_mlx.wirings import AutoNCP


class PlainLSTM(nn.Module):
    """``mlx.nn.LSTM`` with the call contract ``SequenceClassifier`` expects."""

    return_sequences = True
    batch_first = True

    def __init__(self, input_size: int, units: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, units)
        self.output_size = units

    def __call__(self, x, hx=None, timespans=None, mask=None):
        h, c = self.lstm(x)
        return h, (h[:, -1], c[:, -1])


#: name -> (label, module class, learning-rate factor). LTC learns more slowly (as in the
#: digits example); the dense CfC's 128-unit backbone needs a smaller rate (0.005 stalls it).
CELLS = {
    "cfc": ("CfC", CfC, 0.2),
    "ltc": ("LTC", LTC, 2.0),
    "ctrnn": ("CT-RNN", CTRNN, 1.0),
    "ctgru": ("CT-GRU", CTGRU, 1.0),
    "odelstm": ("ODE-LSTM", ODELSTM, 1.0),
    "lstm": ("LSTM (mlx.nn)", PlainLSTM, 1.0),
}
LEARNING_RATE, BATCH_SIZE = 0.005, 32


def build(name: str, features: int, units: int, wiring: str, motors: int, seed: int):
    """The classifier around cell ``name``, seeded."""
    _, cls, _ = CELLS[name]
    mx.random.seed(seed)
    if wiring == "autoncp" and name != "lstm":
        rnn = cls(features, AutoNCP(units, motors, seed=seed))
    else:
        rnn = cls(features, units)
    model = SequenceClassifier(rnn, 10)
    mx.eval(model.parameters())
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--units", type=int, default=32, help="neurons of every cell")
    parser.add_argument("--wiring", choices=("dense", "autoncp"), default="dense")
    parser.add_argument("--motor-neurons", type=int, default=10, help="with --wiring autoncp")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--long", action="store_true", help="40 epochs instead of 8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    args = parser.parse_args()
    epochs = args.epochs if args.epochs is not None else (40 if args.long else 8)
    data = load_digits_sequences(seed=args.seed)
    shape = f"AutoNCP({args.units}, {args.motor_neurons})" if args.wiring == "autoncp" else "dense"
    print(
        f"digits: {len(data.y_train)} train / {len(data.y_test)} test sequences of 8 steps × 8 "
        f"pixels; {args.units} neurons ({shape}), {epochs} epochs, batch {BATCH_SIZE}\n"
    )
    print("| cell | parameters | test accuracy | seconds / epoch |")
    print("|---|---:|---:|---:|")
    for name in args.cells:
        label, _, factor = CELLS[name]
        model = build(
            name, data.x_train.shape[-1], args.units, args.wiring, args.motor_neurons, args.seed
        )
        parameters = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
        history = fit_classifier(
            model,
            data,
            epochs,
            LEARNING_RATE * factor,
            BATCH_SIZE,
            args.seed,
            progress=args.progress,
        )
        seconds = history.series("seconds")
        accuracy = 100 * history.epochs[-1]["test_accuracy"]
        print(
            f"| {label} | {parameters:,} | {accuracy:.1f} % | {sum(seconds) / len(seconds):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
