"""Cells follow an AdaptiveWiring in place: masks/tables, kept and pruned parameters, training."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten
from training import train

from ncps_mlx import LTC, CfC
from ncps_mlx.wirings import AdaptiveWiring, AutoNCP, Random, Wiring

F = 3


def synapse_keys(wiring):
    src, dst, _ = wiring.synapses()
    return set((src.astype(np.int64) * wiring.units + dst).tolist())


def dense_parameter(model, name):
    return model.rnn_cell.to_ncps(name, getattr(model.rnn_cell, name))


@pytest.mark.parametrize("sparse", [True, False])
def test_ltc_refresh_keeps_kept_synapses_zeroes_pruned_ones_and_matches_a_fresh_model(sparse):
    mx.random.seed(0)
    wiring = AdaptiveWiring(
        Random(20, 2, sparsity_level=0.8, random_seed=3), prune_fraction=0.25, seed=5
    )
    model = LTC(F, wiring, sparse=sparse)
    before = {name: dense_parameter(model, name) for name in ("w", "mu", "sigma", "erev")}
    old_keys = synapse_keys(wiring)
    importance = np.abs(model.rnn_cell.synapse_values("w"))
    pruned_src, pruned_dst, grown_src, grown_dst = wiring.update_connectivity(importance)
    model.refresh_wiring()

    assert wiring.synapse_count == len(old_keys)
    w = dense_parameter(model, "w")
    assert np.all(w[pruned_src, pruned_dst] == 0)  # pruned synapses carry zero weight
    assert np.all(w[grown_src, grown_dst] > 0)  # grown ones start from ncps's init range
    kept = [divmod(k, 20) for k in synapse_keys(wiring) & old_keys]
    for name, value in before.items():
        now = dense_parameter(model, name)
        assert all(now[s, d] == value[s, d] for s, d in kept), name
    erev = dense_parameter(model, "erev")
    polarity = wiring.adjacency_matrix
    np.testing.assert_array_equal(erev[grown_src, grown_dst], polarity[grown_src, grown_dst])

    # An LTC built directly on the updated wiring, given the same parameters, computes the same.
    fresh = LTC(F, Wiring.from_config(wiring.get_config()), sparse=sparse)
    params = {
        k: model.rnn_cell.to_ncps(k.split(".")[-1], v) for k, v in tree_flatten(model.parameters())
    }
    fresh.update(
        tree_unflatten(
            [
                (k, mx.array(fresh.rnn_cell.from_ncps(k.split(".")[-1], v)))
                for k, v in params.items()
            ]
        )
    )
    x = mx.random.normal((2, 7, F))
    np.testing.assert_allclose(np.array(model(x)[0]), np.array(fresh(x)[0]), atol=1e-6)


def test_sparse_refresh_keeps_parameter_shapes_so_the_optimizer_state_stays_valid():
    mx.random.seed(1)
    wiring = AdaptiveWiring(
        Random(30, 2, sparsity_level=0.85, random_seed=2), prune_fraction=0.1, seed=3
    )
    model = LTC(F, wiring, sparse=True)
    shapes = {k: v.shape for k, v in tree_flatten(model.parameters())}
    for _ in range(3):
        wiring.update_connectivity(np.abs(model.rnn_cell.synapse_values("w")))
        model.refresh_wiring()
    assert {k: v.shape for k, v in tree_flatten(model.parameters())} == shapes


def test_wired_cfc_refresh_updates_the_layer_masks_from_the_wiring():
    mx.random.seed(2)
    wiring = AdaptiveWiring(AutoNCP(16, 2, seed=4), prune_fraction=0.3, seed=6)
    model = CfC(F, wiring)
    wiring.update_connectivity(np.random.default_rng(0).random(wiring.synapse_count))
    model.refresh_wiring()
    rebuilt = CfC(F, Wiring.from_config(wiring.get_config()))
    for ours, expected in zip(model.rnn_cell.layers, rebuilt.rnn_cell.layers, strict=True):
        np.testing.assert_array_equal(
            np.array(ours._sparsity_mask), np.array(expected._sparsity_mask)
        )


def sine_task():
    t = np.linspace(0, 6 * np.pi, 32, dtype=np.float32)
    phases = np.linspace(0, 2, 8, dtype=np.float32)[:, None]
    x = np.stack([np.sin(t + phases), np.cos(t + phases), np.sin(0.5 * t + phases)], axis=-1)
    y = np.sin(t + phases - 0.6)[..., None]
    return mx.array(x), mx.array(np.repeat(y, 2, axis=-1))


def train_with_rewiring(model, x, y, steps, adapt_every=None):
    def rewire(step):
        # Adapt during the first 60% of training, then let the final connectome settle (RigL).
        if adapt_every and (step + 1) % adapt_every == 0 and step < 0.6 * steps:
            model.wiring.update_connectivity(np.abs(model.rnn_cell.synapse_values("w")))
            model.refresh_wiring()

    return train(model, lambda m: nn.losses.mse_loss(m(x)[0], y), steps, 0.02, rewire)


def test_an_ltc_trained_with_adaptation_reaches_the_loss_of_the_static_one():
    x, y = sine_task()
    results = {}
    for adapt_every in (None, 20):
        mx.random.seed(0)
        wiring = AdaptiveWiring(AutoNCP(20, 2, seed=1), prune_fraction=0.1, seed=2)
        model = LTC(3, wiring)
        budget = wiring.synapse_count
        losses = train_with_rewiring(model, x, y, 120, adapt_every)
        results[adapt_every] = min(losses[-10:])
        assert wiring.synapse_count == budget
        assert wiring.connectivity_version == (3 if adapt_every else 0)
    static, adaptive = results[None], results[20]
    assert adaptive <= 1.5 * static + 1e-3, results


def test_sparse_refresh_warns_when_a_fan_in_outgrows_the_table():
    mx.random.seed(4)
    wiring = AdaptiveWiring(
        Random(30, 2, sparsity_level=0.9, random_seed=1), prune_fraction=0.5, seed=2
    )
    model = LTC(F, wiring, sparse=True)
    width = model.rnn_cell._fan_in.width
    growth = np.zeros((30, 30))
    growth[:, 5] = 1.0  # every new synapse targets neuron 5
    wiring.update_connectivity(np.abs(model.rnn_cell.synapse_values("w")), growth)
    with pytest.warns(UserWarning, match="re-initialise the optimizer state"):
        model.refresh_wiring()
    assert model.rnn_cell._fan_in.width > width
    model(mx.random.normal((1, 3, F)))  # the model still runs
