"""Helpers shared by the tests: seeded builds, weight twins, random inputs, a minimal user
layer for the hybrid builder, and the comparison of two wirings' matrices."""

import mlx.core as mx
import mlx.nn as nn
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


class ElementwiseLayer(nn.Module):
    """A minimal stateless user layer for ``HybridBuilder.register``: ``x * weight``, with the
    layer contract's ``make_cache``, ``__call__`` and ``step``. Subclasses set ``weight``."""

    def make_cache(self, batch):
        return None

    def __call__(self, x, cache=None):
        return x * self.weight, cache

    def step(self, x_t, cache=None):
        return x_t * self.weight, cache


def assert_same_matrices(wiring, reference):
    """Two wirings (ours or ncps's, either way round) have the same sizes and matrices."""
    assert (wiring.units, wiring.input_dim, wiring.output_dim) == (
        reference.units,
        reference.input_dim,
        reference.output_dim,
    )
    np.testing.assert_array_equal(wiring.adjacency_matrix, reference.adjacency_matrix)
    np.testing.assert_array_equal(
        wiring.sensory_adjacency_matrix, reference.sensory_adjacency_matrix
    )
