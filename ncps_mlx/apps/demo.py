"""``ncps-mlx demo``: a CfC with an AutoNCP wiring learns to read handwritten digits.

Each 8×8 digit of scikit-learn's digits dataset is a sequence of 8 rows (8 pixels each); the
model reads the rows one per time step and a linear layer classifies the motor neurons' last
output. The default setting trains in well under a minute on a 2-core CPU and reaches ≥ 90 %
test accuracy; ``long=True`` (``--long``) trains a larger circuit for longer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mlx.core as mx
from mlx.utils import tree_flatten

from ..datasets import load_digits_sequences
from ..sequence import CfC
from ..training import History
from ..training.classifier import SequenceClassifier, fit_classifier
from ..viz import save_wiring_plot
from ..wirings import AutoNCP

#: Settings of the default (fast) and ``long`` runs.
SETTINGS = {
    "fast": {"units": 32, "motor_neurons": 10, "epochs": 30, "learning_rate": 0.005},
    "long": {"units": 64, "motor_neurons": 16, "epochs": 80, "learning_rate": 0.003},
}


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes:
        test_accuracy: Share of test digits classified correctly after training.
        history: The training :class:`~ncps_mlx.training.History` (``train_loss``,
            ``test_loss`` and ``test_accuracy`` per epoch).
        wiring_plot: Path of the wiring plot (PNG).
        curve_plot: Path of the training-curve plot (PNG).
        model: The trained :class:`~ncps_mlx.training.classifier.SequenceClassifier`.
    """

    test_accuracy: float
    history: History
    wiring_plot: str
    curve_plot: str
    model: SequenceClassifier


def save_training_curve(history: History, path: str, title: str) -> None:
    """Plot the training and test loss and the test accuracy per epoch side by side into
    ``path``; the labels are the progress bar's names (``train_loss`` is "train loss")."""
    from matplotlib.figure import Figure

    epochs = history.series("epoch")
    figure = Figure(figsize=(9, 3.5), dpi=100)
    loss_ax, accuracy_ax = figure.subplots(1, 2)
    for key in ("train_loss", "test_loss"):
        loss_ax.plot(epochs, history.series(key), label=key.replace("_", " "))
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    loss_ax.legend(frameon=False)
    accuracy_ax.plot(epochs, [100 * a for a in history.series("test_accuracy")])
    accuracy_ax.set(xlabel="epoch", ylabel="%", title="test accuracy")
    accuracy_ax.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)


def run_demo(
    long: bool = False,
    epochs: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    out_dir: str = ".",
    progress: bool = True,
    log=print,
) -> DemoResult:
    """Train the digits classifier, write its plots and return the result.

    Args:
        long: Use the ``long`` settings of :data:`SETTINGS` (bigger circuit, more epochs).
        epochs: Override the setting's number of epochs.
        batch_size: Digits per optimizer step.
        seed: Seed of the split, the wiring, the initial weights and the shuffling.
        out_dir: Directory of ``demo_wiring.png`` and ``demo_training.png`` (created if needed).
        progress: Show a progress bar.
        log: Where the summary lines go (``print`` by default; pass a no-op to silence).

    Returns:
        A :class:`DemoResult`.
    """
    settings = dict(SETTINGS["long" if long else "fast"])
    if epochs is not None:
        settings["epochs"] = epochs
    data = load_digits_sequences(seed=seed)
    mx.random.seed(seed)
    wiring = AutoNCP(settings["units"], settings["motor_neurons"], seed=seed)
    model = SequenceClassifier(CfC(data.x_train.shape[-1], wiring), data.num_classes)
    mx.eval(model.parameters())
    parameters = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    log(
        f"digits: {len(data.y_train)} train / {len(data.y_test)} test sequences of 8 steps × 8 "
        f"pixels; CfC on AutoNCP({settings['units']}, {settings['motor_neurons']}) "
        f"({wiring.synapse_count + wiring.sensory_synapse_count} synapses), {parameters} "
        f"parameters"
    )
    history = fit_classifier(
        model,
        data,
        settings["epochs"],
        settings["learning_rate"],
        batch_size,
        seed,
        progress=progress,
    )
    test_accuracy = history.epochs[-1]["test_accuracy"]
    os.makedirs(out_dir, exist_ok=True)
    wiring_plot = os.path.join(out_dir, "demo_wiring.png")
    curve_plot = os.path.join(out_dir, "demo_training.png")
    save_wiring_plot(wiring, wiring_plot, layout="layered")
    save_training_curve(history, curve_plot, f"CfC + AutoNCP({settings['units']}) on digits")
    log(f"test accuracy: {100 * test_accuracy:.1f}%")
    log(f"wrote {wiring_plot} and {curve_plot}")
    return DemoResult(test_accuracy, history, wiring_plot, curve_plot, model)
