"""Training: the loop (:func:`fit`), batches of ragged sequences, atomic checkpoints with exact
resume, data parallelism over ``mx.distributed``, and a classifier head for sequence models.

Modules: :mod:`~ncps_mlx.training.loop` (``fit``, ``History``, ``EarlyStopping``),
:mod:`~ncps_mlx.training.batching`, :mod:`~ncps_mlx.training.checkpoint`,
:mod:`~ncps_mlx.training.distributed` and :mod:`~ncps_mlx.training.classifier`.
"""

from . import batching, checkpoint, distributed
from .classifier import SequenceClassifier, accuracy, classification_loss, fit_classifier
from .loop import EarlyStopping, History, cosine_adam, evaluate_loss, fit

__all__ = [
    "fit",
    "History",
    "EarlyStopping",
    "evaluate_loss",
    "cosine_adam",
    "SequenceClassifier",
    "classification_loss",
    "accuracy",
    "fit_classifier",
    "batching",
    "checkpoint",
    "distributed",
]
