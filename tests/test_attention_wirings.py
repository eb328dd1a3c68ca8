"""Specification of AttentionWiring and CrossAttentionWiring: groups, per-head blocks, draws.

Expected group ranges, head slices and synapse counts are computed here from the documented
rules (sizes in neuron-id order, ``head_dim`` consecutive neurons per head, the overlap rule for
output slices), never read back from the wiring under test.
"""

import json
import tracemalloc

import matplotlib

matplotlib.use("Agg")

import matplotlib.figure  # noqa: E402
import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from training import train  # noqa: E402

from ncps_mlx import LTC, CfC
from ncps_mlx.viz import save_wiring_plot
from ncps_mlx.wirings import Wiring
from ncps_mlx.wirings.attention import AttentionWiring, CrossAttentionWiring

# ---------------------------------------------------------------- helpers


def ranges(**sizes):
    """Consecutive id ranges for groups listed in neuron-id order."""
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = range(start, start + size)
        start += size
    return out


def attention_ranges(hidden, ff, output=None):
    return ranges(output=output or hidden, query=hidden, key=hidden, value=hidden, ff=ff)


def cross_ranges(query, key, value, output=None):
    return ranges(output=output or value, query=query, key=key, value=value)


def block(wiring, groups, source, target):
    """The ``|source| x |target|`` polarity block of the adjacency matrix."""
    return wiring.adjacency_matrix[np.ix_(groups[source], groups[target])]


def per_head_mask(source_size, target_size, heads):
    """Block-diagonal mask: head h's source slice to head h's target slice, every pair."""
    ones = np.ones((source_size // heads, target_size // heads), int)
    return np.kron(np.eye(heads, dtype=int), ones)


def built(wiring, input_dim):
    wiring.build(input_dim)
    return wiring


def attention_synapse_count(hidden, heads, ff, output, ff_fanin):
    head_dim = hidden // heads
    per_head_output = sum(-(-(h + 1) * output // heads) - h * output // heads for h in range(heads))
    into_ff = ff * (output if ff_fanin is None else min(ff_fanin, output))
    into_output = output * (ff if ff_fanin is None else min(ff_fanin, ff))
    return 2 * hidden * head_dim + head_dim * per_head_output + output + into_ff + into_output


def cross_synapse_count(query, key, value, heads, output, query_fanin):
    per_head_output = sum(-(-(h + 1) * output // heads) - h * output // heads for h in range(heads))
    into_query = query * (output if query_fanin is None else min(query_fanin, output))
    gated = (query * key + key * value) // heads
    return into_query + gated + (value // heads) * per_head_output + output


# ---------------------------------------------------------------- AttentionWiring structure


def test_attention_groups_are_output_query_key_value_ff_in_id_order():
    wiring = AttentionWiring(hidden_size=6, num_heads=3, ff_size=4)
    expected = ["output"] * 6 + ["query"] * 6 + ["key"] * 6 + ["value"] * 6 + ["ff"] * 4
    assert wiring.units == 28
    assert wiring.output_dim == 6
    assert wiring.neuron_types().tolist() == expected
    assert [wiring.get_type_of_neuron(i) for i in range(28)] == expected
    assert wiring.group_names == ["output", "query", "key", "value", "ff"]
    assert wiring.head_dim == 2


def test_attention_layers_run_query_key_value_then_output_with_its_mlp():
    groups = attention_ranges(hidden=4, ff=3)
    wiring = AttentionWiring(4, 2, 3)
    assert wiring.num_layers == 4
    assert wiring.get_neurons_of_layer(0) == list(groups["query"])
    assert wiring.get_neurons_of_layer(1) == list(groups["key"])
    assert wiring.get_neurons_of_layer(2) == list(groups["value"])
    assert wiring.get_neurons_of_layer(3) == list(groups["output"]) + list(groups["ff"])


@pytest.mark.parametrize("hidden,heads", [(4, 1), (6, 3), (8, 2), (8, 8)])
@pytest.mark.parametrize("pair", [("query", "key"), ("key", "value"), ("value", "output")])
def test_attention_connects_each_head_only_to_the_same_head_and_excitatory(hidden, heads, pair):
    groups = attention_ranges(hidden, ff=3)
    wiring = AttentionWiring(hidden, heads, 3, seed=5)
    assert np.array_equal(block(wiring, groups, *pair), per_head_mask(hidden, hidden, heads))


def test_attention_head_slices_match_query_key_value_by_position():
    wiring = AttentionWiring(hidden_size=6, num_heads=3, ff_size=2)
    assert wiring.head_neurons("query", 1).tolist() == [8, 9]
    assert wiring.head_neurons("key", 2).tolist() == [16, 17]
    assert wiring.head_neurons("value", 0).tolist() == [18, 19]
    assert wiring.head_neurons("output", 2).tolist() == [4, 5]


def test_attention_without_fan_ins_has_exactly_the_documented_synapses():
    hidden, heads, ff = 4, 2, 3
    groups = attention_ranges(hidden, ff)
    expected = np.zeros((19, 19), int)
    expected[np.ix_(groups["query"], groups["key"])] = per_head_mask(hidden, hidden, heads)
    expected[np.ix_(groups["key"], groups["value"])] = per_head_mask(hidden, hidden, heads)
    expected[np.ix_(groups["value"], groups["output"])] = per_head_mask(hidden, hidden, heads)
    expected[groups["output"], groups["output"]] = 1
    expected[np.ix_(groups["output"], groups["ff"])] = 1
    expected[np.ix_(groups["ff"], groups["output"])] = 1
    wiring = built(AttentionWiring(hidden, heads, ff), input_dim=3)
    assert np.array_equal(np.abs(wiring.adjacency_matrix), expected)
    sensory = np.zeros((3, 19), int)
    for name in ("query", "key", "value"):
        sensory[:, groups[name]] = 1
    assert np.array_equal(np.abs(wiring.sensory_adjacency_matrix), sensory)


def test_attention_feed_forward_has_random_polarity_and_attention_path_is_excitatory():
    groups = attention_ranges(hidden=16, ff=32)
    wiring = built(AttentionWiring(16, 4, 32, seed=3), input_dim=8)
    for pair in (("output", "ff"), ("ff", "output")):
        signs = block(wiring, groups, *pair).ravel()
        assert set(signs.tolist()) == {-1, 1}
        assert abs(np.mean(signs == 1) - 2 / 3) < 0.06
    for pair in (("query", "key"), ("key", "value"), ("value", "output")):
        assert set(block(wiring, groups, *pair).ravel().tolist()) <= {0, 1}
    assert np.all(np.diag(block(wiring, groups, "output", "output")) == 1)
    sensory = wiring.sensory_adjacency_matrix[:, groups["query"].start :]
    assert set(sensory[:, :48].ravel().tolist()) == {-1, 1}


@pytest.mark.parametrize("ff_fanin", [1, 3, 100])
def test_attention_ff_fanin_draws_that_many_distinct_sources_per_neuron(ff_fanin):
    hidden, ff, output = 8, 5, 4
    groups = attention_ranges(hidden, ff, output)
    wiring = AttentionWiring(hidden, 2, ff, output_size=output, ff_fanin=ff_fanin)
    into_ff = np.abs(block(wiring, groups, "output", "ff"))
    into_output = np.abs(block(wiring, groups, "ff", "output"))
    assert np.all(into_ff.sum(axis=0) == min(ff_fanin, output))
    assert np.all(into_output.sum(axis=0) == min(ff_fanin, ff))


@pytest.mark.parametrize("sensory_fanin,input_dim", [(1, 5), (3, 5), (9, 5)])
def test_attention_sensory_fanin_feeds_only_query_key_value(sensory_fanin, input_dim):
    groups = attention_ranges(hidden=6, ff=2)
    wiring = built(AttentionWiring(6, 3, 2, sensory_fanin=sensory_fanin), input_dim)
    fan_in = np.abs(wiring.sensory_adjacency_matrix).sum(axis=0)
    qkv = np.r_[groups["query"], groups["key"], groups["value"]]
    assert np.all(fan_in[qkv] == min(sensory_fanin, input_dim))
    assert np.all(fan_in[np.r_[groups["output"], groups["ff"]]] == 0)


def test_attention_output_size_gives_each_output_neuron_the_heads_overlapping_its_share():
    # 4 heads over 3 output neurons: head h covers [h/4, (h+1)/4), neuron j [j/3, (j+1)/3).
    hidden, heads, output = 8, 4, 3
    groups = attention_ranges(hidden, ff=2, output=output)
    wiring = AttentionWiring(hidden, heads, 2, output_size=output)
    heads_of_output = {0: [0, 1], 1: [1, 2], 2: [2, 3]}
    expected = np.zeros((hidden, output), int)
    for neuron, owners in heads_of_output.items():
        for head in owners:
            expected[2 * head : 2 * head + 2, neuron] = 1
    assert np.array_equal(block(wiring, groups, "value", "output"), expected)
    assert wiring.output_dim == output


def test_attention_single_output_neuron_pools_every_head():
    groups = attention_ranges(hidden=6, ff=2, output=1)
    wiring = AttentionWiring(6, 3, 2, output_size=1)
    assert np.array_equal(block(wiring, groups, "value", "output"), np.ones((6, 1), int))


@pytest.mark.parametrize(
    "hidden,heads,ff,output,ff_fanin,sensory_fanin,input_dim",
    [(4, 2, 3, None, None, None, 3), (12, 3, 10, 5, 2, 4, 7), (16, 16, 4, 1, 8, 1, 2)],
)
def test_attention_synapse_counts_follow_the_formula(
    hidden, heads, ff, output, ff_fanin, sensory_fanin, input_dim
):
    wiring = AttentionWiring(hidden, heads, ff, output, sensory_fanin, ff_fanin)
    wiring.build(input_dim)
    out = hidden if output is None else output
    assert wiring.synapse_count == attention_synapse_count(hidden, heads, ff, out, ff_fanin)
    per_neuron = input_dim if sensory_fanin is None else min(sensory_fanin, input_dim)
    assert wiring.sensory_synapse_count == 3 * hidden * per_neuron


# ---------------------------------------------------------------- CrossAttentionWiring structure


def test_cross_attention_groups_are_output_query_key_value_in_id_order():
    wiring = CrossAttentionWiring(query_size=4, key_size=6, value_size=8, num_heads=2)
    expected = ["output"] * 8 + ["query"] * 4 + ["key"] * 6 + ["value"] * 8
    assert wiring.units == 26
    assert wiring.output_dim == 8
    assert wiring.neuron_types().tolist() == expected
    assert wiring.group_names == ["output", "query", "key", "value"]


def test_cross_attention_layers_run_key_value_then_output_with_its_query():
    groups = cross_ranges(4, 6, 8)
    wiring = CrossAttentionWiring(4, 6, 8, 2)
    assert wiring.num_layers == 3
    assert wiring.get_neurons_of_layer(0) == list(groups["key"])
    assert wiring.get_neurons_of_layer(1) == list(groups["value"])
    assert wiring.get_neurons_of_layer(2) == list(groups["output"]) + list(groups["query"])


@pytest.mark.parametrize("sizes,heads", [((4, 6, 8), 2), ((3, 3, 3), 3), ((2, 4, 6), 1)])
def test_cross_attention_connects_each_head_only_to_the_same_head(sizes, heads):
    query, key, value = sizes
    groups = cross_ranges(query, key, value)
    wiring = CrossAttentionWiring(query, key, value, heads, seed=9)
    expected = {
        ("query", "key"): per_head_mask(query, key, heads),
        ("key", "value"): per_head_mask(key, value, heads),
        ("value", "output"): per_head_mask(value, value, heads),
    }
    for pair, mask in expected.items():
        assert np.array_equal(block(wiring, groups, *pair), mask), pair


def test_cross_attention_without_fan_ins_has_exactly_the_documented_synapses():
    query, key, value, heads = 2, 4, 6, 2
    groups = cross_ranges(query, key, value)
    expected = np.zeros((18, 18), int)
    expected[np.ix_(groups["output"], groups["query"])] = 1
    expected[np.ix_(groups["query"], groups["key"])] = per_head_mask(query, key, heads)
    expected[np.ix_(groups["key"], groups["value"])] = per_head_mask(key, value, heads)
    expected[np.ix_(groups["value"], groups["output"])] = per_head_mask(value, value, heads)
    expected[groups["output"], groups["output"]] = 1
    wiring = built(CrossAttentionWiring(query, key, value, heads), input_dim=5)
    assert np.array_equal(np.abs(wiring.adjacency_matrix), expected)
    sensory = np.zeros((5, 18), int)
    sensory[:, groups["key"]] = 1
    sensory[:, groups["value"]] = 1
    assert np.array_equal(np.abs(wiring.sensory_adjacency_matrix), sensory)


def test_cross_attention_query_projection_is_random_and_the_gates_excitatory():
    groups = cross_ranges(24, 8, 8)
    wiring = built(CrossAttentionWiring(24, 8, 8, 4, seed=2), input_dim=6)
    signs = block(wiring, groups, "output", "query").ravel()
    assert set(signs.tolist()) == {-1, 1}
    assert abs(np.mean(signs == 1) - 2 / 3) < 0.08
    for pair in (("query", "key"), ("key", "value"), ("value", "output")):
        assert set(block(wiring, groups, *pair).ravel().tolist()) <= {0, 1}
    context = wiring.sensory_adjacency_matrix[:, groups["key"].start :]
    assert set(context.ravel().tolist()) == {-1, 1}


@pytest.mark.parametrize("context_fanin,query_fanin", [(1, 1), (2, 3), (50, 50)])
def test_cross_attention_fan_ins_draw_that_many_distinct_sources(context_fanin, query_fanin):
    groups = cross_ranges(4, 4, 6, output=3)
    wiring = CrossAttentionWiring(4, 4, 6, 2, 3, context_fanin, query_fanin)
    wiring.build(5)
    into_query = np.abs(block(wiring, groups, "output", "query")).sum(axis=0)
    assert np.all(into_query == min(query_fanin, 3))
    fan_in = np.abs(wiring.sensory_adjacency_matrix).sum(axis=0)
    assert np.all(fan_in[np.r_[groups["key"], groups["value"]]] == min(context_fanin, 5))
    assert np.all(fan_in[np.r_[groups["output"], groups["query"]]] == 0)


@pytest.mark.parametrize(
    "sizes,heads,output,query_fanin,context_fanin,input_dim",
    [((4, 6, 8), 2, None, None, None, 3), ((3, 6, 9), 3, 2, 1, 2, 4), ((8, 8, 8), 8, 5, 9, 9, 2)],
)
def test_cross_attention_synapse_counts_follow_the_formula(
    sizes, heads, output, query_fanin, context_fanin, input_dim
):
    query, key, value = sizes
    wiring = CrossAttentionWiring(*sizes, heads, output, context_fanin, query_fanin)
    wiring.build(input_dim)
    out = value if output is None else output
    expected = cross_synapse_count(query, key, value, heads, out, query_fanin)
    assert wiring.synapse_count == expected
    per_neuron = input_dim if context_fanin is None else min(context_fanin, input_dim)
    assert wiring.sensory_synapse_count == (key + value) * per_neuron


def test_large_wirings_are_built_without_dense_matrices():
    # 20,480 and 16,640 neurons: a dense int32 adjacency would take 1.7 GB and 1.1 GB.
    tracemalloc.start()
    try:
        attention = AttentionWiring(4096, 64, 4096, sensory_fanin=8, ff_fanin=8, seed=0)
        attention.build(256)
        cross = CrossAttentionWiring(4096, 4096, 4096, 64, 4096, 8, 8, seed=0)
        cross.build(256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, peak
    assert attention.synapse_count == attention_synapse_count(4096, 64, 4096, 4096, 8)
    assert attention.sensory_synapse_count == 3 * 4096 * 8
    assert cross.synapse_count == cross_synapse_count(4096, 4096, 4096, 64, 4096, 8)
    assert cross.sensory_synapse_count == 2 * 4096 * 8


# ---------------------------------------------------------------- seeds, config, files

MAKERS = {
    "attention": lambda seed=7: AttentionWiring(8, 2, 6, output_size=3, ff_fanin=2, seed=seed),
    "attention_fanin": lambda seed=7: AttentionWiring(4, 4, 3, sensory_fanin=2, seed=seed),
    "cross": lambda seed=7: CrossAttentionWiring(4, 6, 8, 2, 3, 2, 2, seed=seed),
}


def all_synapses(wiring):
    return [np.stack(wiring.synapses()), np.stack(wiring.sensory_synapses())]


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_same_seed_gives_identical_synapses_and_different_seeds_differ(make):
    first, again = all_synapses(built(make(3), 5)), all_synapses(built(make(3), 5))
    other = all_synapses(built(make(4), 5))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other, strict=True)
    )


def test_seed_changes_only_the_random_blocks():
    groups = attention_ranges(hidden=8, ff=4)
    one, two = AttentionWiring(8, 2, 4, seed=1), AttentionWiring(8, 2, 4, seed=2)
    for pair in (("query", "key"), ("key", "value"), ("value", "output"), ("output", "output")):
        assert np.array_equal(block(one, groups, *pair), block(two, groups, *pair))
    assert not np.array_equal(
        block(one, groups, "output", "ff"), block(two, groups, "output", "ff")
    )


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_built_config_round_trips_through_json_and_files(tmp_path, make):
    wiring = built(make(), 5)
    config = json.loads(json.dumps(wiring.get_config()))
    restored = Wiring.from_config(config)
    assert type(restored) is type(wiring)
    assert restored.get_config() == wiring.get_config()
    wiring.save(tmp_path / "wiring.json")
    loaded = Wiring.load(tmp_path / "wiring.json")
    assert type(loaded) is type(wiring)
    assert loaded.get_config() == wiring.get_config()
    assert loaded.neuron_types().tolist() == wiring.neuron_types().tolist()


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_unbuilt_config_restores_a_wiring_that_builds_like_the_original(make):
    config = json.loads(json.dumps(make().get_config()))
    restored = type(make()).from_config(config)
    assert not restored.is_built()
    assert built(restored, 5).get_config() == built(make(), 5).get_config()


@pytest.mark.parametrize("make", [AttentionWiring, CrossAttentionWiring])
def test_generator_and_none_seeds_are_stored_as_ints_that_rebuild_the_same_wiring(make):
    args = (8, 2, 4) if make is AttentionWiring else (4, 4, 4, 2)
    generator_seed = int(np.random.default_rng(11).integers(0, 2**32))
    from_generator = built(make(*args, seed=np.random.default_rng(11)), 3)
    assert from_generator.get_config() == built(make(*args, seed=generator_seed), 3).get_config()
    fresh = built(make(*args, seed=None), 3)
    seed = fresh.get_config()["args"]["seed"]
    assert isinstance(seed, int)
    assert built(make(*args, seed=seed), 3).get_config() == fresh.get_config()


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs,error,name",
    [
        ({"hidden_size": 6, "num_heads": 4}, ValueError, "hidden_size"),
        ({"hidden_size": 0}, ValueError, "hidden_size"),
        ({"hidden_size": 4.0}, TypeError, "hidden_size"),
        ({"num_heads": 0}, ValueError, "num_heads"),
        ({"num_heads": True}, TypeError, "num_heads"),
        ({"ff_size": 0}, ValueError, "ff_size"),
        ({"ff_size": "4"}, TypeError, "ff_size"),
        ({"output_size": 0}, ValueError, "output_size"),
        ({"sensory_fanin": 0}, ValueError, "sensory_fanin"),
        ({"ff_fanin": 1.5}, TypeError, "ff_fanin"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "x"}, TypeError, "seed"),
    ],
)
def test_attention_rejects_bad_arguments_naming_them(kwargs, error, name):
    args = {"hidden_size": 8, "num_heads": 2, "ff_size": 4, **kwargs}
    with pytest.raises(error, match=name):
        AttentionWiring(**args)


@pytest.mark.parametrize(
    "kwargs,error,name",
    [
        ({"query_size": 5}, ValueError, "query_size"),
        ({"key_size": 3}, ValueError, "key_size"),
        ({"value_size": 7}, ValueError, "value_size"),
        ({"value_size": None}, TypeError, "value_size"),
        ({"num_heads": -2}, ValueError, "num_heads"),
        ({"output_size": 2.0}, TypeError, "output_size"),
        ({"context_fanin": 0}, ValueError, "context_fanin"),
        ({"query_fanin": 0}, ValueError, "query_fanin"),
        ({"seed": 2**32}, ValueError, "seed"),
    ],
)
def test_cross_attention_rejects_bad_arguments_naming_them(kwargs, error, name):
    args = {"query_size": 4, "key_size": 4, "value_size": 4, "num_heads": 2, **kwargs}
    with pytest.raises(error, match=name):
        CrossAttentionWiring(**args)


def test_head_neurons_rejects_unheaded_groups_and_heads_out_of_range():
    wiring = AttentionWiring(4, 2, 3)
    with pytest.raises(ValueError, match="group"):
        wiring.head_neurons("ff", 0)
    with pytest.raises(ValueError, match="head"):
        wiring.head_neurons("query", 2)


# ---------------------------------------------------------------- plots and training


@pytest.mark.parametrize(
    "wiring,labels",
    [
        (AttentionWiring(4, 2, 3), ["Query", "Key", "Value", "Output", "Ff"]),
        (CrossAttentionWiring(2, 2, 4, 2), ["Key", "Value", "Output", "Query"]),
    ],
    ids=["attention", "cross"],
)
def test_save_wiring_plot_writes_a_png_with_the_groups_as_legend(
    tmp_path, monkeypatch, wiring, labels
):
    saved = []
    original = matplotlib.figure.Figure.savefig

    def spy(figure, *args, **kwargs):
        saved.append(figure)
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    wiring.build(3)
    path = tmp_path / "wiring.png"
    save_wiring_plot(wiring, path, layout="layered")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    legend = saved[0].axes[0].get_legend()
    expected = [f"{name} neurons" for name in ["Sensory"] + labels]
    assert [text.get_text() for text in legend.get_texts()] == expected


def sine_task():
    rng = np.random.default_rng(0)
    t = 0.3 * np.arange(16)[None] + rng.uniform(0, 2 * np.pi, (8, 1))
    x = mx.array(np.stack([np.sin(t), np.cos(t)], axis=-1).astype(np.float32))
    return x, mx.array(np.sin(t + 0.8)[..., None].astype(np.float32))


TRAINED = {
    "attention": lambda: AttentionWiring(8, 2, 8, output_size=1, seed=0),
    "cross": lambda: CrossAttentionWiring(4, 4, 4, 2, output_size=1, seed=0),
}


@pytest.mark.parametrize("model_class", [LTC, CfC])
@pytest.mark.parametrize("make", TRAINED.values(), ids=TRAINED.keys())
def test_ltc_and_cfc_over_the_wiring_learn_a_phase_shifted_sine(make, model_class):
    mx.random.seed(0)
    x, target = sine_task()
    model = model_class(2, make())
    assert model.output_size == 1
    losses = train(model, lambda m: mx.mean((m(x)[0] - target) ** 2), 40, 0.02)
    assert np.all(np.isfinite(losses))
    assert losses[-1] <= losses[0] / 5, (losses[0], losses[-1])
