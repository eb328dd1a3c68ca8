"""Helpers shared by the sequence-module tests: seeded builds, weight twins, random inputs."""

import mlx.core as mx
import numpy as np


def build_model(models: dict, name: str, seed: int = 0, **kwargs):
    """``models[name](**kwargs)`` with MLX's generator seeded (same seed, same weights)."""
    mx.random.seed(seed)
    return models[name](**kwargs)


def model_twin(models: dict, name: str, model, **kwargs):
    """A model of the same kind built with other keywords, holding ``model``'s weights."""
    other = build_model(models, name, seed=99, **kwargs)
    other.update(model.parameters())
    return other


def random_sequences(seed=0, *, batch, steps, features) -> np.ndarray:
    """Standard-normal float32 inputs ``(batch, steps, features)``."""
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype(np.float32)
