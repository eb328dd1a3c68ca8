"""GLA and RWKV-6 layers: the chunked form vs a plain float64 loop, steps, chunks, causality."""

import math

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from training import train

from ncps_mlx.hybrid.layers.gla import GatedLinearAttention
from ncps_mlx.hybrid.layers.rwkv import RWKVBlock
from ncps_mlx.hybrid.layers.wired_linear import WiredLinear
from ncps_mlx.wirings import Random

D = 16


def weights(linear):
    """``(W, b)`` of a WiredLinear as float64 numpy (``b`` zero when it has none)."""
    w = np.array(linear.effective_weight(), np.float64)
    b = np.array(linear.bias, np.float64) if "bias" in linear else np.zeros(w.shape[0])
    return w, b


def apply(linear, x):
    w, b = weights(linear)
    return x @ w.T + b


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gla_reference(layer, x, state=None):
    """GLA one token at a time: ``S = diag(α) S + kᵀv``, ``o = q S`` (``α = σ(z)^{1/τ}``)."""
    x = np.array(x, np.float64)
    batch, length, _ = x.shape
    heads, dk = layer.num_heads, layer.head_dim
    s = np.zeros((batch, heads, dk, dk)) if state is None else np.array(state, np.float64)
    ys = []
    for t in range(length):
        xt = x[:, t]
        q = apply(layer.q_proj, xt).reshape(batch, heads, dk) / math.sqrt(dk)
        k = apply(layer.k_proj, xt).reshape(batch, heads, dk)
        v = apply(layer.v_proj, xt).reshape(batch, heads, dk)
        z = apply(layer.alpha_up, apply(layer.alpha_down, xt)).reshape(batch, heads, dk)
        alpha = sigmoid(z) ** (1.0 / layer.gate_temperature)
        s = alpha[..., :, None] * s + k[..., :, None] * v[..., None, :]
        o = np.einsum("bhk,bhkv->bhv", q, s)
        o = o / np.sqrt((o**2).mean(-1, keepdims=True) + 1e-6) * np.array(layer.norm_weight)
        gate = apply(layer.g_proj, xt)
        ys.append(apply(layer.out_proj, gate * sigmoid(gate) * o.reshape(batch, -1)))
    return np.stack(ys, axis=1), s


def layer_norm(x, weight, bias, eps):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * weight + bias


def rwkv_reference(layer, x):
    """RWKV-6 one token at a time: ``o = r (S + diag(u) kᵀv)``, then ``S = diag(w) S + kᵀv``."""
    x = np.array(x, np.float64)
    batch, length, d = x.shape
    heads, size = layer.num_heads, layer.head_size
    mix, cmix = np.array(layer.time_mix, np.float64), np.array(layer.channel_mix, np.float64)
    u, base = np.array(layer.bonus, np.float64), np.array(layer.decay_base, np.float64)
    norm = layer.channel_norm
    s = np.zeros((batch, heads, size, size))
    x_prev, h_prev, ys = np.zeros((batch, d)), np.zeros((batch, d)), []
    for t in range(length):
        xt = x[:, t]
        delta = x_prev - xt
        low = np.tanh(apply(layer.mix_down, xt + delta * np.array(layer.mix_base)))
        low = np.split(low, 5, axis=-1)  # ddlerp: r, k, v, g, w
        parts = zip(mix, layer.mix_up, low, strict=True)
        xr, xk, xv, xg, xw = (xt + delta * (m + apply(up, z)) for m, up, z in parts)
        r, k, v = (
            apply(p, z).reshape(batch, heads, size)
            for p, z in ((layer.receptance, xr), (layer.key, xk), (layer.value, xv))
        )
        w = np.exp(-np.exp(base + apply(layer.decay_up, np.tanh(apply(layer.decay_down, xw)))))
        kv = k[..., :, None] * v[..., None, :]
        o = np.einsum("bhk,bhkv->bhv", r, s + u[..., None] * kv)
        s = w.reshape(batch, heads, size)[..., None] * s + kv
        o = layer_norm(o, 1.0, 0.0, 64e-5).reshape(batch, d)
        o = o * np.array(layer.norm_weight) + np.array(layer.norm_bias)
        gate = apply(layer.gate, xg)
        a = apply(layer.output, o * gate * sigmoid(gate))
        h = layer_norm(xt + a, np.array(norm.weight), np.array(norm.bias), norm.eps)
        hk, hr = (h + m * (h_prev - h) for m in cmix)
        c = sigmoid(apply(layer.channel_receptance, hr)) * apply(
            layer.channel_value, np.maximum(apply(layer.channel_key, hk), 0.0) ** 2
        )
        ys.append(a + c)
        x_prev, h_prev = xt, h
    return np.stack(ys, axis=1), s


def make_gla(chunk_size=8, wiring=None):
    return GatedLinearAttention(D, num_heads=4, chunk_size=chunk_size, wiring=wiring)


def make_rwkv(chunk_size=8, wiring=None):
    return RWKVBlock(D, head_size=4, chunk_size=chunk_size, wiring=wiring, decay_rank=8, mix_rank=4)


LAYERS = {"gla": (make_gla, gla_reference), "rwkv": (make_rwkv, rwkv_reference)}


def cache_arrays(cache):
    return [cache] if isinstance(cache, mx.array) else list(cache)


def final_state(cache):
    return cache if isinstance(cache, mx.array) else cache.state


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("length", [1, 5, 64, 130])
@pytest.mark.parametrize("chunk_size", [8, 64, 13])
def test_chunked_call_equals_the_sequential_reference(name, length, chunk_size):
    make, reference = LAYERS[name]
    mx.random.seed(length + chunk_size)
    layer = make(chunk_size)
    x = mx.random.normal((2, length, D))
    y, cache = layer(x)
    expected_y, expected_state = reference(layer, x)
    np.testing.assert_allclose(np.array(y), expected_y, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(np.array(final_state(cache)), expected_state, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", LAYERS)
def test_steps_equal_the_whole_sequence(name):
    mx.random.seed(3)
    layer = LAYERS[name][0](chunk_size=4)
    x = mx.random.normal((3, 11, D))
    whole, whole_cache = layer(x)
    cache, steps = layer.make_cache(3), []
    for t in range(11):
        y_t, cache = layer.step(x[:, t], cache)
        steps.append(y_t)
    np.testing.assert_allclose(np.array(mx.stack(steps, axis=1)), np.array(whole), atol=1e-5)
    for got, want in zip(cache_arrays(cache), cache_arrays(whole_cache), strict=True):
        np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-5)


@pytest.mark.parametrize("name", LAYERS)
def test_pieces_with_the_cache_equal_the_whole_call(name):
    mx.random.seed(4)
    layer = LAYERS[name][0](chunk_size=6)
    x = mx.random.normal((2, 30, D))
    whole, _ = layer(x)
    cache, pieces, start = None, [], 0
    for size in (5, 1, 13, 7, 4):
        y, cache = layer(x[:, start : start + size], cache)
        pieces.append(y)
        start += size
    np.testing.assert_allclose(np.array(mx.concatenate(pieces, 1)), np.array(whole), atol=1e-5)


@pytest.mark.parametrize("name", LAYERS)
def test_outputs_do_not_depend_on_future_inputs(name):
    mx.random.seed(5)
    layer = LAYERS[name][0](chunk_size=8)
    x = mx.random.normal((1, 20, D))
    changed = mx.concatenate([x[:, :12], x[:, 12:] + 1.0], axis=1)
    y, y_changed = np.array(layer(x)[0]), np.array(layer(changed)[0])
    np.testing.assert_array_equal(y[:, :12], y_changed[:, :12])
    assert np.abs(y[:, 12:] - y_changed[:, 12:]).min(axis=-1).max() > 0


def strengthen_decay(layer):
    """Make every step's log-decay about -20 (a chunk of 64 decays by e^-1280)."""
    if isinstance(layer, GatedLinearAttention):
        layer.alpha_up.bias = mx.full(layer.alpha_up.bias.shape, -320.0)  # log α ≈ -20
    else:
        layer.decay_base = mx.full(layer.decay_base.shape, 3.0)  # log w = -e^3 ≈ -20


@pytest.mark.parametrize("name", LAYERS)
def test_strong_decays_do_not_overflow_the_chunked_form(name):
    mx.random.seed(6)
    make, reference = LAYERS[name]
    layer = make(chunk_size=64)
    strengthen_decay(layer)
    x = mx.random.normal((1, 64, D))
    y, cache = layer(x)
    expected_y, expected_state = reference(layer, x)
    assert np.isfinite(np.array(y)).all()
    np.testing.assert_allclose(np.array(y), expected_y, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(np.array(final_state(cache)), expected_state, atol=1e-5)


def wired_linears(layer):
    return [m for _, m in layer.named_modules() if isinstance(m, WiredLinear)]


@pytest.mark.parametrize("name", LAYERS)
def test_a_wiring_masks_every_projection_and_masked_weights_stay_zero(name):
    mx.random.seed(7)
    make, reference = LAYERS[name]
    layer = make(wiring=Random(D, sparsity_level=0.6, random_seed=3))
    linears = wired_linears(layer)
    assert len(linears) >= 6 and all(0 < m.density < 1 for m in linears)
    x = mx.random.normal((2, 9, D))
    optimizer = optim.Adam(learning_rate=1e-2)
    grad = nn.value_and_grad(layer, lambda model: mx.square(model(x)[0] - 1.0).mean())
    for _ in range(2):
        _, grads = grad(layer)
        optimizer.update(layer, grads)
    mx.eval(layer.parameters())
    for m in linears:
        off = np.array(m.weight)[np.array(m._mask) == 0]
        assert off.size and np.all(off == 0)
    np.testing.assert_allclose(np.array(layer(x)[0]), reference(layer, x)[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", LAYERS)
def test_the_layer_learns_a_delayed_copy(name):
    mx.random.seed(8)
    layer = LAYERS[name][0](chunk_size=8)
    x = mx.random.normal((8, 24, D))
    target = mx.concatenate([mx.zeros((8, 2, D)), x[:, :-2]], axis=1)  # x two steps back
    losses = train(layer, lambda m: mx.square(m(x)[0] - target).mean(), 80, 1e-2)
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize(
    "make, names",
    [
        (lambda: GatedLinearAttention(10, num_heads=4), ["d_model", "num_heads"]),
        (lambda: GatedLinearAttention(D, chunk_size=0), ["chunk_size"]),
        (lambda: GatedLinearAttention(D, gate_temperature=0), ["gate_temperature"]),
        (lambda: RWKVBlock(10, head_size=4), ["d_model", "head_size"]),
        (lambda: RWKVBlock(D, head_size=4, chunk_size=0), ["chunk_size"]),
        (lambda: RWKVBlock(D, head_size=0), ["head_size"]),
        (lambda: RWKVBlock(D, head_size=4, mix_rank=0), ["mix_rank"]),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(make, names):
    with pytest.raises(ValueError) as error:
        make()
    assert all(name in str(error.value) for name in names)


def test_unbounded_log_decays_are_clamped_so_chunked_and_step_forms_agree():
    from ncps_mlx.hybrid.layers.gla import (
        MIN_LOG_DECAY,
        decay_attention_chunked,
        decay_attention_step,
    )

    mx.random.seed(7)
    b, h, t, k = 2, 2, 40, 4
    q, key, v = (mx.random.normal((b, h, t, k)) for _ in range(3))
    log_decay = -mx.exp(mx.random.uniform(0, 21, (b, h, t, k)))  # down to about -1.3e9
    state = mx.zeros((b, h, k, k))
    out, final = decay_attention_chunked(q, key, v, log_decay, state, 16, bonus=mx.ones((h, k)))
    steps, s = [], state
    for i in range(t):
        o, s = decay_attention_step(
            q[:, :, i], key[:, :, i], v[:, :, i], log_decay[:, :, i], s, bonus=mx.ones((h, k))
        )
        steps.append(o)
    assert MIN_LOG_DECAY == -30.0
    assert bool(mx.all(mx.isfinite(out)).item())
    np.testing.assert_allclose(np.array(out), np.array(mx.stack(steps, axis=2)), atol=1e-4)
    np.testing.assert_allclose(np.array(final), np.array(s), atol=1e-4)


def decay_reference(q, k, v, log_decay, bonus=None):
    """The decayed recurrence one step at a time in float64 (``bonus`` ``(H, K)``: RWKV-6)."""
    q, k, v, log_decay = (np.array(a, np.float64) for a in (q, k, v, log_decay))
    state = np.zeros((*q.shape[:2], q.shape[-1], v.shape[-1]))
    outputs = []
    for t in range(q.shape[2]):
        kv = k[:, :, t, :, None] * v[:, :, t, None, :]
        decayed = np.exp(np.maximum(log_decay[:, :, t], -30.0))[..., None] * state + kv
        read = decayed if bonus is None else state + np.array(bonus, np.float64)[..., None] * kv
        outputs.append(np.einsum("bhk,bhkv->bhv", q[:, :, t], read))
        state = decayed
    return np.stack(outputs, axis=2), state


@pytest.mark.parametrize("bonus", [None, 1.0], ids=["gla", "rwkv"])
def test_weak_decays_after_strong_ones_keep_float32_precision_in_a_chunk(bonus):
    """32 steps of log-decay -29.7 then 32 of -1e-3 in one chunk of 64: the cumulative log-decay
    reaches -950, where a float32 step is 6e-5, so a relative decay taken as a difference of
    cumulative sums would be off by ~1e-3 (relative) after 32 weak steps; summed directly it
    keeps float32 precision. The output is ~30, so 1e-5 is about 2^-24 times the 64 steps."""
    from ncps_mlx.hybrid.layers.gla import decay_attention_chunked

    mx.random.seed(9)
    b, h, t, k = 2, 2, 64, 4
    q, key, v = (mx.random.normal((b, h, t, k)) for _ in range(3))
    strong, weak = mx.full((b, h, t // 2, k), -29.7), mx.full((b, h, t // 2, k), -1e-3)
    log_decay = mx.concatenate([strong, weak], axis=2)
    bonus = None if bonus is None else mx.full((h, k), bonus)
    out, final = decay_attention_chunked(q, key, v, log_decay, mx.zeros((b, h, k, k)), 64, bonus)
    expected, expected_final = decay_reference(q, key, v, log_decay, bonus)
    np.testing.assert_allclose(np.array(out), expected, atol=1e-5, rtol=1e-6)
    np.testing.assert_allclose(np.array(final), expected_final, atol=1e-5, rtol=1e-6)
