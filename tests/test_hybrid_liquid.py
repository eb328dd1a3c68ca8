"""LiquidLayer: a CfC/LTC as a (B, T, D) -> (B, T, D) layer, whole-sequence vs step vs chunks."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from training import train

from ncps_mlx import LTC, CfC
from ncps_mlx.hybrid import LiquidLayer
from ncps_mlx.wirings import AutoNCP, MultiScaleWiring

D = 12


@pytest.mark.parametrize("kind", ["cfc", "ltc"])
def test_the_layer_is_projection_cell_projection(kind):
    mx.random.seed(0)
    layer = LiquidLayer(D, kind, units=20, features=6)
    x = mx.random.normal((2, 9, D))
    y, state = layer(x)
    cell = {"cfc": CfC, "ltc": LTC}[kind]
    assert isinstance(layer.rnn, cell) and y.shape == (2, 9, D)
    inner, expected_state = layer.rnn(layer.input_projection(x))
    np.testing.assert_allclose(np.array(y), np.array(layer.output_projection(inner)), atol=1e-6)
    np.testing.assert_allclose(np.array(state), np.array(expected_state), atol=1e-6)


@pytest.mark.parametrize("kind", ["cfc", "ltc"])
def test_steps_and_chunks_with_the_cache_equal_the_whole_sequence(kind):
    mx.random.seed(1)
    layer = LiquidLayer(D, kind, wiring=MultiScaleWiring(4, 3, 3, 2, seed=1), features=5)
    x = mx.random.normal((3, 10, D))
    whole, _ = layer(x)
    cache = layer.make_cache(3)
    steps = []
    for t in range(10):
        y_t, cache = layer.step(x[:, t], cache)
        steps.append(y_t)
    np.testing.assert_allclose(np.array(mx.stack(steps, axis=1)), np.array(whole), atol=1e-5)
    first, cache = layer(x[:, :4])
    second, _ = layer(x[:, 4:], cache)
    np.testing.assert_allclose(
        np.array(mx.concatenate([first, second], 1)), np.array(whole), atol=1e-5
    )


def test_mixed_memory_cache_is_a_pair():
    layer = LiquidLayer(D, "cfc", units=20, mixed_memory=True)
    h, c = layer.make_cache(2)
    assert h.shape == c.shape == (2, layer.rnn.state_size)
    _, (h, c) = layer(mx.random.normal((2, 3, D)), (h, c))
    assert h.shape == (2, layer.rnn.state_size)


def test_the_layer_trains():
    mx.random.seed(2)
    layer = LiquidLayer(4, "cfc", units=16, features=4)
    t = np.linspace(0, 4 * np.pi, 24, dtype=np.float32)
    x = mx.array(np.stack([np.sin(t + p) for p in range(8)])[..., None].repeat(4, -1))
    y = mx.array(np.stack([np.sin(t + p - 0.5) for p in range(8)])[..., None].repeat(4, -1))
    losses = train(layer, lambda m: nn.losses.mse_loss(m(x)[0], y), 60, 0.01)
    assert min(losses[-5:]) < losses[0] / 5


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"kind": "gru"}, "kind"),
        ({"units": 4, "features": 6}, "units"),
        ({"wiring": "ncp"}, "wiring"),
        ({"wiring": AutoNCP(20, 2), "features": 6, "mode": "fast"}, "mode"),
    ],
)
def test_bad_arguments_are_reported(kwargs, error):
    with pytest.raises((ValueError, TypeError), match=error):
        LiquidLayer(D, **kwargs)
