"""Connection patterns and wiring composition: exact synapse sets, round-trips, training."""

import json

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from training import train

from ncps_mlx import LTC, CfC
from ncps_mlx.wirings import (
    NCP,
    AutoNCP,
    FullyConnected,
    Wiring,
    add_attention_head,
    add_residual_block,
    add_skip_connection,
    connect,
)
from ncps_mlx.wirings.compose import ComposedWiring, merge_wirings, stack_wirings
from ncps_mlx.wirings.patterns import connect_one_to_one


def pairs(wiring, sensory=False):
    src, dst, polarity = wiring.sensory_synapses() if sensory else wiring.synapses()
    return {(int(s), int(d)): int(p) for s, d, p in zip(src, dst, polarity, strict=True)}


# ---------------------------------------------------------------------- patterns
def test_connect_without_fan_in_adds_every_pair_with_the_given_polarity():
    wiring = Wiring(6)
    connect(wiring, range(0, 2), [3, 5], polarity=-1)
    assert pairs(wiring) == {(0, 3): -1, (1, 3): -1, (0, 5): -1, (1, 5): -1}


def test_connect_with_fan_in_gives_each_target_that_many_distinct_sources():
    wiring = Wiring(50)
    rng = np.random.default_rng(0)
    connect(wiring, range(0, 30), range(30, 50), fan_in=7, polarity="random", rng=rng)
    src, dst, polarity = wiring.synapses()
    assert np.array_equal(np.bincount(dst, minlength=50)[30:], np.full(20, 7))
    assert src.max() < 30 and set(np.unique(polarity)) <= {-1, 1}


def test_connect_sensory_needs_a_built_wiring_and_uses_input_ids():
    wiring = Wiring(4)
    with pytest.raises(ValueError, match="build"):
        connect(wiring, [0], [1], sensory=True)
    wiring.build(3)
    connect(wiring, [2], [0, 1], sensory=True)
    assert pairs(wiring, sensory=True) == {(2, 0): 1, (2, 1): 1}


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"sources": [0], "targets": [9]}, "targets=9 is out of range"),
        ({"sources": [], "targets": [1]}, "sources must name at least one neuron"),
        (
            {"sources": [0, 1], "targets": [2], "fan_in": 3, "rng": np.random.default_rng(0)},
            "fan_in",
        ),
        ({"sources": [0, 1], "targets": [2], "fan_in": 1}, "random generator"),
        ({"sources": [0], "targets": [2], "polarity": 0}, "polarity"),
        ({"sources": [0], "targets": [2], "polarity": "random"}, "random generator"),
    ],
)
def test_connect_rejects_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        connect(Wiring(4), **kwargs)


def test_one_to_one_pairs_neurons_by_position():
    wiring = Wiring(6)
    connect_one_to_one(wiring, [0, 1, 2], [3, 4, 5])
    assert pairs(wiring) == {(0, 3): 1, (1, 4): 1, (2, 5): 1}
    with pytest.raises(ValueError, match="equal lengths"):
        connect_one_to_one(wiring, [0, 1], [3])


def test_skip_connection_is_an_excitatory_block_or_fan_in():
    wiring = Wiring(8)
    add_skip_connection(wiring, range(0, 2), range(6, 8))
    assert pairs(wiring) == {(s, d): 1 for s in (0, 1) for d in (6, 7)}
    sparse = Wiring(20)
    add_skip_connection(sparse, range(0, 10), range(10, 20), fan_in=3, seed=4)
    assert np.array_equal(np.bincount(sparse.synapses()[1], minlength=20)[10:], np.full(10, 3))


def test_residual_block_has_transform_feedback_and_identity_paths():
    wiring = Wiring(7)
    add_residual_block(wiring, range(0, 3), range(3, 7), seed=1)
    found = pairs(wiring)
    expected_pairs = (
        {(i, h) for i in range(3) for h in range(3, 7)}
        | {(h, i) for h in range(3, 7) for i in range(3)}
        | {(i, i) for i in range(3)}
    )
    assert set(found) == expected_pairs
    assert all(found[(i, i)] == 1 for i in range(3))


def test_attention_head_wires_query_key_value_output_in_order():
    wiring = Wiring(8)
    add_attention_head(wiring, [0, 1], [2, 3], [4, 5], [6, 7])
    blocks = [((0, 1), (2, 3)), ((2, 3), (4, 5)), ((4, 5), (6, 7))]
    assert set(pairs(wiring)) == {
        (s, d) for sources, targets in blocks for s in sources for d in targets
    }


# ---------------------------------------------------------------------- composition
def built(wiring, input_dim):
    wiring.build(input_dim)
    return wiring


def test_stacking_feeds_the_first_circuits_motor_neurons_into_the_second():
    first, second = AutoNCP(12, 3, seed=1), NCP(4, 3, 2, 2, 2, 2, 2, seed=2)
    stacked = stack_wirings(first, second)
    stacked.build(5)
    assert stacked.units == 21 and stacked.output_dim == 2
    offset = second.units
    expected = {
        (s + offset, d + offset): p for (s, d), p in pairs(built(AutoNCP(12, 3, seed=1), 5)).items()
    }
    reference_second = built(NCP(4, 3, 2, 2, 2, 2, 2, seed=2), 3)
    expected.update(pairs(reference_second))
    expected.update(
        {(s + offset, d): p for (s, d), p in pairs(reference_second, sensory=True).items()}
    )
    assert pairs(stacked) == expected
    reference_first = built(AutoNCP(12, 3, seed=1), 5)
    assert pairs(stacked, sensory=True) == {
        (s, d + offset): p for (s, d), p in pairs(reference_first, sensory=True).items()
    }
    assert not first.is_built() and not second.is_built()  # the parts were copied
    assert stacked.get_type_of_neuron(0) == "second.motor"
    assert stacked.get_type_of_neuron(offset) == "first.motor"


def test_merging_keeps_both_circuits_and_adds_cross_links_of_the_given_fan_in():
    first, second = FullyConnected(4, 2, erev_init_seed=3), AutoNCP(10, 2, seed=5)
    merged = merge_wirings(first, second, cross_fan_in=2, seed=7)
    merged.build(3)
    assert merged.output_dim == 2
    own = pairs(built(FullyConnected(4, 2, erev_init_seed=3), 3))
    own.update({(s + 4, d + 4): p for (s, d), p in pairs(built(AutoNCP(10, 2, seed=5), 3)).items()})
    cross = {k: v for k, v in pairs(merged).items() if (k[0] < 4) != (k[1] < 4)}
    assert {k: v for k, v in pairs(merged).items() if k not in cross} == own
    into_second = np.bincount([d for s, d in cross if d >= 4], minlength=14)[4:]
    into_first = np.bincount([d for s, d in cross if d < 4], minlength=4)
    assert np.array_equal(into_second, np.full(10, 2)) and np.array_equal(into_first, np.full(4, 2))
    sensory_targets = {d for _, d in pairs(merged, sensory=True)}
    assert sensory_targets & set(range(4)) and sensory_targets & set(range(4, 14))


def test_composed_layers_and_time_scales_come_from_the_parts():
    stacked = stack_wirings(AutoNCP(12, 3), NCP(4, 3, 2, 2, 2, 2, 2))
    assert stacked.num_layers == 6
    assert stacked.get_neurons_of_layer(5) == [0, 1]  # second's motor layer last
    merged = merge_wirings(AutoNCP(12, 3), NCP(4, 3, 2, 2, 2, 2, 2))
    assert merged.num_layers == 3
    assert sorted(merged.get_neurons_of_layer(2)) == [0, 1, 2, 12, 13]
    assert np.array_equal(merged.neuron_time_scales(), np.ones(21, np.float32))


@pytest.mark.parametrize("build_first", [False, True])
def test_composed_wirings_round_trip_through_config_and_files(tmp_path, build_first):
    wiring = merge_wirings(AutoNCP(12, 3, seed=1), FullyConnected(5, 2), cross_fan_in=1, seed=9)
    if build_first:
        wiring.build(4)
    restored = Wiring.from_config(json.loads(json.dumps(wiring.get_config())))
    assert type(restored) is ComposedWiring
    for w in (wiring, restored):
        if not w.is_built():
            w.build(4)
    assert pairs(restored) == pairs(wiring)
    assert pairs(restored, sensory=True) == pairs(wiring, sensory=True)
    wiring.save(tmp_path / "w.json")
    assert pairs(Wiring.load(tmp_path / "w.json")) == pairs(wiring)


def test_composition_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        ComposedWiring(FullyConnected(2), FullyConnected(2), mode="parallel")
    with pytest.raises(ValueError, match="cross_fan_in applies"):
        ComposedWiring(FullyConnected(2), FullyConnected(2), mode="stack", cross_fan_in=1)
    with pytest.raises(TypeError, match="first must be a Wiring"):
        stack_wirings(3, FullyConnected(2))
    with pytest.raises(ValueError, match="names"):
        merge_wirings(FullyConnected(2), FullyConnected(2), names=("a", "a"))


@pytest.mark.parametrize(
    "cls,make",
    [
        (CfC, lambda: stack_wirings(AutoNCP(10, 3, seed=1), NCP(3, 3, 1, 2, 2, 2, 2, seed=2))),
        (LTC, lambda: merge_wirings(AutoNCP(10, 1, seed=1), FullyConnected(4, 1), 2, seed=3)),
    ],
    ids=["cfc-stacked", "ltc-merged"],
)
def test_models_on_composed_wirings_learn_a_delayed_sine(cls, make):
    # (A deep stack of sparse LTC layers attenuates its input strongly and trains slowly; the
    # stacked case uses a CfC, the merged one an LTC.)
    t = np.linspace(0, 4 * np.pi, 24, dtype=np.float32)
    x = mx.array(np.stack([np.sin(t + p) for p in np.linspace(0, 1, 8)])[..., None])
    y = mx.array(np.stack([np.sin(t + p - 0.5) for p in np.linspace(0, 1, 8)])[..., None])
    mx.random.seed(0)
    model = cls(1, make())
    losses = train(model, lambda m: nn.losses.mse_loss(m(x)[0], y), 80, 0.01)
    assert min(losses[-5:]) < losses[0] / 5, (losses[0], losses[-5:])
