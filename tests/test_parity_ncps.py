"""The classic wirings equal ncps 1.0.1's element for element (same seeds, same draws)."""

import numpy as np
import pytest

import ncps_mlx.wirings as ours

ncps_wirings = pytest.importorskip(
    "ncps.wirings", reason="ncps==1.0.1 (extra 'parity') not installed"
)

pytestmark = pytest.mark.parity


def assert_same_matrices(reference, wiring):
    np.testing.assert_array_equal(wiring.adjacency_matrix, reference.adjacency_matrix)
    np.testing.assert_array_equal(
        wiring.sensory_adjacency_matrix, reference.sensory_adjacency_matrix
    )
    assert wiring.synapse_count == int(np.abs(reference.adjacency_matrix).sum())
    assert wiring.sensory_synapse_count == int(np.abs(reference.sensory_adjacency_matrix).sum())
    assert wiring.output_dim == reference.output_dim
    for neuron in range(wiring.units):
        assert wiring.get_type_of_neuron(neuron) == reference.get_type_of_neuron(neuron)


def build_both(name, args, kwargs, input_dim):
    reference = getattr(ncps_wirings, name)(*args, **kwargs)
    reference.build(input_dim)
    wiring = getattr(ours, name)(*args, **kwargs)
    wiring.build(input_dim)
    return reference, wiring


@pytest.mark.parametrize("units", [1, 2, 5, 16, 33])
@pytest.mark.parametrize("self_connections", [True, False])
@pytest.mark.parametrize("seed", [1111, 0, 7])
def test_fully_connected_equals_ncps(units, self_connections, seed):
    kwargs = {"erev_init_seed": seed, "self_connections": self_connections}
    output_dim = max(1, units // 2)
    assert_same_matrices(*build_both("FullyConnected", (units, output_dim), kwargs, input_dim=3))


@pytest.mark.parametrize("units", [1, 3, 10, 40])
@pytest.mark.parametrize("sparsity_level", [0.0, 0.3, 0.75, 0.95])
@pytest.mark.parametrize("seed", [1111, 5, 123456])
@pytest.mark.parametrize("input_dim", [1, 7])
def test_random_equals_ncps(units, sparsity_level, seed, input_dim):
    kwargs = {"sparsity_level": sparsity_level, "random_seed": seed}
    assert_same_matrices(*build_both("Random", (units,), kwargs, input_dim))


def test_random_equals_ncps_where_numpy_switches_sampling_algorithm():
    # 160*160 = 25600 > 10000 candidates: numpy's choice uses its tail shuffle for dense draws
    # and Floyd's algorithm for sparse ones; both must match.
    for sparsity_level in (0.5, 0.99):
        assert_same_matrices(
            *build_both("Random", (160, 4), {"sparsity_level": sparsity_level}, 120)
        )


NCP_CASES = [
    # inter, command, motor, sensory_fanout, inter_fanout, recurrent, motor_fanin
    (10, 8, 3, 4, 4, 6, 4),
    (20, 12, 5, 7, 3, 10, 3),
    (6, 5, 2, 6, 1, 0, 5),
    (3, 2, 1, 1, 1, 1, 1),  # orphans in every layer
    (50, 30, 10, 2, 2, 40, 2),
    (100, 5, 2, 3, 4, 3, 1),  # ncps clips the inter->command fix-up fan-in by the command count
]


@pytest.mark.parametrize("case", NCP_CASES)
@pytest.mark.parametrize("seed", [22222, 1, 99])
@pytest.mark.parametrize("input_dim", [1, 4, 24])
def test_ncp_equals_ncps(case, seed, input_dim):
    assert_same_matrices(*build_both("NCP", case, {"seed": seed}, input_dim))


@pytest.mark.parametrize("units,output_size", [(4, 1), (8, 2), (28, 4), (64, 8), (150, 20)])
@pytest.mark.parametrize("sparsity_level", [0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("seed", [22222, 3])
def test_autoncp_equals_ncps(units, output_size, sparsity_level, seed):
    kwargs = {"sparsity_level": sparsity_level, "seed": seed}
    assert_same_matrices(*build_both("AutoNCP", (units, output_size), kwargs, input_dim=16))


def test_autoncp_equals_ncps_at_a_thousand_neurons():
    assert_same_matrices(*build_both("AutoNCP", (1000, 50), {"sparsity_level": 0.8}, input_dim=64))


@pytest.mark.parametrize(
    "name,args", [("AutoNCP", (32, 4)), ("Random", (20, 3, 0.5)), ("FullyConnected", (9,))]
)
def test_graph_matches_ncps_graph(name, args):
    reference, wiring = build_both(name, args, {}, input_dim=5)
    expected, graph = reference.get_graph(), wiring.get_graph()
    assert set(graph.nodes) == set(expected.nodes)
    assert {n: d["neuron_type"] for n, d in graph.nodes(data=True)} == dict(
        expected.nodes(data="neuron_type")
    )
    assert set(graph.edges(data="polarity")) == set(expected.edges(data="polarity"))
