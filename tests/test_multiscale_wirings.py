"""Specification of MultiScaleWiring and HierarchicalWiring: groups, blocks, fan-ins, draws,
config, plots, scale, and the liquid models they drive.

Expected groups, allowed block pairs, fan-ins and synapse counts are computed here from the
documented rules (group sizes in, neuron ranges out), never read back from the wiring.
"""

import json

import matplotlib
import mlx.core as mx
import numpy as np
import pytest
from training import train

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from ncps_mlx import LTC, CfC, viz
from ncps_mlx.wirings import Wiring
from ncps_mlx.wirings.multiscale import HierarchicalWiring, MultiScaleWiring

# ---------------------------------------------------------------- independent expectations


def ranges(named_sizes):
    """``{name: ids}`` for consecutive groups given as ``[(name, size), ...]`` in id order."""
    out, start = {}, 0
    for name, size in named_sizes:
        out[name] = np.arange(start, start + size)
        start += size
    return out


def multiscale_groups(fast, medium, slow, output):
    return ranges([("output", output), ("fast", fast), ("medium", medium), ("slow", slow)])


def hierarchical_groups(sizes):
    last = len(sizes) - 1
    order = [last, *range(last)]
    return ranges([(f"layer_{i}", sizes[i]) for i in order])


MULTISCALE_FORWARD = {
    ("fast", "output"),
    ("fast", "medium"),
    ("medium", "medium"),
    ("medium", "slow"),
    ("slow", "slow"),
    ("medium", "output"),
    ("slow", "output"),
}
MULTISCALE_FEEDBACK = {("medium", "fast"), ("slow", "medium")}


def hierarchical_pairs(num_layers, skip, feedback):
    pairs = {(f"layer_{i}", f"layer_{i + 1}") for i in range(num_layers - 1)}
    if skip:
        pairs |= {(f"layer_{i}", f"layer_{i + 2}") for i in range(num_layers - 2)}
    if feedback:
        pairs |= {(f"layer_{i + 1}", f"layer_{i}") for i in range(num_layers - 1)}
    return pairs


def group_of(ids, groups):
    names = np.empty(sum(g.size for g in groups.values()), dtype=object)
    for name, members in groups.items():
        names[members] = name
    return names[ids]


def synapse_set(arrays):
    return set(zip(*(a.tolist() for a in arrays), strict=True))


def block_pairs_of(synapses, groups):
    """``{(source group, target group)}`` of a set of ``(src, dst, polarity)`` synapses."""
    return {(group_of(s, groups), group_of(d, groups)) for s, d, _ in synapses}


def block_pairs(wiring, groups):
    return block_pairs_of(synapse_set(wiring.synapses()), groups)


def all_synapses(wiring):
    return synapse_set(wiring.synapses()), synapse_set(wiring.sensory_synapses())


def fan_ins(wiring, groups, source, target, sensory=False):
    """Number of synapses from group ``source`` (or all inputs) into each ``target`` neuron."""
    src, dst, _ = wiring.sensory_synapses() if sensory else wiring.synapses()
    keep = np.ones(src.size, bool) if sensory else np.isin(src, groups[source])
    return np.bincount(dst[keep], minlength=wiring.units)[groups[target]]


def built(wiring, input_dim=3):
    wiring.build(input_dim)
    return wiring


def assert_same_wiring(restored, original):
    assert type(restored) is type(original)
    assert restored.get_config() == original.get_config()
    assert synapse_set(restored.synapses()) == synapse_set(original.synapses())
    if original.is_built():
        assert synapse_set(restored.sensory_synapses()) == synapse_set(original.sensory_synapses())
    np.testing.assert_array_equal(restored.neuron_time_scales(), original.neuron_time_scales())


FACTORIES = {
    "multiscale": lambda seed: MultiScaleWiring(7, 5, 4, 2, fan_in=3, seed=seed),
    "multiscale_default": lambda seed: MultiScaleWiring(6, 4, 3, 2, feedback=False, seed=seed),
    "hierarchical": lambda seed: HierarchicalWiring([6, 5, 4, 2], fan_in=2, seed=seed),
    "hierarchical_plain": lambda seed: HierarchicalWiring(
        [4, 3], skip_connections=False, feedback=False, time_scales=[1, 3], seed=seed
    ),
}
factories = pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))

# ---------------------------------------------------------------- MultiScaleWiring structure


def test_multiscale_numbers_neurons_output_fast_medium_slow_and_layers_in_signal_order():
    wiring = MultiScaleWiring(fast_neurons=5, medium_neurons=4, slow_neurons=3, output_neurons=2)
    groups = multiscale_groups(5, 4, 3, 2)
    assert (wiring.units, wiring.output_dim) == (14, 2)
    assert wiring.group_names == ["output", "fast", "medium", "slow"]
    assert wiring.neuron_types().tolist() == group_of(np.arange(14), groups).tolist()
    assert [wiring.get_type_of_neuron(i) for i in (0, 2, 7, 11)] == [
        "output",
        "fast",
        "medium",
        "slow",
    ]
    assert wiring.num_layers == 4
    layers = [wiring.get_neurons_of_layer(i) for i in range(4)]
    assert layers == [groups[name].tolist() for name in ("fast", "medium", "slow", "output")]


@pytest.mark.parametrize(
    "time_scales, expected",
    [(None, (1.0, 4.0, 16.0)), ((0.5, 2, 3.25), (0.5, 2.0, 3.25)), ([1, 1, 1], (1.0, 1.0, 1.0))],
)
def test_multiscale_neuron_time_scales_follow_the_groups_output_sharing_the_fast_scale(
    time_scales, expected
):
    kwargs = {} if time_scales is None else {"time_scales": time_scales}
    wiring = MultiScaleWiring(3, 2, 2, 1, **kwargs)
    fast, medium, slow = expected
    want = [fast] + [fast] * 3 + [medium] * 2 + [slow] * 2
    assert wiring.neuron_time_scales().dtype == np.float32
    np.testing.assert_array_equal(wiring.neuron_time_scales(), np.float32(want))


@pytest.mark.parametrize("feedback", [True, False])
def test_multiscale_synapses_run_only_between_documented_groups(feedback):
    wiring = built(MultiScaleWiring(8, 6, 5, 3, fan_in=2, feedback=feedback, seed=4), 5)
    groups = multiscale_groups(8, 6, 5, 3)
    expected = MULTISCALE_FORWARD | (MULTISCALE_FEEDBACK if feedback else set())
    assert block_pairs(wiring, groups) == expected
    _, sensory_dst, _ = wiring.sensory_synapses()
    assert set(group_of(sensory_dst, groups)) == {"fast"}


@pytest.mark.parametrize(
    "kwargs, scale, output, sensory",
    [
        # defaults: ceil(S / 2) per scale block, half of it (>= 1) to output, every input.
        ({}, {"fast": 5, "medium": 4, "slow": 3}, {"medium": 2, "slow": 1}, 4),
        (
            {"fan_in": 3, "output_fan_in": 2, "sensory_fan_in": 2},
            {"fast": 3, "medium": 3, "slow": 3},
            {"medium": 2, "slow": 2},
            2,
        ),
        ({"fan_in": 5}, {"fast": 5, "medium": 5, "slow": 5}, {"medium": 2, "slow": 2}, 4),
    ],
)
def test_multiscale_every_target_gets_the_documented_fan_in_per_block(
    kwargs, scale, output, sensory
):
    sizes = {"fast": 9, "medium": 7, "slow": 5, "output": 3}
    wiring = built(MultiScaleWiring(9, 7, 5, 3, seed=11, **kwargs), 4)
    groups = multiscale_groups(9, 7, 5, 3)
    for source, target in MULTISCALE_FORWARD | MULTISCALE_FEEDBACK:
        k = output[source] if target == "output" and source != "fast" else scale[source]
        assert fan_ins(wiring, groups, source, target).tolist() == [k] * sizes[target], (
            source,
            target,
        )
    assert fan_ins(wiring, groups, None, "fast", sensory=True).tolist() == [sensory] * 9
    expected_count = sum(
        (output[s] if t == "output" and s != "fast" else scale[s]) * sizes[t]
        for s, t in MULTISCALE_FORWARD | MULTISCALE_FEEDBACK
    )
    assert wiring.synapse_count == expected_count
    assert wiring.sensory_synapse_count == 9 * sensory


def test_multiscale_feedback_switch_adds_exactly_the_feedback_blocks():
    groups = multiscale_groups(8, 6, 4, 2)
    with_feedback = synapse_set(MultiScaleWiring(8, 6, 4, 2, fan_in=3, seed=5).synapses())
    without = synapse_set(MultiScaleWiring(8, 6, 4, 2, fan_in=3, feedback=False, seed=5).synapses())
    added = with_feedback - without
    assert without < with_feedback  # same draws for every other block, polarities included
    assert block_pairs_of(added, groups) == MULTISCALE_FEEDBACK
    assert len(added) == 3 * 8 + 3 * 6  # medium -> fast, slow -> medium, fan-in 3


def test_multiscale_polarities_are_two_thirds_excitatory():
    wiring = built(MultiScaleWiring(300, 200, 100, 20, fan_in=20, seed=2), 10)
    _, _, polarity = wiring.synapses()
    assert set(np.unique(polarity).tolist()) == {-1, 1}
    assert abs(np.mean(polarity == 1) - 2 / 3) < 0.01  # 22,800 draws: 3 standard deviations
    _, _, sensory_polarity = wiring.sensory_synapses()
    assert abs(np.mean(sensory_polarity == 1) - 2 / 3) < 0.05


# ---------------------------------------------------------------- HierarchicalWiring structure


def test_hierarchical_numbers_the_output_layer_first_and_orders_layers_by_signal():
    wiring = HierarchicalWiring([4, 3, 5, 2])
    groups = hierarchical_groups([4, 3, 5, 2])
    assert (wiring.units, wiring.output_dim) == (14, 2)
    assert wiring.group_names == ["layer_3", "layer_0", "layer_1", "layer_2"]
    assert wiring.neuron_types().tolist() == group_of(np.arange(14), groups).tolist()
    assert wiring.num_layers == 4
    assert [wiring.get_neurons_of_layer(i) for i in range(4)] == [
        groups[f"layer_{i}"].tolist() for i in range(4)
    ]
    np.testing.assert_array_equal(wiring.neuron_time_scales(), np.ones(14, np.float32))


def test_hierarchical_time_scales_are_given_per_layer():
    wiring = HierarchicalWiring([2, 3, 1], time_scales=(1, 2.5, 8))
    np.testing.assert_array_equal(wiring.neuron_time_scales(), np.float32([8, 1, 1, 2.5, 2.5, 2.5]))


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("feedback", [True, False])
def test_hierarchical_synapses_run_only_between_documented_layers(skip, feedback):
    sizes = [6, 5, 4, 3, 2]
    wiring = built(HierarchicalWiring(sizes, skip, feedback, fan_in=2, seed=8), 4)
    groups = hierarchical_groups(sizes)
    assert block_pairs(wiring, groups) == hierarchical_pairs(5, skip, feedback)
    _, sensory_dst, _ = wiring.sensory_synapses()
    assert set(group_of(sensory_dst, groups)) == {"layer_0"}


@pytest.mark.parametrize(
    "kwargs, k",
    [
        # None: ceil(source size / 2) per block; skip/feedback default to fan_in.
        ({}, lambda kind, source_size: (source_size + 1) // 2),
        ({"fan_in": 2}, lambda kind, source_size: 2),
        (
            {"fan_in": 3, "skip_fan_in": 1, "feedback_fan_in": 2},
            lambda kind, source_size: {"feedforward": 3, "skip": 1, "feedback": 2}[kind],
        ),
    ],
)
def test_hierarchical_every_target_gets_the_documented_fan_in_per_block(kwargs, k):
    sizes = [7, 6, 5, 4]
    wiring = built(HierarchicalWiring(sizes, seed=3, **kwargs), 6)
    groups = hierarchical_groups(sizes)
    expected_count = 0
    for kind, step in (("feedforward", 1), ("skip", 2), ("feedback", -1)):
        for i in range(len(sizes)):
            j = i + step
            if 0 <= j < len(sizes) and 0 <= i < len(sizes):
                want = k(kind, sizes[i])
                got = fan_ins(wiring, groups, f"layer_{i}", f"layer_{j}")
                assert got.tolist() == [want] * sizes[j], (kind, i, j)
                expected_count += want * sizes[j]
    assert wiring.synapse_count == expected_count
    assert fan_ins(wiring, groups, None, "layer_0", sensory=True).tolist() == [6] * 7


def test_hierarchical_sensory_fan_in_limits_inputs_per_first_layer_neuron():
    wiring = built(HierarchicalWiring([5, 2], sensory_fan_in=3, seed=1), 8)
    groups = hierarchical_groups([5, 2])
    assert fan_ins(wiring, groups, None, "layer_0", sensory=True).tolist() == [3] * 5


def test_hierarchical_switches_remove_exactly_their_blocks_and_keep_earlier_draws():
    sizes = [6, 5, 4, 3]
    groups = hierarchical_groups(sizes)

    def synapses(skip, feedback):
        return synapse_set(HierarchicalWiring(sizes, skip, feedback, fan_in=2, seed=9).synapses())

    full, no_feedback = synapses(True, True), synapses(True, False)
    no_skip, neither = synapses(False, True), synapses(False, False)
    assert no_feedback < full  # feedback blocks are drawn last
    assert block_pairs_of(full - no_feedback, groups) == hierarchical_pairs(
        4, False, True
    ) - hierarchical_pairs(4, False, False)
    assert neither < no_feedback  # skips are drawn after the feed-forward blocks
    assert len(no_feedback - neither) == 2 * (4 + 3)  # skips into layer_2 and layer_3
    assert len(no_skip) == len(full) - 2 * (4 + 3)
    assert block_pairs_of(no_skip, groups) == hierarchical_pairs(4, False, True)


def test_hierarchical_single_layer_is_an_output_layer_fed_by_the_inputs_only():
    wiring = built(HierarchicalWiring([4]), 3)
    assert (wiring.units, wiring.output_dim, wiring.synapse_count) == (4, 4, 0)
    assert wiring.sensory_synapse_count == 12


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"fast_neurons": 0}, ValueError, "fast_neurons"),
        ({"medium_neurons": -2}, ValueError, "medium_neurons"),
        ({"slow_neurons": 2.5}, TypeError, "slow_neurons"),
        ({"output_neurons": 0}, ValueError, "output_neurons"),
        ({"fan_in": 0}, ValueError, "fan_in"),
        ({"fan_in": 4}, ValueError, "fan_in=4 is larger than the 'slow' group"),
        ({"fan_in": "3"}, TypeError, "fan_in"),
        ({"output_fan_in": 4}, ValueError, "output_fan_in=4 is larger than the 'slow'"),
        ({"sensory_fan_in": 0}, ValueError, "sensory_fan_in"),
        ({"feedback": 1}, TypeError, "feedback"),
        ({"time_scales": (1, 4)}, ValueError, "time_scales must hold 3"),
        ({"time_scales": (1, 0, 4)}, ValueError, "time_scales"),
        ({"time_scales": (1, -4, 4)}, ValueError, "time_scales"),
        ({"time_scales": (1, float("nan"), 4)}, ValueError, "time_scales"),
        ({"time_scales": (1, float("inf"), 4)}, ValueError, "time_scales"),
        ({"time_scales": (1, "4", 4)}, TypeError, "time_scales"),
        ({"time_scales": 4.0}, TypeError, "time_scales"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "x"}, TypeError, "seed"),
    ],
)
def test_multiscale_rejects_bad_arguments_naming_them(kwargs, error, message):
    args = {"fast_neurons": 6, "medium_neurons": 5, "slow_neurons": 3, "output_neurons": 2}
    with pytest.raises(error, match=message):
        MultiScaleWiring(**{**args, **kwargs})


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"layer_sizes": []}, ValueError, "layer_sizes"),
        ({"layer_sizes": 5}, TypeError, "layer_sizes"),
        ({"layer_sizes": "54"}, TypeError, "layer_sizes"),
        ({"layer_sizes": [4, 0]}, ValueError, r"layer_sizes\[1\]"),
        ({"layer_sizes": [4, 2.0]}, TypeError, r"layer_sizes\[1\]"),
        ({"fan_in": 0}, ValueError, "fan_in"),
        ({"fan_in": 3}, ValueError, "fan_in=3 .* 'layer_2' .* or set feedback_fan_in"),
        ({"fan_in": 2, "skip_fan_in": 6}, ValueError, "skip_fan_in=6"),
        ({"fan_in": 2, "feedback_fan_in": 3}, ValueError, "feedback_fan_in=3"),
        ({"sensory_fan_in": -1}, ValueError, "sensory_fan_in"),
        ({"skip_connections": "yes"}, TypeError, "skip_connections"),
        ({"feedback": None}, TypeError, "feedback"),
        ({"time_scales": [1, 2]}, ValueError, "time_scales must hold 3"),
        ({"time_scales": [1, 2, float("nan")]}, ValueError, "time_scales"),
        ({"time_scales": [1, 2, 0]}, ValueError, "time_scales"),
        ({"seed": 2**32}, ValueError, "seed"),
    ],
)
def test_hierarchical_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        HierarchicalWiring(**{"layer_sizes": [5, 4, 2], **kwargs})


@pytest.mark.parametrize(
    "wiring",
    [MultiScaleWiring(4, 3, 2, 1, sensory_fan_in=4), HierarchicalWiring([4, 2], sensory_fan_in=4)],
    ids=["multiscale", "hierarchical"],
)
def test_sensory_fan_in_above_input_dim_is_refused_at_build(wiring):
    with pytest.raises(ValueError, match="sensory_fan_in=4 is larger than input_dim=3"):
        wiring.build(3)


# ---------------------------------------------------------------- seeds and config


@factories
def test_same_seed_gives_identical_synapses_and_different_seeds_differ(make):
    first, again, other = built(make(7)), built(make(7)), built(make(8))
    assert_same_wiring(again, first)
    (internal, sensory), (other_internal, other_sensory) = all_synapses(first), all_synapses(other)
    assert internal != other_internal and sensory != other_sensory


@factories
def test_generator_and_none_seeds_are_stored_as_ints_that_rebuild_the_wiring(make):
    drawn = int(np.random.default_rng(8).integers(0, 2**32))
    assert_same_wiring(built(make(np.random.default_rng(8))), built(make(drawn)))
    original = built(make(None))
    seed = original.get_config()["args"]["seed"]
    assert type(seed) is int and 0 <= seed < 2**32
    assert_same_wiring(built(make(seed)), original)


@factories
def test_built_config_round_trips_through_json(make):
    original = built(make(3), 4)
    config = json.loads(json.dumps(original.get_config()))
    assert_same_wiring(Wiring.from_config(config), original)
    assert_same_wiring(type(original).from_config(config), original)


@factories
def test_unbuilt_config_restores_a_wiring_that_builds_like_the_original(make):
    original = make(3)
    restored = Wiring.from_config(json.loads(json.dumps(original.get_config())))
    assert_same_wiring(restored, original)
    assert_same_wiring(built(restored, 5), built(original, 5))


@factories
def test_save_and_load_restore_the_wiring(tmp_path, make):
    original = built(make(11), 3)
    original.save(tmp_path / "w.json")
    assert_same_wiring(Wiring.load(tmp_path / "w.json"), original)


def test_config_args_store_the_constructor_arguments_as_given():
    args = MultiScaleWiring(4, 3, 2, 1, fan_in=2, time_scales=(1, 2, 3), seed=5)._config_args()
    assert args == {
        "fast_neurons": 4,
        "medium_neurons": 3,
        "slow_neurons": 2,
        "output_neurons": 1,
        "sensory_fan_in": None,
        "fan_in": 2,
        "output_fan_in": None,
        "feedback": True,
        "time_scales": [1.0, 2.0, 3.0],
        "seed": 5,
    }
    args = HierarchicalWiring(np.array([3, 2]), feedback=False, seed=6)._config_args()
    assert args["layer_sizes"] == [3, 2] and type(args["layer_sizes"][0]) is int
    assert (args["feedback"], args["skip_connections"], args["time_scales"]) == (False, True, None)


# ---------------------------------------------------------------- plots and scale


@pytest.mark.parametrize(
    "wiring, labels",
    [
        (MultiScaleWiring(4, 3, 2, 1), ["Sensory", "Fast", "Medium", "Slow", "Output"]),
        (HierarchicalWiring([3, 3, 2]), ["Sensory", "Layer 0", "Layer 1", "Layer 2"]),
    ],
    ids=["multiscale", "hierarchical"],
)
def test_plots_name_the_groups_in_the_legend_and_save_a_png(tmp_path, wiring, labels):
    wiring = built(wiring, 2)
    handles = wiring.draw_graph(layout="layered", ax=Figure().add_subplot())
    assert [h.get_label() for h in handles] == [f"{label} neurons" for label in labels]
    path = tmp_path / "wiring.png"
    viz.save_wiring_plot(wiring, path, layout="layered")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_twenty_thousand_neuron_wirings_build_sparsely_with_the_formula_count():
    fast, medium, slow, output, k, ko = 10_000, 6_000, 3_000, 1_000, 16, 4
    wiring = built(MultiScaleWiring(fast, medium, slow, output, 8, k, ko, seed=0), 32)
    forward = k * (output + medium + medium + slow + slow) + ko * 2 * output
    assert wiring.units == 20_000
    assert wiring.synapse_count == forward + k * (fast + medium)
    assert wiring.sensory_synapse_count == 8 * fast
    sizes = [8_000, 6_000, 4_000, 2_000]
    wiring = built(HierarchicalWiring(sizes, fan_in=10, seed=0), 16)
    assert wiring.units == 20_000
    assert wiring.synapse_count == 10 * (12_000 + 6_000 + 18_000)  # ff + skip + feedback


# ---------------------------------------------------------------- models driven by the wirings


def state_trajectory(model, inputs):
    """Every neuron's state after each step (the model is run step by step)."""
    h, states = None, []
    for t in range(inputs.shape[1]):
        _, h = model(inputs[:, t : t + 1], hx=h)
        states.append(np.array(h[0]))
    return np.stack(states)


def impulse_half_times(time_scales, steps=60):
    """Steps from each neuron's peak impulse response until it falls to half of the peak."""
    wiring = MultiScaleWiring(8, 8, 8, 2, time_scales=time_scales, seed=3)
    mx.random.seed(0)  # same parameters for every time_scales, except cm
    model = LTC(1, wiring)
    inputs = np.zeros((1, steps, 1), np.float32)
    baseline = state_trajectory(model, mx.array(inputs))
    inputs[0, 0, 0] = 1.0
    response = np.abs(state_trajectory(model, mx.array(inputs)) - baseline)
    peak_step, peak = response.argmax(axis=0), response.max(axis=0)
    assert np.all(peak > 0) and np.all(response[-1] < 0.5 * peak)
    half = [
        peak_step[j] + np.argmax(response[peak_step[j] :, j] <= 0.5 * peak[j])
        for j in range(wiring.units)
    ]
    return {name: np.mean(np.take(half, wiring.group(name))) for name in ("fast", "slow")}


def test_ltc_over_multiscale_wiring_remembers_an_impulse_longer_in_slow_neurons():
    scaled = impulse_half_times((1.0, 4.0, 16.0))
    flat = impulse_half_times((1.0, 1.0, 1.0))
    assert scaled["slow"] > 2 * scaled["fast"]
    # The same circuit and parameters with equal time scales: the slowdown comes from them.
    assert scaled["slow"] > 1.5 * flat["slow"]
    assert scaled["slow"] / scaled["fast"] > 1.5 * flat["slow"] / flat["fast"]


def delayed_sine(batch=8, steps=16, delay=2):
    phase = np.random.default_rng(0).uniform(0, 2 * np.pi, (batch, 1))
    signal = np.sin(np.arange(steps + delay) * 0.5 + phase).astype(np.float32)
    return mx.array(signal[:, delay:, None]), mx.array(signal[:, :-delay, None])


MODEL_WIRINGS = {
    "multiscale": lambda: MultiScaleWiring(6, 4, 4, 1, seed=1),
    "hierarchical": lambda: HierarchicalWiring([6, 6, 1], seed=1),
}


@pytest.mark.parametrize("model_class, learning_rate", [(LTC, 0.02), (CfC, 0.03)])
@pytest.mark.parametrize("make", list(MODEL_WIRINGS.values()), ids=list(MODEL_WIRINGS))
def test_models_over_the_wirings_learn_a_delayed_copy_of_a_sine(make, model_class, learning_rate):
    inputs, targets = delayed_sine()  # target(t) = input(t - 2)
    mx.random.seed(0)
    model = model_class(1, make())
    losses = train(model, lambda m: mx.mean((m(inputs)[0] - targets) ** 2), 40, learning_rate)
    assert min(losses[-10:]) < losses[0] / 5
