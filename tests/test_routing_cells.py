"""Routing by agreement applied by the LTC cell over a DynamicRoutingWiring."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from training import train

from ncps_mlx import LTC, LTCCell
from ncps_mlx.cells.ltc_routing import routing_coefficients_mx, routing_gains, routing_plan
from ncps_mlx.wirings import AutoNCP, DynamicRoutingWiring

F = 4


def wiring():
    return DynamicRoutingWiring(3, 2, routing_iterations=3, num_input_capsules=2, seed=1)


def test_routing_gains_scale_each_routing_synapse_by_its_capsule_coupling():
    mx.random.seed(0)
    w = wiring()
    cell = LTCCell(w, F)
    table, plan = cell._fan_in, cell._routing
    drive = mx.random.uniform(0, 1, (2, *table.valid.shape)) * table.valid
    gains = np.array(routing_gains(drive, plan))
    # Independent reference: predictions summed synapse by synapse, numpy-free routing in MLX.
    src, dst, _ = w.synapses()
    pairs = w.routing_pairs()
    capsule, position = w.capsule_of_neuron(), w.position_in_capsule()
    slot = table.slot_of_synapse
    flat_drive = np.array(drive).reshape(2, -1)[:, slot]
    u_hat = np.zeros((2, 2, 3, 2), np.float32)
    for s in np.flatnonzero(pairs >= 0):
        u_hat[:, capsule[src[s]], capsule[dst[s]], position[dst[s]]] += flat_drive[:, s]
    coupling = np.array(routing_coefficients_mx(mx.array(u_hat), 3))
    expected = np.where(pairs >= 0, 3 * coupling.reshape(2, -1)[:, np.maximum(pairs, 0)], 1.0)
    np.testing.assert_allclose(gains.reshape(2, -1)[:, slot], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(coupling.sum(axis=-1), 1.0, atol=1e-6)


def test_routing_changes_the_dynamics_and_needs_the_fan_in_layout():
    mx.random.seed(1)
    routed = LTC(F, wiring(), sparse=True)
    plain = LTC(F, wiring(), routing=False, sparse=True)
    plain.update(routed.parameters())
    x = mx.random.normal((2, 6, F))
    assert np.abs(np.array(routed(x)[0] - plain(x)[0])).max() > 1e-5
    with pytest.raises(ValueError, match="fan-in layout"):
        LTC(F, wiring(), sparse=False)
    with pytest.raises(ValueError, match="capsules"):
        LTCCell(AutoNCP(10, 2), F, routing=True)
    assert routing_plan(wiring(), routed.rnn_cell._fan_in).shape == (2, 3, 2)


def test_an_ltc_with_routing_trains():
    mx.random.seed(2)
    t = np.linspace(0, 4 * np.pi, 24, dtype=np.float32)
    phases = np.linspace(0, 1.5, 8, dtype=np.float32)[:, None]
    channels = [np.sin(t + phases), np.cos(t + phases), np.sin(2 * t + phases), np.cos(2 * t)]
    x = mx.array(np.stack(np.broadcast_arrays(*channels), axis=-1))
    y = mx.array(np.repeat(np.sin(t + phases - 0.5)[..., None], 6, axis=-1))
    model = LTC(F, wiring())
    losses = train(model, lambda m: nn.losses.mse_loss(m(x)[0], y), 60, 0.02)
    assert min(losses[-5:]) < losses[0] / 5, losses[::10]
