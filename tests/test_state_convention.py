"""The state contract of ``ncps_mlx.streaming``, for every module that carries state over time.

``y, s = m(x)`` on a whole sequence equals two chunks, ``y1, s1 = m(x[:, :k], m.make_cache(B))``
then ``y2, s2 = m(x[:, k:], s1)`` (``y = [y1, y2]``, ``s = s2``); ``m(x)`` equals
``m(x, m.make_cache(B))``; ``m.make_cache(B, dtype)`` makes the state in ``dtype``.
"""

import dataclasses

import mlx.core as mx
import numpy as np
import pytest

from ncps_mlx import LTC, CfC
from ncps_mlx.hybrid import HybridBuilder
from ncps_mlx.wirings import AutoNCP

B, T, K = 2, 12, 7  # batch, steps, length of the first chunk
F, D = 3, 16  # features of the liquid models' inputs, width of the hybrid layers
OPTIONS = dict(
    mamba_state_size=4,
    attention_num_heads=2,
    attention_window_size=5,
    gla_num_heads=2,
    rwkv_head_size=8,
    conv_kernel_size=3,
    ffn_hidden_size=16,
    kan_grid_size=3,
    liquid_units=10,
    liquid_features=4,
)
LIQUID = {
    "cfc": lambda: CfC(F, 8, backbone_units=8),
    "cfc_autoncp": lambda: CfC(F, AutoNCP(10, 2, seed=1)),
    "ltc_mixed_memory": lambda: LTC(F, AutoNCP(8, 2, seed=2), ode_unfolds=3, mixed_memory=True),
}


def hybrid_layer(name):
    """The builder's layer ``name`` at width ``D``."""
    return lambda: HybridBuilder.build([name], D, D, **OPTIONS).layers[0]


MODELS = {
    **{f"liquid_{name}": (build, F) for name, build in LIQUID.items()},
    **{f"layer_{name}": (hybrid_layer(name), D) for name in HybridBuilder.layer_types()},
    "hybrid_model": (
        lambda: HybridBuilder.build(HybridBuilder.layer_types(), F, D, **OPTIONS),
        F,
    ),
}


def make(name):
    """``(model, x)``: the seeded model ``name`` and an input ``(B, T, features)`` for it."""
    build, features = MODELS[name]
    mx.random.seed(0)
    return build(), mx.random.normal((B, T, features), key=mx.random.key(1))


def leaves(state) -> list:
    """The leaves of a state tree (arrays, and ints such as an attention cache's offset)."""
    if state is None:
        return []
    if dataclasses.is_dataclass(state):
        state = [getattr(state, field.name) for field in dataclasses.fields(state)]
    if isinstance(state, list | tuple):
        return [leaf for part in state for leaf in leaves(part)]
    return [state]


def assert_same_state(actual, expected, atol):
    actual, expected = leaves(actual), leaves(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        if isinstance(e, mx.array):
            assert a.shape == e.shape
            np.testing.assert_allclose(np.array(a), np.array(e), atol=atol)
        else:
            assert a == e


@pytest.mark.parametrize("name", MODELS)
def test_two_chunks_give_the_whole_sequence_outputs_and_state(name):
    model, x = make(name)
    y, state = model(x)
    y1, s1 = model(x[:, :K], model.make_cache(B))
    y2, s2 = model(x[:, K:], s1)
    np.testing.assert_allclose(np.array(mx.concatenate([y1, y2], 1)), np.array(y), atol=1e-5)
    assert_same_state(s2, state, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_no_state_is_the_state_of_make_cache(name):
    model, x = make(name)
    y, state = model(x)
    y_cached, state_cached = model(x, model.make_cache(B))
    np.testing.assert_array_equal(np.array(y_cached), np.array(y))
    assert_same_state(state_cached, state, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_make_cache_makes_the_state_in_the_dtype_asked_for(name):
    model, _ = make(name)
    for dtype in (mx.float32, mx.float16):
        arrays = [a for a in leaves(model.make_cache(B, dtype)) if isinstance(a, mx.array)]
        assert all(a.dtype == dtype and a.shape[0] == B for a in arrays)
