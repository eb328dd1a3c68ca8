"""The classifier head and its helpers, under their first import path; they live in
:mod:`ncps_mlx.training.classifier`."""

from .training.classifier import SequenceClassifier, accuracy, classification_loss, fit_classifier

__all__ = ["SequenceClassifier", "classification_loss", "accuracy", "fit_classifier"]
