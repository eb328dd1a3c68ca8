"""Properties every wiring has, checked with hypothesis over every Wiring subclass.

Each strategy draws a small wiring description (``Spec``): how to construct it, the input
dimension to build it with, and what to add after ``build`` (the plain ``Wiring`` gets random
sensory synapses there). Sizes are kept small so that the whole file runs in seconds.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncps_mlx.wirings import (
    NCP,
    AdaptiveWiring,
    AttentionWiring,
    AutoNCP,
    CrossAttentionWiring,
    DynamicRoutingWiring,
    FullyConnected,
    HierarchicalWiring,
    LanguageWiring,
    MetaWiring,
    MultiScaleWiring,
    Random,
    SignalProcessingWiring,
    VisionWiring,
    Wiring,
    merge_wirings,
    stack_wirings,
)


@dataclass
class Spec:
    make: Callable[[], Wiring]
    input_dim: int
    after_build: Callable[[Wiring], None] = lambda wiring: None

    def built(self) -> Wiring:
        wiring = self.make()
        wiring.build(self.input_dim)
        self.after_build(wiring)
        return wiring


seeds = st.integers(0, 2**32 - 1)
input_dims = st.integers(1, 6)


@st.composite
def fully_connected_specs(draw):
    units = draw(st.integers(1, 8))
    output_dim, seed, self_connections = (
        draw(st.integers(1, units)),
        draw(seeds),
        draw(st.booleans()),
    )
    return Spec(lambda: FullyConnected(units, output_dim, seed, self_connections), draw(input_dims))


@st.composite
def random_specs(draw):
    units = draw(st.integers(1, 8))
    output_dim, seed = draw(st.integers(1, units)), draw(seeds)
    sparsity = draw(st.floats(0.0, 0.95))
    return Spec(lambda: Random(units, output_dim, sparsity, seed), draw(input_dims))


@st.composite
def ncp_specs(draw):
    inter, command, motor = (
        draw(st.integers(1, 6)),
        draw(st.integers(1, 6)),
        draw(st.integers(1, 4)),
    )
    args = dict(
        inter_neurons=inter,
        command_neurons=command,
        motor_neurons=motor,
        sensory_fanout=draw(st.integers(1, inter)),
        inter_fanout=draw(st.integers(1, command)),
        recurrent_command_synapses=draw(st.integers(0, 10)),
        motor_fanin=draw(st.integers(1, command)),
        seed=draw(seeds),
    )
    return Spec(lambda: NCP(**args), draw(input_dims))


@st.composite
def auto_ncp_specs(draw):
    units = draw(st.integers(4, 24))
    output_size, seed = draw(st.integers(1, units - 3)), draw(seeds)
    sparsity = draw(st.floats(0.1, 1.0))
    return Spec(lambda: AutoNCP(units, output_size, sparsity, seed), draw(input_dims))


def synapse_lists(draw, num_sources, num_targets):
    size = draw(st.integers(0, 20))
    src = draw(st.lists(st.integers(0, num_sources - 1), min_size=size, max_size=size))
    dst = draw(st.lists(st.integers(0, num_targets - 1), min_size=size, max_size=size))
    polarity = draw(st.lists(st.sampled_from([-1, 1]), min_size=size, max_size=size))
    return src, dst, polarity


@st.composite
def plain_specs(draw):
    units, input_dim = draw(st.integers(1, 8)), draw(input_dims)
    output_dim = draw(st.none() | st.integers(1, units))
    internal = synapse_lists(draw, units, units)
    sensory = synapse_lists(draw, input_dim, units)

    def make():
        wiring = Wiring(units)
        if output_dim is not None:
            wiring.set_output_dim(output_dim)
        wiring.add_synapses(*internal)
        return wiring

    return Spec(make, input_dim, lambda wiring: wiring.add_sensory_synapses(*sensory))


@st.composite
def multiscale_specs(draw):
    sizes = [draw(st.integers(1, 5)) for _ in range(4)]
    feedback, seed = draw(st.booleans()), draw(seeds)
    return Spec(lambda: MultiScaleWiring(*sizes, feedback=feedback, seed=seed), draw(input_dims))


@st.composite
def hierarchical_specs(draw):
    layers = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    skips, feedback, seed = draw(st.booleans()), draw(st.booleans()), draw(seeds)
    return Spec(
        lambda: HierarchicalWiring(layers, skip_connections=skips, feedback=feedback, seed=seed),
        draw(input_dims),
    )


@st.composite
def attention_specs(draw):
    heads = draw(st.integers(1, 3))
    hidden, ff, seed = heads * draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(seeds)
    return Spec(lambda: AttentionWiring(hidden, heads, ff, seed=seed), draw(input_dims))


@st.composite
def cross_attention_specs(draw):
    heads = draw(st.integers(1, 3))
    sizes = [heads * draw(st.integers(1, 3)) for _ in range(3)]
    seed = draw(seeds)
    return Spec(lambda: CrossAttentionWiring(*sizes, heads, seed=seed), draw(input_dims))


@st.composite
def signal_specs(draw):
    length = draw(st.integers(2, 12))
    scales = draw(st.integers(1, max(1, int(np.log2(length - 1)) + 1 if length > 1 else 1)))
    per_scale, window, seed = draw(st.integers(1, 6)), draw(st.integers(1, length)), draw(seeds)
    return Spec(
        lambda: SignalProcessingWiring(length, scales, per_scale, window=window, seed=seed), length
    )


@st.composite
def vision_specs(draw):
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    channels = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    kernel, stride, colours = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
    )
    seed = draw(seeds)
    return Spec(
        lambda: VisionWiring(height, width, channels, kernel, colours, stride, seed=seed),
        height * width * colours,
    )


@st.composite
def language_specs(draw):
    heads = draw(st.integers(1, 3))
    hidden, layers = heads * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    vocab, seed = draw(st.integers(1, 5)), draw(seeds)
    return Spec(lambda: LanguageWiring(vocab, hidden, layers, heads, seed=seed), hidden)


@st.composite
def composed_specs(draw):
    first = FullyConnected(draw(st.integers(1, 4)), erev_init_seed=draw(seeds))
    second = AutoNCP(draw(st.integers(5, 9)), 1, seed=draw(seeds))
    if draw(st.booleans()):
        return Spec(lambda: stack_wirings(first, second), draw(input_dims))
    fan_in, seed = draw(st.integers(0, 2)), draw(seeds)
    return Spec(lambda: merge_wirings(second, first, fan_in, seed=seed), draw(input_dims))


@st.composite
def routing_specs(draw):
    capsules, dim, seed = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(seeds)
    recurrence = draw(st.booleans())
    return Spec(
        lambda: DynamicRoutingWiring(capsules, dim, capsule_recurrence=recurrence, seed=seed),
        draw(input_dims),
    )


@st.composite
def adaptive_specs(draw):
    units, seed, updates = draw(st.integers(2, 8)), draw(seeds), draw(st.integers(0, 2))
    scores = np.random.default_rng(seed).random((updates, units, units))

    def make():
        wiring = AdaptiveWiring(units, prune_fraction=0.3, seed=seed)
        for score in scores:
            wiring.update_connectivity(score)
        return wiring

    return Spec(make, draw(input_dims))


@st.composite
def meta_specs(draw):
    fast, slow, out = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    seed = draw(seeds)
    return Spec(lambda: MetaWiring(fast, slow, out, seed=seed), draw(input_dims))


STRATEGIES = {
    "FullyConnected": fully_connected_specs(),
    "Random": random_specs(),
    "NCP": ncp_specs(),
    "AutoNCP": auto_ncp_specs(),
    "Wiring": plain_specs(),
    "MultiScaleWiring": multiscale_specs(),
    "HierarchicalWiring": hierarchical_specs(),
    "AttentionWiring": attention_specs(),
    "CrossAttentionWiring": cross_attention_specs(),
    "SignalProcessingWiring": signal_specs(),
    "VisionWiring": vision_specs(),
    "LanguageWiring": language_specs(),
    "ComposedWiring": composed_specs(),
    "DynamicRoutingWiring": routing_specs(),
    "AdaptiveWiring": adaptive_specs(),
    "MetaWiring": meta_specs(),
}
every_wiring = pytest.mark.parametrize("kind", list(STRATEGIES))
few_examples = settings(max_examples=40, deadline=None)


def same_arrays(first, second) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


# ---------------------------------------------------------------- properties


@every_wiring
@few_examples
@given(data=st.data())
def test_synapse_counts_equal_the_nonzeros_of_the_dense_matrices(kind, data):
    wiring = data.draw(STRATEGIES[kind]).built()
    assert wiring.synapse_count == np.count_nonzero(wiring.adjacency_matrix)
    assert wiring.sensory_synapse_count == np.count_nonzero(wiring.sensory_adjacency_matrix)
    assert wiring.adjacency_matrix.shape == (wiring.units, wiring.units)
    assert wiring.sensory_adjacency_matrix.shape == (wiring.input_dim, wiring.units)


@every_wiring
@few_examples
@given(data=st.data())
def test_sparse_synapses_are_sorted_unique_signed_and_match_the_dense_matrices(kind, data):
    wiring = data.draw(STRATEGIES[kind]).built()
    for (src, dst, polarity), dense in [
        (wiring.synapses(), wiring.adjacency_matrix),
        (wiring.sensory_synapses(), wiring.sensory_adjacency_matrix),
    ]:
        assert set(polarity.tolist()) <= {-1, 1}
        assert set(np.unique(dense).tolist()) <= {-1, 0, 1}
        keys = src.astype(np.int64) * wiring.units + dst
        assert np.all(np.diff(keys) > 0)  # sorted by (src, dst), no duplicates
        rows, cols = np.nonzero(dense)  # row-major order equals (src, dst) order
        assert rows.tolist() == src.tolist() and cols.tolist() == dst.tolist()
        assert dense[rows, cols].tolist() == polarity.tolist()


@every_wiring
@few_examples
@given(data=st.data(), build=st.booleans())
def test_config_round_trip_through_json_is_exact(kind, data, build):
    spec = data.draw(STRATEGIES[kind])
    original = spec.built() if build else spec.make()
    config = json.loads(json.dumps(original.get_config()))
    restored = Wiring.from_config(config)
    assert type(restored) is type(original)
    assert (restored.units, restored.input_dim, restored.output_dim) == (
        original.units,
        original.input_dim,
        original.output_dim,
    )
    assert same_arrays(restored.synapses(), original.synapses())
    assert restored.get_config() == config
    if not build:  # the restored wiring draws the same sensory synapses as the original
        for wiring in (original, restored):
            wiring.build(spec.input_dim)
            spec.after_build(wiring)
        assert same_arrays(restored.synapses(), original.synapses())
    assert same_arrays(restored.sensory_synapses(), original.sensory_synapses())


@every_wiring
@few_examples
@given(data=st.data())
def test_graph_has_a_node_per_neuron_and_input_and_an_edge_per_synapse(kind, data):
    wiring = data.draw(STRATEGIES[kind]).built()
    graph = wiring.get_graph()
    assert graph.number_of_nodes() == wiring.units + wiring.input_dim
    assert graph.number_of_edges() == wiring.synapse_count + wiring.sensory_synapse_count
    expected = {
        (f"neuron_{s}", f"neuron_{d}", p)
        for s, d, p in zip(*map(np.ndarray.tolist, wiring.synapses()), strict=True)
    }
    expected |= {
        (f"sensory_{s}", f"neuron_{d}", p)
        for s, d, p in zip(*map(np.ndarray.tolist, wiring.sensory_synapses()), strict=True)
    }
    assert {(s, d, attrs["sign"]) for s, d, attrs in graph.edges(data=True)} == expected
    names = {1: "excitatory", -1: "inhibitory"}
    assert all(attrs["polarity"] == names[attrs["sign"]] for _, _, attrs in graph.edges(data=True))


@every_wiring
@few_examples
@given(data=st.data())
def test_neuron_types_agree_with_get_type_of_neuron_and_motor_neurons_come_first(kind, data):
    wiring = data.draw(STRATEGIES[kind]).built()
    types = wiring.neuron_types()
    assert types.tolist() == [wiring.get_type_of_neuron(i) for i in range(wiring.units)]
    motors = wiring.output_dim or 0  # ncps convention: motor neurons are 0..output_dim-1
    if motors:  # ... and they form a type of their own ("motor", or the output group's name)
        assert np.flatnonzero(types == types[0]).tolist() == list(range(motors))
    layers = [wiring.get_neurons_of_layer(layer) for layer in range(wiring.num_layers)]
    assert sorted(sum(layers, [])) == list(range(wiring.units))  # layers partition the neurons


@every_wiring
@few_examples
@given(data=st.data())
def test_mask_is_the_absolute_adjacency(kind, data):
    wiring = data.draw(STRATEGIES[kind]).built()
    np.testing.assert_array_equal(np.array(wiring.mask()), np.abs(wiring.adjacency_matrix))
    np.testing.assert_array_equal(
        np.array(wiring.mask(sensory=True)), np.abs(wiring.sensory_adjacency_matrix)
    )


@every_wiring
@few_examples
@given(data=st.data())
def test_building_again_with_the_same_input_dim_changes_nothing(kind, data):
    spec = data.draw(STRATEGIES[kind])
    wiring = spec.built()
    before = wiring.get_config()
    wiring.build(spec.input_dim)
    assert wiring.get_config() == before


@every_wiring
@few_examples
@given(data=st.data())
def test_same_arguments_build_the_same_wiring(kind, data):
    spec = data.draw(STRATEGIES[kind])
    assert spec.built().get_config() == spec.built().get_config()


@settings(max_examples=60, deadline=None)
@given(
    units=st.integers(1, 6),
    operations=st.lists(
        st.tuples(
            st.booleans(),
            st.lists(
                st.tuples(st.integers(0, 5), st.integers(0, 5), st.sampled_from([-1, 1])),
                max_size=6,
            ),
        ),
        max_size=12,
    ),
)
def test_any_mix_of_single_and_bulk_adds_keeps_the_last_polarity_of_each_pair(units, operations):
    wiring, reference = Wiring(units), {}
    for single, triples in operations:
        triples = [(s % units, d % units, p) for s, d, p in triples]
        if single:
            for s, d, p in triples:
                wiring.add_synapse(s, d, p)
        elif triples:
            wiring.add_synapses(*zip(*triples, strict=True))
        reference.update({(s, d): p for s, d, p in triples})
    keys = sorted(reference)
    src, dst, polarity = wiring.synapses()
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == keys
    assert polarity.tolist() == [reference[key] for key in keys]
    assert wiring.synapse_count == len(reference)
