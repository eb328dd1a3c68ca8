"""The cells' sigmoid and tanh (ncps_mlx.cells.fast_math) against float64 references."""

import mlx.core as mx
import numpy as np
import pytest

from ncps_mlx.cells import fast_math

# Every float32 range the cells meet: saturated tails, the steep middle, tiny magnitudes.
INPUTS = np.concatenate(
    [
        np.linspace(-120.0, 120.0, 400_001),
        np.linspace(-1.0, 1.0, 100_001),
        np.logspace(-30, 1, 4_000),
        -np.logspace(-30, 1, 4_000),
    ]
).astype(np.float32)
REFERENCES = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}


def evaluate(name, x, compiled=False):
    function = getattr(fast_math, name)
    return np.array((mx.compile(function) if compiled else function)(mx.array(x)), np.float64)


def test_the_polynomial_form_is_used_for_large_float32_arrays_on_the_cpu_only():
    large = mx.linspace(-5, 5, fast_math.POLYNOMIAL_MIN_SIZE)
    small = mx.linspace(-5, 5, 101)
    with mx.stream(mx.cpu):  # the default device decides, whatever the machine's default
        assert fast_math.uses_polynomial(large)
        assert not fast_math.uses_polynomial(large.astype(mx.float16))
        assert not fast_math.uses_polynomial(large[:-1])
        assert not mx.array_equal(fast_math.sigmoid(large), mx.sigmoid(large))  # it ran
        assert mx.array_equal(fast_math.sigmoid(small), mx.sigmoid(small))
    if mx.is_available(mx.gpu):  # a GPU always runs MLX's own kernels
        with mx.stream(mx.gpu):
            assert not fast_math.uses_polynomial(large)
            assert mx.array_equal(fast_math.sigmoid(large), mx.sigmoid(large))
            assert mx.array_equal(fast_math.tanh(large), mx.tanh(large))


@pytest.mark.parametrize("compiled", [False, True])
def test_sigmoid_is_within_1_2e_7_of_the_exact_value_everywhere(compiled):
    exact = REFERENCES["sigmoid"](INPUTS.astype(np.float64))
    error = np.abs(evaluate("sigmoid", INPUTS, compiled) - exact)
    assert error.max() <= 1.2e-7
    # as accurate as MLX's own sigmoid, to within a float32 ulp of 1/2
    mlx_error = np.abs(np.array(mx.sigmoid(mx.array(INPUTS)), np.float64) - exact)
    assert error.max() <= mlx_error.max() + 6e-8


@pytest.mark.parametrize("compiled", [False, True])
def test_tanh_has_relative_error_below_1e_6_away_from_underflow(compiled):
    exact = np.tanh(INPUTS.astype(np.float64))
    ours = evaluate("tanh", INPUTS, compiled)
    assert np.abs(ours - exact).max() <= 2.5e-7
    visible = np.abs(exact) > 1e-30
    assert (np.abs(ours - exact)[visible] / np.abs(exact[visible])).max() <= 1e-6
    assert np.all(np.sign(ours) == np.sign(exact))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_nan_propagates_and_infinities_saturate(name):
    special = np.array([np.nan, np.inf, -np.inf], np.float32)
    out = evaluate(name, np.resize(special, fast_math.POLYNOMIAL_MIN_SIZE))[:3]
    assert np.isnan(out[0])
    low = 0.0 if name == "sigmoid" else -1.0
    np.testing.assert_allclose(out[1:], [1.0, low], atol=1.2e-38)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_gradient_is_the_exact_derivative_at_the_computed_value(name):
    x = np.linspace(-12.0, 12.0, 40_001).astype(np.float32)  # large: the polynomial form
    gradient = np.array(mx.grad(lambda v: getattr(fast_math, name)(v).sum())(mx.array(x)))
    x64 = x.astype(np.float64)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-x64))
        expected = s * (1.0 - s)
    else:
        expected = 1.0 - np.tanh(x64) ** 2
    # |tanh error| <= 2.5e-7 moves 1 - tanh^2 by at most 2 * 2.5e-7
    np.testing.assert_allclose(gradient, expected, rtol=0, atol=5e-7)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_half_precision_inputs_use_mlx_functions_unchanged(name):
    x = mx.array(np.linspace(-6, 6, fast_math.POLYNOMIAL_MIN_SIZE), mx.float16)
    expected = getattr(mx, name)(x)
    assert mx.array_equal(getattr(fast_math, name)(x), expected)
