"""Task heads around the sequence modules."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .._validation import check_int
from .loop import cosine_adam, evaluate_loss, fit


class SequenceClassifier(nn.Module):
    """A sequence module followed by a linear readout of its last valid output.

    The sequence module (an :class:`~ncps_mlx.sequence.LTC`, :class:`~ncps_mlx.sequence.CfC` or any
    module with the same call contract and an ``output_size``) must return sequences; the
    classifier reads the output at the last step (with a ``mask``, padded steps repeat the last
    valid output, so the last step is the last valid one).

    Args:
        rnn: The sequence module, with ``return_sequences=True`` and ``batch_first=True``.
        num_classes: Number of classes ``C``.

    Call: ``classifier(x, timespans=None, mask=None)`` with ``x`` ``(B, T, F)`` returns logits
    ``(B, C)``.
    """

    def __init__(self, rnn: nn.Module, num_classes: int):
        super().__init__()
        if not getattr(rnn, "return_sequences", True) or not getattr(rnn, "batch_first", True):
            raise ValueError("rnn must be built with return_sequences=True and batch_first=True")
        features = getattr(rnn, "output_size", None)
        if not isinstance(features, int):
            raise TypeError(f"rnn must have an int output_size, got {type(rnn).__name__}")
        self.rnn = rnn
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.head = nn.Linear(features, self.num_classes)

    def __call__(self, x: mx.array, timespans=None, mask=None) -> mx.array:
        outputs, _ = self.rnn(x, timespans=timespans, mask=mask)
        if outputs.ndim != 3:
            raise ValueError(f"x must be (B, T, F), got shape {tuple(x.shape)}")
        return self.head(outputs[:, -1])


def classification_loss(model: nn.Module, x: mx.array, labels: mx.array) -> mx.array:
    """Mean cross-entropy of ``model(x)`` logits ``(B, C)`` against int labels ``(B,)``."""
    return nn.losses.cross_entropy(model(x), labels, reduction="mean")


def fit_classifier(
    model: nn.Module,
    data,
    epochs: int,
    learning_rate: float,
    batch_size: int = 32,
    seed: int = 0,
    per_epoch_metrics: bool = True,
    progress: bool = True,
):
    """Train a classifier on a :class:`~ncps_mlx.datasets.SequenceSplit` with
    :func:`~ncps_mlx.training.fit`, cross-entropy and
    :func:`~ncps_mlx.training.cosine_adam`.

    Args:
        model: Maps ``(B, T, F)`` to logits ``(B, C)``.
        data: The train and test sets.
        epochs, learning_rate, batch_size, seed, progress: As for ``fit`` / ``cosine_adam``.
        per_epoch_metrics: Record ``test_loss`` and ``test_accuracy`` after every epoch
            (on ``data``'s test set, which nothing here selects on: it stays a test set, so
            the records, the progress bar and the plots call it "test", not "val").

    Returns:
        The :class:`~ncps_mlx.training.History`.
    """
    metrics = None
    if per_epoch_metrics:
        test = (data.x_test, data.y_test)
        metrics = {
            "test_loss": lambda m: evaluate_loss(m, classification_loss, test),
            "test_accuracy": lambda m: accuracy(m, *test),
        }
    return fit(
        model,
        classification_loss,
        cosine_adam(learning_rate, epochs, len(data.y_train), batch_size),
        (data.x_train, data.y_train),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        metrics=metrics,
        progress=progress,
    )


def accuracy(model: nn.Module, x, labels, batch_size: int = 512) -> float:
    """Share of ``x`` ``(N, T, F)`` whose arg-max logit equals ``labels`` ``(N,)``, in batches."""
    labels = mx.array(labels)
    correct = 0
    for start in range(0, labels.shape[0], batch_size):
        logits = model(mx.array(x[start : start + batch_size]))
        correct += (mx.argmax(logits, axis=-1) == labels[start : start + batch_size]).sum().item()
    return correct / labels.shape[0]
