"""SignalProcessingWiring, VisionWiring, LanguageWiring: the synapses their docstrings promise.

Expected receptive fields and counts are worked out by hand (or by a slow loop over neurons
written here, independent of the vectorised index arithmetic of the library).
"""

import json
import tracemalloc

import matplotlib

matplotlib.use("Agg")

import mlx.core as mx  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from training import train  # noqa: E402

from ncps_mlx import LTC, CfC, viz
from ncps_mlx.wirings import Wiring
from ncps_mlx.wirings.domain import LanguageWiring, SignalProcessingWiring, VisionWiring


def sources_of(wiring, neuron, sensory=False):
    """The synapses into ``neuron`` as ``{source: polarity}``."""
    src, dst, polarity = wiring.sensory_synapses() if sensory else wiring.synapses()
    chosen = dst == neuron
    return dict(zip(src[chosen].tolist(), polarity[chosen].tolist(), strict=True))


def built(wiring, input_dim):
    wiring.build(input_dim)
    return wiring


# Small instances, with their sensory sizes.
MAKERS = {
    "signal": (lambda: SignalProcessingWiring(16, 3, 4, output_size=2), 16),
    "vision": (lambda: VisionWiring(5, 5, (2, 3, 2), input_channels=2, output_size=3), 50),
    "language": (lambda: LanguageWiring(5, 6, 3, 3), 6),
}

# Smaller ones for plots and training.
SMALL = {
    "signal": (lambda: SignalProcessingWiring(8, 2, 4), 8),
    "vision": (lambda: VisionWiring(4, 4, (2, 2)), 16),
    "language": (lambda: LanguageWiring(2, 8, 2, 2), 8),
}


# ---------------------------------------------------------------------------- signal
def test_signal_groups_layers_and_time_scales():
    wiring = SignalProcessingWiring(16, 3, 4, output_size=2)
    assert wiring.units == 2 + 3 * 4 and wiring.output_dim == 2
    assert wiring.group_names == ["output", "scale_0", "scale_1", "scale_2"]
    assert wiring.neuron_types().tolist() == (
        ["output"] * 2 + ["scale_0"] * 4 + ["scale_1"] * 4 + ["scale_2"] * 4
    )
    assert [wiring.get_neurons_of_layer(i) for i in range(4)] == [
        [2, 3, 4, 5],
        [6, 7, 8, 9],
        [10, 11, 12, 13],
        [0, 1],
    ]
    assert wiring.neuron_time_scales().tolist() == [1] * 2 + [1] * 4 + [2] * 4 + [4] * 4


def test_signal_neurons_read_a_window_dilated_by_two_to_the_scale():
    wiring = built(SignalProcessingWiring(16, 3, 4, output_size=2), 16)
    # Neurons sit at the middles of 4 segments of 16 samples: positions 2, 6, 10, 14.
    assert wiring.centres().tolist() == [2, 6, 10, 14]
    expected = {
        (0, 0): [1, 2, 3],  # scale 0: dilation 1 around 2
        (0, 3): [13, 14, 15],
        (1, 1): [4, 6, 8],  # scale 1: dilation 2 around 6
        (1, 3): [12, 14],  # 16 is past the end
        (2, 0): [2, 6],  # scale 2: dilation 4 around 2; -2 is before the start
        (2, 1): [2, 6, 10],
        (2, 3): [10, 14],
    }
    for (scale, k), inputs in expected.items():
        neuron = 2 + 4 * scale + k
        assert sorted(sources_of(wiring, neuron, sensory=True)) == inputs, (scale, k)
    assert sources_of(wiring, 0, sensory=True) == {}  # outputs read no samples


def test_signal_even_window_and_one_neuron_per_sample():
    wiring = built(SignalProcessingWiring(8, 2, 8, window=4), 8)
    assert wiring.centres().tolist() == list(range(8))
    # Offsets -2, -1, 0, 1 (times the dilation); neuron 5 of scale 1 is neuron 1 + 8 + 5.
    assert sorted(sources_of(wiring, 1 + 8 + 5, sensory=True)) == [1, 3, 5, 7]
    assert sorted(sources_of(wiring, 1 + 0, sensory=True)) == [0, 1]


def test_signal_scales_integrate_locally_from_fine_to_coarse_and_all_feed_the_output():
    wiring = SignalProcessingWiring(16, 3, 4, output_size=2)
    expected = np.zeros((14, 14), bool)
    for scale in range(2):
        for k in range(4):
            for j in (k - 1, k, k + 1):
                if 0 <= j < 4:
                    expected[2 + 4 * scale + j, 2 + 4 * (scale + 1) + k] = True
    expected[2:, :2] = True  # every scale neuron -> every output neuron
    np.testing.assert_array_equal(wiring.adjacency_matrix != 0, expected)
    assert wiring.synapse_count == 2 * (4 * 3 - 2) + 2 * 12


def test_signal_synapse_counts_follow_the_window_formula():
    wiring = built(SignalProcessingWiring(32, 4, 8, output_size=3, window=5, output_fan_in=6), 32)
    centres = [(2 * k + 1) * 32 // 16 for k in range(8)]
    sensory = sum(0 <= c + (j - 2) * 2**i < 32 for i in range(4) for c in centres for j in range(5))
    between = 3 * sum(0 <= k + j - 2 < 8 for k in range(8) for j in range(5))
    assert wiring.sensory_synapse_count == sensory
    assert wiring.synapse_count == between + 3 * 6
    src, dst, _ = wiring.synapses()
    for output in range(3):
        readout = src[dst == output]
        assert readout.size == 6 and np.all(readout >= 3)


# ---------------------------------------------------------------------------- vision
@pytest.fixture
def vision():
    # Maps (5, 5, 2) -> (3, 3, 3) -> (2, 2, 2); ids: output 0-2, map_0 3-52, map_1 53-79,
    # map_2 80-87. Pixel (y, x, c) of the 5x5x2 image is input (5 y + x) 2 + c.
    return built(VisionWiring(5, 5, (2, 3, 2), input_channels=2, output_size=3), 50)


def test_vision_groups_follow_the_downsampled_maps(vision):
    assert vision.map_shapes == [(5, 5, 2), (3, 3, 3), (2, 2, 2)]
    assert vision.units == 88 and vision.output_dim == 3 and vision.input_dim == 50
    assert [vision.group(name)[[0, -1]].tolist() for name in vision.group_names] == [
        [0, 2],
        [3, 52],
        [53, 79],
        [80, 87],
    ]
    assert vision.num_layers == 4 and vision.get_neurons_of_layer(3) == [0, 1, 2]
    assert vision.get_type_of_neuron(70) == "map_1"
    assert VisionWiring(3, 3, 4).map_shapes == [(3, 3, 4)]  # an int: a single map
    assert VisionWiring(9, 7, np.array([1, 2, 3])).map_shapes == [(9, 7, 1), (5, 4, 2), (3, 2, 3)]


def test_vision_first_map_sees_a_kernel_of_pixels_with_all_channels(vision):
    # Neuron (0, 0, 1) of map_0 = 3 + 1: pixels (0..1, 0..1), both channels.
    assert sorted(sources_of(vision, 4, sensory=True)) == [0, 1, 2, 3, 10, 11, 12, 13]
    # Neuron (2, 3, 0) = 3 + (2*5 + 3)*2: pixels (1..3, 2..4).
    field = [14, 15, 16, 17, 18, 19, 24, 25, 26, 27, 28, 29, 34, 35, 36, 37, 38, 39]
    assert sorted(sources_of(vision, 29, sensory=True)) == field
    assert sorted(set(vision.sensory_synapses()[1].tolist())) == list(range(3, 53))


def test_vision_receptive_fields_downsample_with_stride_two(vision):
    # Neuron (1, 2, 2) of map_1 = 53 + (1*3 + 2)*3 + 2 = 70, centred on map_0 (2, 4):
    # map_0 rows 1..3, columns 3..4 (5 is outside), channels 0..1.
    expected = [19, 20, 21, 22, 29, 30, 31, 32, 39, 40, 41, 42]
    assert sorted(sources_of(vision, 70)) == expected


def test_vision_skip_connections_join_matching_positions_excitatorily(vision):
    # Neuron (1, 1, 0) of map_2 = 80 + (1*2 + 1)*2 = 86, centred on map_1 (2, 2):
    # map_1 rows/columns 1..2, channels 0..2; skip from map_0 (4, 4), both channels.
    inputs = sources_of(vision, 86)
    local = [65, 66, 67, 68, 69, 70, 74, 75, 76, 77, 78, 79]
    assert sorted(inputs) == sorted(local + [51, 52])
    assert inputs[51] == inputs[52] == 1
    # Neuron (0, 0, 1) = 81: map_1 (0..1, 0..1) and skip from map_0 (0, 0) = neurons 3, 4.
    assert sorted(sources_of(vision, 81)) == [3, 4, 53, 54, 55, 56, 57, 58, 62, 63, 64, 65, 66, 67]
    without = VisionWiring(5, 5, (2, 3, 2), input_channels=2, output_size=3, skip_connections=False)
    assert sorted(sources_of(without, 81)) == [53, 54, 55, 56, 57, 58, 62, 63, 64, 65, 66, 67]


def test_vision_output_pools_the_whole_last_map(vision):
    for output in range(3):
        assert sorted(sources_of(vision, output)) == list(range(80, 88))


def test_vision_synapse_counts_follow_the_kernel_formula(vision):
    # Valid kernel rows per output row: 5 -> 5 at stride 1: 2+3+3+3+2 = 13; 5 -> 3 at stride 2:
    # 2+3+2 = 7; 3 -> 2: 2+2 = 4 (the same for columns).
    assert vision.sensory_synapse_count == 13 * 13 * 2 * 2
    skip, readout = 8 * 2, 3 * 8
    assert vision.synapse_count == 7 * 7 * 3 * 2 + 4 * 4 * 2 * 3 + skip + readout
    polarities = vision.synapses()[2]
    assert set(polarities.tolist()) == {-1, 1}  # receptive fields are randomly signed


def test_vision_with_16384_map_neurons_builds_with_memory_proportional_to_synapses():
    tracemalloc.start()
    try:
        wiring = VisionWiring(64, 64, (3, 4), output_size=10)
        wiring.build(64 * 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert wiring.units == 10 + 64 * 64 * 3 + 32 * 32 * 4 == 16394
    assert wiring.sensory_synapse_count == 190 * 190 * 3  # 190 = 2 + 62*3 + 2
    assert wiring.synapse_count == 95 * 95 * 4 * 3 + 10 * 4096  # 95 = 2 + 31*3
    synapses = wiring.synapse_count + wiring.sensory_synapse_count
    assert peak < 200 * synapses  # a dense adjacency alone would take 16394**2 bytes


# ---------------------------------------------------------------------------- language
def test_language_groups_and_defaults_come_from_the_vocabulary_and_hidden_size():
    wiring = LanguageWiring(vocab_size=5, hidden_size=6, num_layers=3, num_heads=3)
    assert wiring.group_names == ["output", "layer_0", "layer_1", "layer_2"]
    assert [wiring.group_size(name) for name in wiring.group_names] == [5, 6, 6, 6]
    assert wiring.output_dim == 5 and wiring.units == 23
    assert wiring.num_layers == 4 and wiring.get_neurons_of_layer(0) == list(range(5, 11))
    assert wiring.get_neurons_of_layer(3) == list(range(5))
    custom = LanguageWiring(100, 8, 2, 2, embedding_size=12, output_size=4)
    custom.build(12)
    assert custom.output_dim == 4 and custom.sensory_synapse_count == 12 * 8


def test_language_layers_connect_block_diagonally_per_head_with_a_residual_path():
    wiring = built(LanguageWiring(5, 6, 3, 3), 6)
    adjacency = wiring.adjacency_matrix
    heads = np.kron(np.eye(3, dtype=int), np.ones((2, 2), int))  # 3 heads of 2 neurons
    layers = [wiring.group(f"layer_{i}") for i in range(3)]
    for lower, upper in zip(layers, layers[1:], strict=False):
        block = adjacency[np.ix_(lower, upper)]
        np.testing.assert_array_equal(block != 0, heads == 1)
        assert np.all(np.diag(block) == 1)  # the residual path is excitatory
    np.testing.assert_array_equal(adjacency[np.ix_(layers[2], range(5))] != 0, np.ones((6, 5)))
    assert wiring.synapse_count == 2 * 3 * 2 * 2 + 6 * 5
    assert np.count_nonzero(adjacency) == wiring.synapse_count
    sensory = wiring.sensory_adjacency_matrix
    assert np.all(sensory[:, layers[0]] != 0) and np.count_nonzero(sensory) == 6 * 6


def test_language_head_fan_in_draws_within_the_head_and_keeps_the_residual():
    wiring = LanguageWiring(4, 16, 2, 2, head_fan_in=3, output_fan_in=5)
    lower, upper = wiring.group("layer_0"), wiring.group("layer_1")
    for j, neuron in enumerate(upper):
        inputs = sources_of(wiring, neuron)
        head = lower[(j // 8) * 8 : (j // 8 + 1) * 8]
        assert set(inputs) <= set(head.tolist())
        assert len(inputs) in (3, 4) and inputs[lower[j]] == 1
    for output in range(4):
        assert len(sources_of(wiring, output)) == 5


# ---------------------------------------------------------------------------- all three
@pytest.mark.parametrize(
    "make, error, name",
    [
        (lambda: SignalProcessingWiring(0, 1, 4), ValueError, "input_size"),
        (lambda: SignalProcessingWiring(8, 4, 4), ValueError, "num_scales"),
        (lambda: SignalProcessingWiring(8, 2, 2.0), TypeError, "neurons_per_scale"),
        (lambda: SignalProcessingWiring(8, 2, 4, window=9), ValueError, "window"),
        (lambda: SignalProcessingWiring(8, 2, 4, output_size=0), ValueError, "output_size"),
        (lambda: SignalProcessingWiring(8, 2, 4, output_fan_in=9), ValueError, "output_fan_in"),
        (lambda: SignalProcessingWiring(8, 2, 4, seed="x"), TypeError, "seed"),
        (lambda: VisionWiring(0, 4, 2), ValueError, "input_height"),
        (lambda: VisionWiring(4, 4, []), ValueError, "channels"),
        (lambda: VisionWiring(4, 4, (2, 0)), ValueError, r"channels\[1\]"),
        (lambda: VisionWiring(4, 4, 2, kernel_size=0), ValueError, "kernel_size"),
        (lambda: VisionWiring(4, 4, 2, stride=True), TypeError, "stride"),
        (lambda: VisionWiring(4, 4, 2, skip_connections=1), TypeError, "skip_connections"),
        (lambda: VisionWiring(4, 4, 2, output_fan_in=33), ValueError, "output_fan_in"),
        (lambda: LanguageWiring(0, 8, 2, 2), ValueError, "vocab_size"),
        (lambda: LanguageWiring(5, 6, 2, 4), ValueError, "num_heads"),
        (lambda: LanguageWiring(5, 6, 0, 2), ValueError, "num_layers"),
        (lambda: LanguageWiring(5, 6, 2, 2, head_fan_in=4), ValueError, "head_fan_in"),
        (lambda: LanguageWiring(5, 6, 2, 2, embedding_size=-1), ValueError, "embedding_size"),
    ],
)
def test_invalid_arguments_are_refused_by_name(make, error, name):
    with pytest.raises(error, match=name):
        make()


@pytest.mark.parametrize("kind", MAKERS)
def test_build_refuses_a_sensory_size_other_than_the_constructor_fixed(kind):
    make, input_dim = MAKERS[kind]
    wiring = make()
    with pytest.raises(ValueError, match="input_dim"):
        wiring.build(input_dim + 1)
    assert not wiring.is_built()
    wiring.build(input_dim)
    assert wiring.input_dim == input_dim and wiring.sensory_synapse_count > 0


def _same_wiring(a, b):
    assert type(a) is type(b)
    assert a.get_config() == b.get_config()
    for x, y in zip(a.synapses(), b.synapses(), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", MAKERS)
def test_config_and_files_round_trip_built_and_unbuilt(kind, tmp_path):
    make, input_dim = MAKERS[kind]
    unbuilt, reference = make(), built(make(), input_dim)
    config = json.loads(json.dumps(unbuilt.get_config()))
    restored = Wiring.from_config(config)
    _same_wiring(restored, unbuilt)
    restored.build(input_dim)  # replays the constructor's draws, then draws the sensory part
    _same_wiring(restored, reference)
    for wiring in (unbuilt, reference):
        wiring.save(tmp_path / "wiring.json")
        _same_wiring(Wiring.load(tmp_path / "wiring.json"), wiring)


@pytest.mark.parametrize("kind", MAKERS)
def test_seed_decides_the_polarities_not_the_structure(kind):
    make, input_dim = MAKERS[kind]
    first, second = built(make(), input_dim), built(make(), input_dim)
    assert first.get_config() == second.get_config()
    args = dict(first.get_config()["args"], seed=7)
    reseeded = built(type(first)(**args), input_dim)
    for a, b in (
        (first.synapses(), reseeded.synapses()),
        (first.sensory_synapses(), reseeded.sensory_synapses()),
    ):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert not np.array_equal(a[2], b[2])
    generator_seeded = type(first)(**dict(args, seed=np.random.default_rng(3)))
    assert isinstance(generator_seeded.get_config()["args"]["seed"], int)


@pytest.mark.parametrize("kind", SMALL)
def test_layered_plot_is_written_with_groups_as_neuron_types(kind, tmp_path):
    make, input_dim = SMALL[kind]
    wiring = built(make(), input_dim)
    graph = wiring.get_graph()
    layers = nx.get_node_attributes(graph, "layer")
    types = nx.get_node_attributes(graph, "neuron_type")
    assert layers["neuron_0"] == wiring.num_layers  # the output is the last column
    assert set(types.values()) == set(wiring.group_names) | {"sensory"}
    path = tmp_path / f"{kind}.png"
    viz.save_wiring_plot(wiring, path, figsize=(4, 3), dpi=50, layout="layered")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fit(model, x, y, steps=60, learning_rate=0.01):
    return train(model, lambda m: mx.mean((m(x)[0] - y) ** 2), steps, learning_rate)


@pytest.mark.parametrize("model_class", [LTC, CfC])
@pytest.mark.parametrize("kind", SMALL)
def test_liquid_model_over_the_wiring_learns_a_tiny_task(kind, model_class):
    # Each sequence shows one random input for 6 steps; the target is a fixed random
    # tanh-projection of it, read after the last step.
    make, input_dim = SMALL[kind]
    wiring = make()
    rng = np.random.default_rng(0)
    mx.random.seed(0)
    shown = rng.normal(size=(16, 1, input_dim)).astype(np.float32)
    teacher = rng.normal(size=(input_dim, wiring.output_dim)) / np.sqrt(input_dim)
    x = mx.array(np.repeat(shown, 6, axis=1))
    y = mx.array(np.tanh(shown[:, 0] @ teacher).astype(np.float32))
    losses = _fit(model_class(input_dim, wiring, return_sequences=False), x, y)
    assert losses[-1] < losses[0] / 5
