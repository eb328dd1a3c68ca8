"""Built-in tasks that score an :class:`~ncps_mlx.explore.Architecture` by a brief training run.

A task owns a seeded classification data set (:class:`~ncps_mlx.datasets.SequenceSplit`);
:meth:`Task.evaluate` puts a linear head on the architecture (:class:`HybridClassifier`),
trains it for a few epochs with Adam on a cosine-decayed learning rate
(:func:`~ncps_mlx.training.fit`) and reports test accuracy, the exact parameter count and the
wall time. The same seed gives the same data, initial weights, batch order and so the same
accuracy.

* ``"digits"`` (:class:`DigitsTask`): scikit-learn's handwritten digits read row by row, 8
  steps of 8 pixels, 10 classes.
* ``"long_memory"`` (:class:`LongMemoryTask`): recall a symbol shown at the first step after
  ``length - 1`` steps of distractors (see the class for the exact definition).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from .._validation import check_int, normalize_seed
from ..datasets import SequenceSplit, load_digits_sequences
from ..training.classifier import accuracy, fit_classifier
from .architecture import Architecture

__all__ = [
    "TASKS",
    "DigitsTask",
    "HybridClassifier",
    "LongMemoryTask",
    "Task",
    "TaskResult",
    "get_task",
]


class HybridClassifier(nn.Module):
    """A hybrid stack followed by a linear readout of its last step.

    Args:
        body (nn.Module): A :class:`~ncps_mlx.hybrid.HybridModel` (or any module with a
            ``hidden_size`` whose call maps ``(B, T, E)`` to ``((B, T, H), state)``, the state
            contract of :mod:`ncps_mlx.streaming`), e.g. ``architecture.build(E)``.
        num_classes (int): Number of classes ``C``.

    Call: ``classifier(x)`` with ``x`` ``(B, T, E)`` returns logits ``(B, C)``. Parameters are
    ``body.*`` and ``head.*``, so a module written by :mod:`ncps_mlx.explore.codegen` loads
    the weights of a classifier trained here.
    """

    def __init__(self, body: nn.Module, num_classes: int):
        super().__init__()
        self.body = body
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.head = nn.Linear(body.hidden_size, self.num_classes)

    @classmethod
    def from_architecture(
        cls, architecture: Architecture, input_size: int, num_classes: int
    ) -> HybridClassifier:
        """``HybridClassifier(architecture.build(input_size), num_classes)``."""
        return cls(architecture.build(input_size), num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        outputs, _ = self.body(x)
        return self.head(outputs[:, -1])


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars of ``model``."""
    return sum(array.size for _, array in tree_flatten(model.trainable_parameters()))


@dataclass(frozen=True)
class TaskResult:
    """One brief training run.

    Attributes:
        value: The task's metric on its test set (accuracy in ``[0, 1]``).
        params: Exact trainable parameter count of the classifier (stack and head).
        seconds: Wall time of building, training and evaluating.
        epochs: Epochs trained.
    """

    value: float
    params: int
    seconds: float
    epochs: int


class Task(ABC):
    """A classification task that scores architectures by a brief training run.

    Subclasses set ``name``, ``input_size``, ``num_classes``, the default
    ``epochs``, ``batch_size`` and ``learning_rate``, and implement :meth:`split`.
    """

    name: ClassVar[str]
    metric: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True
    input_size: int
    num_classes: int
    epochs: int
    batch_size: int
    learning_rate: float

    @abstractmethod
    def split(self, seed: int) -> SequenceSplit:
        """The train and test sets drawn with ``seed``; ``x`` is ``(N, T, input_size)``."""

    def evaluate(
        self,
        architecture: Architecture,
        epochs: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> TaskResult:
        """Train :class:`HybridClassifier` on :meth:`split` and measure test accuracy.

        Adam with a learning rate decaying from ``learning_rate`` to 5 % of it along a
        cosine over all steps. ``seed`` seeds the data, the initial weights (``mx.random``)
        and the batch order, so a seed always gives the same result.

        Args:
            architecture: The stack to score (its input width is ``input_size``).
            epochs: Passes over the training set (default: ``epochs``).
            seed: Seed of the run.
            batch_size: Sequences per step (default: ``batch_size``).
            progress: Show a progress bar.

        Returns:
            A :class:`TaskResult`.
        """
        epochs = check_int(self.epochs if epochs is None else epochs, "epochs", minimum=1)
        batch_size = self.batch_size if batch_size is None else batch_size
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        started = time.perf_counter()
        data = self.split(seed)
        mx.random.seed(seed)
        model = HybridClassifier.from_architecture(architecture, self.input_size, self.num_classes)
        fit_classifier(
            model,
            data,
            epochs,
            self.learning_rate,
            batch_size,
            seed,
            per_epoch_metrics=False,
            progress=progress,
        )
        value = accuracy(model, data.x_test, data.y_test)
        seconds = time.perf_counter() - started
        return TaskResult(value, parameter_count(model), seconds, epochs)


@dataclass(frozen=True)
class DigitsTask(Task):
    """``"digits"``: scikit-learn's 8×8 handwritten digits, row ``t`` at step ``t`` (8 steps
    of 8 pixels in ``[0, 1]``), 10 classes; 1,438 training and 359 test digits, split per
    class by the seed (:func:`~ncps_mlx.datasets.load_digits_sequences`). Chance is 10 %.

    Attributes:
        epochs: Default epochs of a brief run.
        batch_size: Default digits per step.
        learning_rate: Peak learning rate.
    """

    name: ClassVar[str] = "digits"
    input_size: ClassVar[int] = 8
    num_classes: ClassVar[int] = 10
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 0.005

    def split(self, seed: int) -> SequenceSplit:
        return load_digits_sequences(seed=seed)


@dataclass(frozen=True)
class LongMemoryTask(Task):
    """``"long_memory"``: name the symbol shown at the first step, ``length - 1`` steps ago.

    Every sequence has ``length`` steps of ``num_symbols + 1`` features. Step 0 is the cue:
    the one-hot code of the label ``y`` (uniform over ``0 .. num_symbols-1``) in the first
    ``num_symbols`` features and 1 in the last (the cue marker). Steps ``1 .. length-1`` are
    distractors: one-hot codes of symbols drawn uniformly and independently, marker 0. The
    label is read after the last step, so a model must carry ``y`` across the distractors; one
    that sees only the last step is at chance, ``1 / num_symbols``. Draws come from
    ``np.random.default_rng(seed)``: the ``train_size`` training labels, then a ``(train_size,
    length)`` array of symbols whose first column is replaced by the labels, then the same for
    the test set.

    The defaults keep a brief run to a few seconds on a laptop CPU and separate architectures:
    after the default 3 epochs, a stack with attention is near 100 %, a CfC layer well above
    chance and per-step layers (``ffn``) at chance; at ``length=32`` only attention leaves
    chance in 3 epochs.

    Attributes:
        length: Steps per sequence ``T``.
        num_symbols: Number of symbols ``K`` (= classes).
        train_size: Training sequences.
        test_size: Test sequences.
        epochs: Default epochs of a brief run.
        batch_size: Default sequences per step.
        learning_rate: Peak learning rate.
    """

    name: ClassVar[str] = "long_memory"
    length: int = 16
    num_symbols: int = 4
    train_size: int = 1024
    test_size: int = 512
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 0.005

    def __post_init__(self):
        check_int(self.length, "length", minimum=1)
        check_int(self.num_symbols, "num_symbols", minimum=2)
        check_int(self.train_size, "train_size", minimum=1)
        check_int(self.test_size, "test_size", minimum=1)

    @property
    def input_size(self) -> int:
        return self.num_symbols + 1

    @property
    def num_classes(self) -> int:
        return self.num_symbols

    def _draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` sequences ``(count, T, K + 1)`` and their labels ``(count,)``."""
        labels = rng.integers(0, self.num_symbols, count).astype(np.int32)
        symbols = rng.integers(0, self.num_symbols, (count, self.length))
        symbols[:, 0] = labels
        x = np.zeros((count, self.length, self.input_size), np.float32)
        np.put_along_axis(x, symbols[..., None], 1.0, axis=-1)
        x[:, 0, -1] = 1.0
        return x, labels

    def split(self, seed: int) -> SequenceSplit:
        rng = np.random.default_rng(normalize_seed(seed))
        x_train, y_train = self._draw(rng, self.train_size)
        x_test, y_test = self._draw(rng, self.test_size)
        return SequenceSplit(x_train, y_train, x_test, y_test, self.num_classes)


#: The built-in tasks by name, with their default settings.
TASKS: dict[str, Task] = {task.name: task for task in (DigitsTask(), LongMemoryTask())}


def get_task(name: str) -> Task:
    """The built-in task called ``name``.

    Raises:
        ValueError: If there is none (the message lists the valid names).
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {sorted(TASKS)}")
    return TASKS[name]
