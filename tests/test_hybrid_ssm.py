"""MambaBlock: the chunked scan, the recurrent step and chunked streaming against a plain
sequential numpy reference; causality, wiring masks, gradients, training, argument checks.

Tolerance: float32 layer vs a float64 reference, ``atol=1e-5, rtol=1e-4``.
"""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from training import train

from ncps_mlx.hybrid.layers.ssm import MambaBlock, MambaCache
from ncps_mlx.wirings import Wiring

D = 6
TOL = {"atol": 1e-5, "rtol": 1e-4}


def lively(block, seed=0):
    """Give Δ a wide range (≈0.3 to 4) so the state, decays and chunk carries all matter."""
    mx.random.seed(seed)
    block.dt_proj.bias = mx.random.uniform(-1.0, 4.0, block.dt_proj.bias.shape)
    return block


def np_of(array):
    return np.array(array, dtype=np.float64)


def reference(block, u):
    """The Mamba recurrence, one time step at a time, in float64 from the block's weights."""
    w_in = np_of(block.in_proj.effective_weight())
    w_x = np_of(block.x_proj.effective_weight())
    w_dt, b_dt = np_of(block.dt_proj.effective_weight()), np_of(block.dt_proj.bias)
    w_out = np_of(block.out_proj.effective_weight())
    conv_w, conv_b = np_of(block.conv_weight), np_of(block.conv_bias)
    A, skip = -np.exp(np_of(block.A_log)), np_of(block.D)
    E, N, R, W = block.inner_size, block.state_size, block.dt_rank, block.conv_width

    def silu(v):
        return v / (1.0 + np.exp(-v))

    u = np_of(u)
    batch, steps, _ = u.shape
    x, z = np.split(u @ w_in.T, 2, axis=-1)
    x = np.concatenate([np.zeros((batch, W - 1, E)), x], axis=1)
    h = np.zeros((batch, E, N))
    out = np.zeros((batch, steps, u.shape[-1]))
    for t in range(steps):
        xc = silu(conv_b + sum(conv_w[:, k] * x[:, t + k] for k in range(W)))
        proj = xc @ w_x.T
        low, B, C = proj[:, :R], proj[:, R : R + N], proj[:, R + N :]
        delta = np.logaddexp(0.0, low @ w_dt.T + b_dt)
        for b in range(batch):
            for e in range(E):
                h[b, e] = np.exp(delta[b, e] * A[e]) * h[b, e] + delta[b, e] * xc[b, e] * B[b]
        y = np.einsum("ben,bn->be", h, C) + skip * xc
        out[:, t] = (y * silu(z[:, t])) @ w_out.T
    return out, h


@pytest.mark.parametrize(
    "steps, batch, chunk_size",
    [(1, 1, 64), (7, 3, 64), (64, 2, 64), (130, 2, 64), (130, 1, 16), (7, 2, 3)],
)
def test_whole_sequence_equals_the_sequential_reference(steps, batch, chunk_size):
    mx.random.seed(steps)
    block = lively(MambaBlock(D, state_size=5, conv_width=3, dt_rank=2, chunk_size=chunk_size))
    u = mx.random.normal((batch, steps, D))
    y, cache = block(u)
    expected, h = reference(block, u)
    np.testing.assert_allclose(np.array(y), expected, **TOL)
    np.testing.assert_allclose(np.array(cache.ssm), h, **TOL)


def test_initialisation_follows_mamba():
    block = MambaBlock(D, state_size=4, expand_factor=3)
    np.testing.assert_allclose(np.array(-mx.exp(block.A_log)), -np.tile([1, 2, 3, 4], (18, 1)))
    np.testing.assert_array_equal(np.array(block.D), np.ones(18))
    dt = np.array(nn.softplus(block.dt_proj.bias))
    assert dt.shape == (18,) and dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    assert block.dt_rank == 1 and MambaBlock(40).dt_rank == 3  # ceil(D / 16)


@pytest.mark.parametrize("conv_width", [1, 4])
def test_stepping_equals_the_whole_sequence(conv_width):
    mx.random.seed(3)
    block = lively(MambaBlock(D, state_size=4, conv_width=conv_width, chunk_size=8))
    u = mx.random.normal((2, 21, D))
    whole, final = block(u)
    cache = block.make_cache(2)
    outputs = []
    for t in range(u.shape[1]):
        y_t, cache = block.step(u[:, t], cache)
        outputs.append(y_t)
    np.testing.assert_allclose(np.array(mx.stack(outputs, axis=1)), np.array(whole), **TOL)
    np.testing.assert_allclose(np.array(cache.ssm), np.array(final.ssm), **TOL)
    # The conv cache holds in_proj(u) of the last steps, computed from a (B, D) row per step and
    # from the (B, T, D) block at once: a GPU GEMM may sum the D = 6 products of the two shapes
    # in different orders, a difference of at most D 2^-24 sum|w u| (about 4e-7 here).
    np.testing.assert_allclose(np.array(cache.conv), np.array(final.conv), rtol=1e-6, atol=1e-6)


def test_chunks_passing_the_cache_equal_the_whole_sequence():
    mx.random.seed(4)
    block = lively(MambaBlock(D, state_size=4, chunk_size=8))
    u = mx.random.normal((3, 70, D))
    whole, final = block(u)
    cache, outputs, start = None, [], 0
    for length in [1, 2, 17, 8, 30, 12]:
        y, cache = block(u[:, start : start + length], cache)
        outputs.append(y)
        start += length
    assert start == 70 and isinstance(cache, MambaCache)
    np.testing.assert_allclose(np.array(mx.concatenate(outputs, axis=1)), np.array(whole), **TOL)
    np.testing.assert_allclose(np.array(cache.ssm), np.array(final.ssm), **TOL)
    np.testing.assert_allclose(np.array(cache.conv), np.array(final.conv), **TOL)


def test_make_cache_is_empty_state_of_the_documented_shapes():
    block = MambaBlock(D, state_size=5, expand_factor=2, conv_width=4)
    cache = block.make_cache(3)
    assert cache.conv.shape == (3, 3, 12) and cache.ssm.shape == (3, 12, 5)
    assert not np.array(cache.conv).any() and not np.array(cache.ssm).any()


def test_outputs_up_to_k_do_not_depend_on_later_inputs():
    mx.random.seed(5)
    block = lively(MambaBlock(D, chunk_size=4))
    u = mx.random.normal((2, 19, D))
    k = 9
    changed = mx.concatenate([u[:, : k + 1], 10 * mx.random.normal((2, 9, D))], axis=1)
    y, _ = block(u)
    y_changed, _ = block(changed)
    np.testing.assert_array_equal(np.array(y[:, : k + 1]), np.array(y_changed[:, : k + 1]))
    assert np.abs(np.array(y[:, k + 1 :] - y_changed[:, k + 1 :])).min() > 0


def two_heads():
    """Two neurons, each connected only to itself: block-diagonal projections."""
    wiring = Wiring(2)
    wiring.add_synapses([0, 1], [0, 1], [1, 1])
    return wiring


def test_a_wiring_masks_the_in_and_out_projections_and_their_gradients():
    mx.random.seed(6)
    block = MambaBlock(4, state_size=3, wiring=two_heads())
    in_mask = np.kron(np.eye(2), np.ones((8, 2)))  # (2E, D) = (16, 4), block-diagonal
    out_mask = np.kron(np.eye(2), np.ones((2, 4)))  # (D, E) = (4, 8)
    u = mx.random.normal((2, 5, 4))

    def loss(model):
        return (model(u)[0] ** 2).sum()

    grads = nn.value_and_grad(block, loss)(block)[1]
    for name, mask in [("in_proj", in_mask), ("out_proj", out_mask)]:
        weight, grad = np.array(block[name].weight), np.array(grads[name]["weight"])
        assert weight.shape == mask.shape
        assert not weight[mask == 0].any() and weight[mask == 1].all()
        assert not grad[mask == 0].any() and np.abs(grad[mask == 1]).max() > 0
    assert block.x_proj.density == block.dt_proj.density == 1.0


def test_gradients_are_finite_and_the_block_learns_a_delayed_copy():
    mx.random.seed(7)
    block = MambaBlock(4, state_size=8, chunk_size=8)
    u = mx.random.normal((8, 24, 4))
    target = mx.concatenate([mx.zeros((8, 3, 4)), u[:, :-3]], axis=1)  # u_{t-3}

    def loss(model):
        return ((model(u)[0] - target) ** 2).mean()

    grads = nn.value_and_grad(block, loss)(block)[1]
    for name, grad in nn.utils.tree_flatten(grads):
        assert np.isfinite(np.array(grad)).all(), name
    losses = train(block, loss, steps=80, learning_rate=2e-2)
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "name", ["d_model", "state_size", "expand_factor", "conv_width", "dt_rank", "chunk_size"]
)
@pytest.mark.parametrize("value", [0, -2])
def test_non_positive_sizes_are_rejected_by_name(name, value):
    options = {"d_model": D, name: value}
    with pytest.raises(ValueError, match=name):
        MambaBlock(**options)


def test_inputs_of_the_wrong_width_or_rank_are_rejected():
    block = MambaBlock(D)
    with pytest.raises(ValueError, match="d_model"):
        block(mx.zeros((2, 5, D + 1)))
    with pytest.raises(ValueError, match="d_model"):
        block(mx.zeros((5, D)))
    with pytest.raises(ValueError, match="d_model"):
        block.step(mx.zeros((2, D - 1)), block.make_cache(2))
    with pytest.raises(ValueError, match="cache"):
        block(mx.zeros((2, 5, D)), block.make_cache(3))
    with pytest.raises(TypeError, match="wiring"):
        MambaBlock(D, wiring="dense")
