"""Hybrid models check their input at the model boundary and speak the builder's names.

A ``HybridModel`` from ``HybridBuilder.build(..., embed_size=E, hidden_size=H)`` takes ``x``
``(B, T, E)`` floating point (``step``: ``(B, E)``). Anything else fails before any layer runs,
with a message that names ``embed_size`` and the shape the user passed, not the shape after the
model's internal projection (``(B, T, H)``) or an MLX kernel's name.
"""

import mlx.core as mx
import numpy as np
import pytest

from ncps_mlx.hybrid import ConvTransformerEncoder, HybridBuilder

E, H = 16, 64
EVERY_LAYER = HybridBuilder.layer_types()


@pytest.fixture(scope="module")
def model():
    return HybridBuilder.build(["mamba", "attention", "ffn"], E, H)


def mlx_internals(message: str) -> bool:
    """Whether ``message`` shows MLX internals or the shape after the input projection."""
    return "[" in message.split(",")[0] or f", {H})" in message or "addmm" in message


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (mx.zeros((2, 5, 10)), ValueError, r"x has 10 features .* embed_size=16.*\(2, 5, 10\)"),
        (
            mx.zeros((8, E)),
            ValueError,
            r"x must be 3-D \(B, T, embed_size=16\), got shape \(8, 16\)",
        ),
        (mx.zeros((2, 5, E, 1)), ValueError, r"3-D \(B, T, embed_size=16\), got shape"),
        (mx.zeros((E,)), ValueError, r"3-D .* got shape \(16,\)"),
        (mx.zeros((2, 0, E)), ValueError, r"B, T >= 1, got shape \(2, 0, 16\)"),
        (mx.zeros((0, 5, E)), ValueError, r"B, T >= 1"),
        (mx.zeros((2, 5, E), mx.int32), TypeError, r"floating point .* not embed token ids.*int32"),
        (mx.zeros((2, 5, E), mx.bool_), TypeError, r"floating point"),
        (mx.zeros((2, 5, E), mx.complex64), TypeError, r"floating point"),
        ([[0.0] * E], TypeError, r"x must be an mx.array \(B, T, embed_size\), got list"),
    ],
)
def test_bad_inputs_raise_naming_embed_size_and_the_shape_passed(model, x, error, match):
    with pytest.raises(error, match=match) as raised:
        model(x)
    assert not mlx_internals(str(raised.value))


def test_a_two_dimensional_input_points_at_step(model):
    with pytest.raises(ValueError, match=r"for one token use step\(x_t\)"):
        model(mx.zeros((8, E)))


@pytest.mark.parametrize(
    ("x_t", "match"),
    [
        (mx.zeros((2, 10)), r"x_t has 10 features .* embed_size=16"),
        (mx.zeros((2, 1, E)), r"x_t must be 2-D \(B, embed_size=16\), got shape \(2, 1, 16\)"),
    ],
)
def test_step_checks_its_token_the_same_way(model, x_t, match):
    with pytest.raises(ValueError, match=match):
        model.step(x_t)


def test_a_cache_of_the_wrong_length_is_refused_naming_make_cache(model):
    with pytest.raises(ValueError, match=r"cache must be a list of 3 layer caches .*got list of 2"):
        model(mx.zeros((1, 2, E)), model.make_cache(1)[:2])


@pytest.mark.parametrize("layer", EVERY_LAYER)
def test_every_stack_checks_the_width_before_its_first_layer_runs(layer):
    stack = HybridBuilder.build([layer], 5, 16, rwkv_head_size=8, liquid_features=4)
    with pytest.raises(ValueError, match=r"x has 6 features .* embed_size=5"):
        stack(mx.zeros((1, 3, 6)))
    y, _ = stack(mx.zeros((1, 3, 5)))  # the width it was built for runs
    assert y.shape == (1, 3, 16)


@pytest.mark.parametrize(
    "x",
    [
        np.linspace(-1, 1, 2 * 3 * E, dtype=np.float32).reshape(2, 3, E),
        mx.linspace(-1, 1, 2 * 3 * E).reshape(2, 3, E).astype(mx.float16),
        mx.linspace(-1, 1, 2 * 3 * E).reshape(2, 3, E).astype(mx.bfloat16),
    ],
    ids=["numpy", "float16", "bfloat16"],
)
def test_floating_inputs_of_any_precision_and_numpy_arrays_are_accepted(model, x):
    reference = mx.array(np.asarray(x, dtype=np.float32)) if isinstance(x, np.ndarray) else x
    expected, _ = model(reference.astype(mx.float32))
    y, _ = model(x)
    assert y.dtype == mx.float32
    np.testing.assert_allclose(np.array(y), np.array(expected), atol=1e-5)


def test_the_conv_transformer_encoder_speaks_its_own_argument_names():
    with pytest.raises(ValueError, match=r"d_model \(8\) must be divisible by num_heads \(3\)"):
        ConvTransformerEncoder(3, d_model=8, num_heads=3)
    with pytest.raises(ValueError, match=r"ffn_hidden must be >= 1") as raised:
        ConvTransformerEncoder(3, d_model=8, num_heads=2, ffn_hidden=0)
    assert "ffn_hidden_size" not in str(raised.value)
    with pytest.raises(TypeError, match=r"x must be floating point"):
        ConvTransformerEncoder(3, d_model=8, num_heads=2)(mx.zeros((1, 4, 3), mx.int32))
