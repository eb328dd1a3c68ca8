"""Attention, feed-forward, causal conv and KAN layers: references, streaming, causality, wiring."""

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from training import train

from ncps_mlx.hybrid import WiredLinear
from ncps_mlx.hybrid.layers.conv import CausalConvBlock
from ncps_mlx.hybrid.layers.ffn import FeedForward
from ncps_mlx.hybrid.layers.kan import KANLayer, bspline_bases, uniform_knots
from ncps_mlx.hybrid.layers.self_attention import ROPE_MAX_ROWS, CausalSelfAttention
from ncps_mlx.wirings import Random

D = 8
LAYERS = {
    "attention": lambda wiring=None: CausalSelfAttention(D, 2, wiring=wiring),
    "windowed_attention": lambda wiring=None: CausalSelfAttention(D, 2, 6, 3, wiring=wiring),
    "ffn": lambda wiring=None: FeedForward(D, 16, wiring=wiring),
    "conv": lambda wiring=None: CausalConvBlock(D, 3, 2, wiring=wiring),
    "kan": lambda wiring=None: KANLayer(D, 4, 3, wiring=wiring),
}


def numpy_of(linear):
    """``(W, b)`` of a WiredLinear as float64 numpy (masked weight)."""
    bias = np.array(linear.bias, np.float64) if "bias" in linear else 0.0
    return np.array(linear.effective_weight(), np.float64), bias


def apply(linear, x):
    weight, bias = numpy_of(linear)
    return x @ weight.T + bias


# ---- plain references ---------------------------------------------------------------------------


def rope_reference(x, position, base=10000.0):
    """Rotate a ``(d,)`` vector: pairs ``(i, i + d/2)`` by ``position * base^(-2i/d)``."""
    half = x.shape[-1] // 2
    angle = position * base ** (-2.0 * np.arange(half) / x.shape[-1])
    first, second = x[:half], x[half:]
    cos, sin = np.cos(angle), np.sin(angle)
    return np.concatenate([first * cos - second * sin, first * sin + second * cos])


def attention_reference(layer, x):
    """Per-position, per-head loops with a numpy softmax over the allowed previous positions."""
    x = np.array(x, np.float64)
    batch, length, _ = x.shape
    heads, width = layer.num_heads, layer.head_dim
    q, k, v = (apply(p, x) for p in (layer.q_proj, layer.k_proj, layer.v_proj))
    window = layer.window_size or length
    out = np.zeros((batch, length, heads * width))
    for b in range(batch):
        for t in range(length):
            for h in range(heads):
                cols = slice(h * width, (h + 1) * width)
                rotate = rope_reference if layer.rope else (lambda vec, _: vec)
                query = rotate(q[b, t, cols], t)
                sources = range(max(0, t - window + 1), t + 1)
                scores = np.array([query @ rotate(k[b, s, cols], s) for s in sources])
                weights = np.exp(scores / math.sqrt(width) - scores.max() / math.sqrt(width))
                weights /= weights.sum()
                out[b, t, cols] = sum(
                    w * v[b, s, cols] for w, s in zip(weights, sources, strict=True)
                )
    return apply(layer.out_proj, out)


def gelu_reference(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def conv_reference(layer, x):
    """Explicit loops over time and kernel taps, zeros before the start."""
    x = np.array(x, np.float64)
    projected = apply(layer.in_proj, x)
    u, gate = projected[..., : layer.inner], projected[..., layer.inner :]
    weight = np.array(layer.conv_weight, np.float64)
    kernel = layer.kernel_size
    conv = np.zeros_like(u) + np.array(layer.conv_bias, np.float64)
    for t in range(x.shape[1]):
        for j in range(kernel):
            source = t - kernel + 1 + j
            if source >= 0:
                conv[:, t] += weight[:, j] * u[:, source]
    return apply(layer.out_proj, conv / (1.0 + np.exp(-gate)))


def cox_de_boor(x, j, p, knots):
    """The scalar textbook recursion for ``B_j^p(x)``."""
    if p == 0:
        return 1.0 if knots[j] <= x < knots[j + 1] else 0.0
    left = (x - knots[j]) / (knots[j + p] - knots[j]) * cox_de_boor(x, j, p - 1, knots)
    right = (knots[j + p + 1] - x) / (knots[j + p + 1] - knots[j + 1])
    return left + right * cox_de_boor(x, j + 1, p - 1, knots)


def kan_reference(layer, x):
    """``y_o = b_o + sum_i [wb_oi silu(x_i) + sum_c w_coi B_c(x_i)]``, one edge at a time."""
    x = np.array(x, np.float64).reshape(-1, D)
    knots = uniform_knots(layer.grid_size, layer.spline_order, *layer.grid_range)
    count = layer.grid_size + layer.spline_order
    base_w, base_b = numpy_of(layer.base)
    spline_w = np.stack([numpy_of(s)[0] for s in layer.splines])
    out = np.tile(base_b, (len(x), 1))
    for n, row in enumerate(x):
        for i, value in enumerate(row):
            bases = [cox_de_boor(value, c, layer.spline_order, knots) for c in range(count)]
            silu = value / (1.0 + math.exp(-value))
            out[n] += base_w[:, i] * silu + spline_w[:, :, i].T @ np.array(bases)
    return out


# ---- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize("window,rope", [(None, True), (3, True), (None, False), (1, True)])
def test_attention_equals_per_position_softmax(window, rope):
    mx.random.seed(0)
    layer = CausalSelfAttention(D, 2, window_size=window, rope=rope)
    x = mx.random.normal((2, 9, D))
    y, cache = layer(x)
    np.testing.assert_allclose(np.array(y), attention_reference(layer, x), atol=1e-5)
    assert cache.offset == 9


def test_attention_with_head_dim_wider_than_d_over_heads():
    mx.random.seed(1)
    layer = CausalSelfAttention(D, 3, head_dim=6, window_size=4)
    x = mx.random.normal((1, 7, D))
    np.testing.assert_allclose(np.array(layer(x)[0]), attention_reference(layer, x), atol=1e-5)


@pytest.mark.parametrize("heads", [2, 8])
def test_a_batch_too_wide_for_one_cuda_rope_launch_is_rotated_in_slices(heads, monkeypatch):
    """MLX's CUDA RoPE kernel cannot launch for ``batch * ceil(heads / 4) >= 128`` at one
    position (its thread blocks would be 128+ threads deep where CUDA allows 64)."""
    rope, depths = mx.fast.rope, []

    def recording_rope(x, *args, **kwargs):
        depths.append(x.shape[0] * -(-x.shape[1] // 4))
        return rope(x, *args, **kwargs)

    monkeypatch.setattr(mx.fast, "rope", recording_rope)
    mx.random.seed(2)
    layer = CausalSelfAttention(D, heads, head_dim=4)
    x = mx.random.normal((150, 2, D))
    y, _ = layer(x)
    step, _ = layer(x[:, 1:], layer(x[:, :1])[1])  # the second position, from a cache
    assert max(depths) <= ROPE_MAX_ROWS and len(depths) > 2
    np.testing.assert_allclose(np.array(y), attention_reference(layer, x), atol=1e-5)
    np.testing.assert_allclose(np.array(step), np.array(y[:, 1:]), atol=1e-5)


def test_feed_forward_is_dense_gelu_dense():
    mx.random.seed(2)
    layer = FeedForward(D)
    x = mx.random.normal((2, 5, D))
    expected = apply(layer.down, gelu_reference(apply(layer.up, np.array(x, np.float64))))
    y, cache = layer(x)
    assert layer.hidden == 4 * D and cache is None
    np.testing.assert_allclose(np.array(y), expected, atol=1e-5)


@pytest.mark.parametrize("kernel", [1, 2, 4])
def test_conv_block_equals_explicit_loops(kernel):
    mx.random.seed(3)
    layer = CausalConvBlock(D, kernel, 2)
    layer.conv_bias = mx.random.normal(layer.conv_bias.shape)
    x = mx.random.normal((2, 7, D))
    y, cache = layer(x)
    np.testing.assert_allclose(np.array(y), conv_reference(layer, x), atol=1e-5)
    assert cache.shape == (2, kernel - 1, 2 * D)


@pytest.mark.parametrize("grid,order", [(5, 3), (3, 1), (4, 0), (7, 2)])
def test_bspline_bases_equal_scalar_cox_de_boor(grid, order):
    knots = uniform_knots(grid, order, -1.5, 2.0)
    points = np.random.default_rng(grid).uniform(knots[0] - 0.2, knots[-1] + 0.2, 300)
    got = np.array(bspline_bases(mx.array(points, mx.float32), mx.array(knots, mx.float32), order))
    expected = [[cox_de_boor(x, c, order, knots) for c in range(grid + order)] for x in points]
    np.testing.assert_allclose(got, np.array(expected), atol=1e-5)


@pytest.mark.parametrize("grid,order", [(5, 3), (2, 2), (8, 1)])
def test_bspline_bases_are_a_partition_of_unity_inside_the_grid(grid, order):
    knots = uniform_knots(grid, order, -1.0, 1.0)
    points = mx.array(np.linspace(-1.0, 1.0 - 1e-4, 501), mx.float32)
    bases = np.array(bspline_bases(points, mx.array(knots, mx.float32), order))
    assert bases.shape == (501, grid + order) and (bases >= 0).all()
    np.testing.assert_allclose(bases.sum(-1), 1.0, atol=1e-5)


def test_kan_layer_equals_per_edge_sum():
    mx.random.seed(4)
    layer = KANLayer(D, 5, 3)
    x = 1.4 * mx.random.normal((2, 3, D))  # some points fall outside the grid
    y, cache = layer(x)
    assert cache is None
    np.testing.assert_allclose(np.array(y).reshape(-1, D), kan_reference(layer, x), atol=1e-5)


# ---- streaming and causality --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_steps_equal_the_whole_sequence(name):
    mx.random.seed(5)
    layer = LAYERS[name]()
    x = mx.random.normal((2, 11, D))
    whole, _ = layer(x)
    cache, steps = layer.make_cache(2), []
    for t in range(x.shape[1]):
        y_t, cache = layer.step(x[:, t], cache)
        steps.append(y_t)
    np.testing.assert_allclose(np.array(mx.stack(steps, 1)), np.array(whole), atol=1e-5)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_chunks_with_the_cache_equal_the_whole_sequence(name):
    mx.random.seed(6)
    layer = LAYERS[name]()
    x = mx.random.normal((2, 13, D))
    whole, _ = layer(x)
    cache, pieces = None, []
    for start, stop in [(0, 1), (1, 6), (6, 8), (8, 13)]:
        y, cache = layer(x[:, start:stop], cache)
        pieces.append(y)
    np.testing.assert_allclose(np.array(mx.concatenate(pieces, 1)), np.array(whole), atol=1e-5)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_outputs_do_not_depend_on_future_inputs(name):
    mx.random.seed(7)
    layer = LAYERS[name]()
    x = mx.random.normal((1, 10, D))
    changed = mx.concatenate([x[:, :6], x[:, 6:] + 5.0], axis=1)
    before, after = np.array(layer(x)[0]), np.array(layer(changed)[0])
    np.testing.assert_allclose(after[:, :6], before[:, :6], atol=1e-6)
    assert not np.allclose(after[:, 6:], before[:, 6:])


def test_windowed_attention_cache_stays_bounded_over_1000_steps():
    mx.random.seed(8)
    layer = CausalSelfAttention(D, 2, window_size=5)
    cache, x = layer.make_cache(1), mx.random.normal((1, 1000, D))
    for t in range(1000):
        y_t, cache = layer.step(x[:, t], cache)
        assert cache.keys.shape[2] <= 5 and cache.values.shape[2] <= 5
    assert cache.offset == 1000
    # RoPE scores depend only on relative positions, so the last window alone gives y_999
    expected = attention_reference(layer, x[:, 995:])[:, -1]
    np.testing.assert_allclose(np.array(y_t), expected, atol=1e-4)
    np.testing.assert_allclose(np.array(y_t), np.array(layer(x)[0][:, -1]), atol=1e-5)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_learns_a_causal_target(name):
    mx.random.seed(10)
    layer = LAYERS[name]()
    x = mx.random.normal((8, 12, D))
    target = mx.tanh(x[..., ::-1])  # per-token, so stateless layers can learn it too
    losses = train(layer, lambda m: nn.losses.mse_loss(m(x)[0], target), 80, 0.01)
    assert min(losses[-5:]) < losses[0] / 3


def test_bfloat16_inputs_keep_their_dtype_through_the_cache():
    for name in ("attention", "conv"):
        layer = LAYERS[name]()
        layer.set_dtype(mx.bfloat16)
        y, cache = layer(mx.random.normal((1, 4, D)).astype(mx.bfloat16))
        y_t, _ = layer.step(mx.zeros((1, D), mx.bfloat16), cache)
        assert y.dtype == y_t.dtype == mx.bfloat16


# ---- wiring -------------------------------------------------------------------------------------


def sparse_wiring():
    wiring = Random(D, sparsity_level=0.5, random_seed=3)
    wiring.build(D)
    return wiring


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_wired_projections_have_zero_masked_weights_and_gradients(name):
    mx.random.seed(9)
    layer = LAYERS[name](sparse_wiring())
    x, target = mx.random.normal((2, 6, D)), mx.random.normal((2, 6, D))
    grads = dict(
        tree_flatten(nn.value_and_grad(layer, lambda: nn.losses.mse_loss(layer(x)[0], target))()[1])
    )
    wired = [(n, m) for n, m in layer.named_modules() if isinstance(m, WiredLinear)]
    assert wired and all(m._mask is not None for _, m in wired)
    assert min(m.density for _, m in wired) < 1.0
    for module_name, module in wired:
        off = 1.0 - np.array(module._mask)
        assert not (np.array(module.weight) * off).any()
        assert not (np.array(grads[f"{module_name}.weight"]) * off).any()
    assert "_mask" not in str([k for k in grads])


# ---- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory,error",
    [
        (lambda: CausalSelfAttention(0), "d_model"),
        (lambda: CausalSelfAttention(D, 3), "num_heads"),
        (lambda: CausalSelfAttention(D, 2, head_dim=0), "head_dim"),
        (lambda: CausalSelfAttention(D, 2, head_dim=3), "head_dim"),
        (lambda: CausalSelfAttention(D, 2, window_size=0), "window_size"),
        (lambda: FeedForward(D, hidden=0), "hidden"),
        (lambda: CausalConvBlock(D, kernel_size=0), "kernel_size"),
        (lambda: CausalConvBlock(D, expand=0), "expand"),
        (lambda: KANLayer(D, grid_size=0), "grid_size"),
        (lambda: KANLayer(D, spline_order=-1), "spline_order"),
        (lambda: KANLayer(D, grid_range=(1.0, -1.0)), "grid_range"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(factory, error):
    with pytest.raises(ValueError, match=error):
        factory()
