"""Specification of FullyConnected, Random, NCP and AutoNCP: arguments, structure, draws, config.

The expected matrices of FullyConnected and Random come from slow references written here from
their documented draw order (ncps 1.0.1's algorithm: enumerate the pairs, pick, draw one
polarity per synapse); NCP is checked against its structural rules and AutoNCP against an NCP
built with sizes computed here from the documented formula. The large-wiring path (more than
EXACT_DRAW_LIMIT candidate pairs) is reached by lowering the limit.
"""

import json

import numpy as np
import pytest

import ncps_mlx.wirings.classic as classic
from ncps_mlx.wirings import NCP, AutoNCP, FullyConnected, Random, Wiring

# ---------------------------------------------------------------- references and helpers


def reference_fully_connected(units, input_dim, seed, self_connections=True):
    """ncps's loop: one polarity draw per pair, internal pairs row-major, then sensory pairs."""
    rng = np.random.default_rng(seed)
    internal = np.zeros((units, units), int)
    for src in range(units):
        for dst in range(units):
            if src != dst or self_connections:
                internal[src, dst] = rng.choice([-1, 1, 1])
    sensory = np.zeros((input_dim, units), int)
    for src in range(input_dim):
        for dst in range(units):
            sensory[src, dst] = rng.choice([-1, 1, 1])
    return internal, sensory


def reference_random(units, input_dim, sparsity_level, seed):
    """ncps's Random: pick rows of the enumerated pair list, one polarity draw per synapse."""
    rng = np.random.default_rng(seed)
    internal = np.zeros((units, units), int)
    pairs = np.array([(s, d) for s in range(units) for d in range(units)])
    chosen = rng.choice(
        pairs, size=int(np.round(units * units * (1 - sparsity_level))), replace=False
    )
    for src, dst in chosen:
        internal[src, dst] = rng.choice([-1, 1, 1])
    sensory = np.zeros((input_dim, units), int)
    pairs = np.array([(s, d) for s in range(input_dim) for d in range(units)])
    chosen = rng.choice(
        pairs, size=int(np.round(input_dim * units * (1 - sparsity_level))), replace=False
    )
    for src, dst in chosen:
        rng.choice([-1, 1, 1])  # ncps adds each sensory synapse twice; the second draw wins
        sensory[src, dst] = rng.choice([-1, 1, 1])
    return internal, sensory


def auto_ncp_sizes(units, output_size, sparsity_level):
    """AutoNCP's documented sizes."""
    density = 1.0 - sparsity_level
    n = units - output_size
    command = max(int(0.4 * n), 1)
    inter = n - command
    return {
        "inter_neurons": inter,
        "command_neurons": command,
        "motor_neurons": output_size,
        "sensory_fanout": max(int(inter * density), 1),
        "inter_fanout": max(int(command * density), 1),
        "recurrent_command_synapses": max(int(2 * command * density), 1),
        "motor_fanin": max(int(command * density), 1),
    }


def built(wiring, input_dim):
    wiring.build(input_dim)
    return wiring


def assert_same_matrices(wiring, internal, sensory):
    np.testing.assert_array_equal(wiring.adjacency_matrix, internal)
    np.testing.assert_array_equal(wiring.sensory_adjacency_matrix, sensory)


def excitatory_fraction(wiring):
    polarity = np.concatenate([wiring.synapses()[2], wiring.sensory_synapses()[2]])
    return float(np.mean(polarity == 1)), polarity.size


def assert_fan(block, fanout_axis, fanout, fixup):
    """One NCP layer: each source reaches >= ``fanout`` targets; each target has >= 1 input.

    ``block`` is the ``(sources, targets)`` slice of |adjacency| for the layer, read with the
    ncps roles (``fanout_axis=1``: rows fan out; ``0``: columns fan in, the motor layer). The
    extra synapses are exactly ``fixup`` per orphan target, and an orphan target has exactly
    ``fixup`` inputs.
    """
    fanning = block if fanout_axis == 1 else block.T
    num_sources, num_targets = fanning.shape
    assert np.all(fanning.sum(axis=1) >= fanout)
    in_degree = fanning.sum(axis=0)
    assert np.all(in_degree >= 1)
    extra = int(fanning.sum()) - num_sources * fanout
    assert extra >= 0 and extra % fixup == 0
    assert extra // fixup <= np.count_nonzero(in_degree == fixup)
    if fanout == num_targets:
        assert extra == 0


def assert_ncp_structure(wiring, sizes, input_dim):
    """NCP's rules: allowed layer pairs only, fan-outs, fan-ins and orphan fixups."""
    inter_n, command_n, motor_n = (
        sizes["inter_neurons"],
        sizes["command_neurons"],
        sizes["motor_neurons"],
    )
    motor = slice(0, motor_n)
    command = slice(motor_n, motor_n + command_n)
    inter = slice(motor_n + command_n, motor_n + command_n + inter_n)
    adjacency = np.abs(wiring.adjacency_matrix)
    sensory = np.abs(wiring.sensory_adjacency_matrix)
    assert set(np.unique(wiring.adjacency_matrix)) <= {-1, 0, 1}
    assert set(np.unique(wiring.sensory_adjacency_matrix)) <= {-1, 0, 1}

    allowed = np.zeros_like(adjacency, bool)
    allowed[inter, command] = allowed[command, command] = allowed[command, motor] = True
    assert not np.any(adjacency[~allowed]), "synapse between layers that NCP never connects"
    assert not np.any(sensory[:, : motor_n + command_n]), "sensory input to a non-inter neuron"

    fixup = int(np.clip(input_dim * sizes["sensory_fanout"] // inter_n, 1, input_dim))
    assert_fan(sensory[:, inter], 1, sizes["sensory_fanout"], fixup)
    fixup = int(np.clip(inter_n * sizes["inter_fanout"] // command_n, 1, command_n))
    assert_fan(adjacency[inter, command], 1, sizes["inter_fanout"], fixup)
    fixup = int(np.clip(motor_n * sizes["motor_fanin"] // command_n, 1, motor_n))
    assert_fan(adjacency[command, motor], 0, sizes["motor_fanin"], fixup)
    assert adjacency[command, command].sum() <= sizes["recurrent_command_synapses"]


NCP_KEYS = ("inter_neurons", "command_neurons", "motor_neurons", "sensory_fanout", "inter_fanout",
            "recurrent_command_synapses", "motor_fanin")  # fmt: skip
NCP_CASES = {
    name: dict(zip(NCP_KEYS, values, strict=True))
    for name, values in {
        # I, C, M, sensory_fanout, inter_fanout, recurrent_command_synapses, motor_fanin
        "small": (6, 4, 2, 3, 2, 5, 2),
        "orphans_everywhere": (12, 8, 1, 1, 1, 0, 1),
        "full_fanouts": (4, 3, 2, 4, 3, 9, 3),
        "one_per_layer": (1, 1, 1, 1, 1, 1, 1),
        "more_commands_than_inter": (3, 9, 4, 2, 7, 4, 5),
    }.items()
}


# ---------------------------------------------------------------- FullyConnected


@pytest.mark.parametrize("units, input_dim, seed", [(1, 1, 0), (4, 3, 1111), (7, 2, 5)])
def test_fully_connected_matches_the_per_pair_reference_draws(units, input_dim, seed):
    wiring = built(FullyConnected(units, erev_init_seed=seed), input_dim)
    assert_same_matrices(wiring, *reference_fully_connected(units, input_dim, seed))


def test_fully_connected_connects_every_pair_and_every_input():
    wiring = built(FullyConnected(5), 3)
    assert wiring.synapse_count == 25
    assert wiring.sensory_synapse_count == 15
    assert np.all(np.abs(wiring.adjacency_matrix) == 1)
    assert np.all(np.abs(wiring.sensory_adjacency_matrix) == 1)


def test_fully_connected_without_self_connections_has_an_empty_diagonal():
    wiring = built(FullyConnected(6, erev_init_seed=3, self_connections=False), 2)
    assert wiring.synapse_count == 30
    np.testing.assert_array_equal(np.abs(wiring.adjacency_matrix), 1 - np.eye(6))
    assert_same_matrices(wiring, *reference_fully_connected(6, 2, 3, self_connections=False))


def test_fully_connected_output_dim_defaults_to_units_and_can_be_smaller():
    assert FullyConnected(5).output_dim == 5
    wiring = FullyConnected(5, output_dim=2)
    assert wiring.output_dim == 2
    assert wiring.neuron_types().tolist() == ["motor", "motor", "inter", "inter", "inter"]


def test_fully_connected_draws_about_two_thirds_excitatory_polarities():
    fraction, count = excitatory_fraction(built(FullyConnected(200, erev_init_seed=9), 20))
    assert count == 44_000
    assert abs(fraction - 2 / 3) < 0.01  # standard deviation of the fraction: 0.0022


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(units=0), ValueError, "units must be >= 1"),
        (dict(units=2.0), TypeError, "units must be an integer"),
        (dict(units=3, output_dim=4), ValueError, "output_dim must be <= 3"),
        (dict(units=3, output_dim=0), ValueError, "output_dim must be >= 1"),
        (dict(units=3, self_connections=1), TypeError, "self_connections must be a bool"),
        (dict(units=3, erev_init_seed=-1), ValueError, "erev_init_seed must be in"),
        (dict(units=3, erev_init_seed=1.5), TypeError, "erev_init_seed must be an int"),
    ],
)
def test_fully_connected_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        FullyConnected(**kwargs)


# ---------------------------------------------------------------- Random


@pytest.mark.parametrize(
    "units, input_dim, sparsity, seed",
    [(5, 3, 0.0, 0), (7, 2, 0.5, 1111), (10, 4, 0.9, 3), (6, 5, 0.33, 8)],
)
def test_random_matches_the_enumerate_and_pick_reference(units, input_dim, sparsity, seed):
    wiring = built(Random(units, sparsity_level=sparsity, random_seed=seed), input_dim)
    assert_same_matrices(wiring, *reference_random(units, input_dim, sparsity, seed))


@pytest.mark.parametrize("units, input_dim, sparsity", [(10, 3, 0.5), (9, 7, 0.25), (13, 2, 0.95)])
def test_random_keeps_the_rounded_fraction_of_candidate_pairs(units, input_dim, sparsity):
    wiring = built(Random(units, sparsity_level=sparsity), input_dim)
    assert wiring.synapse_count == round(units * units * (1 - sparsity))
    assert wiring.sensory_synapse_count == round(input_dim * units * (1 - sparsity))
    assert wiring.synapse_count == np.count_nonzero(wiring.adjacency_matrix)


def test_random_with_zero_sparsity_connects_every_pair():
    wiring = built(Random(4, sparsity_level=0.0), 2)
    assert np.all(np.abs(wiring.adjacency_matrix) == 1)
    assert np.all(np.abs(wiring.sensory_adjacency_matrix) == 1)


def test_random_seeds_decide_the_draws():
    same = [Random(12, sparsity_level=0.5, random_seed=4).adjacency_matrix for _ in range(2)]
    other = Random(12, sparsity_level=0.5, random_seed=5).adjacency_matrix
    np.testing.assert_array_equal(same[0], same[1])
    assert not np.array_equal(same[0], other)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(units=0), ValueError, "units must be >= 1"),
        (dict(units=4, output_dim=5), ValueError, "output_dim must be <= 4"),
        (dict(units=4, sparsity_level=-0.1), ValueError, r"sparsity_level must be in \[0.0, 1.0\)"),
        (dict(units=4, sparsity_level=1.0), ValueError, r"sparsity_level must be in \[0.0, 1.0\)"),
        (dict(units=4, sparsity_level=1.5), ValueError, "sparsity_level"),
        (dict(units=4, sparsity_level=float("nan")), ValueError, "sparsity_level"),
        (dict(units=4, sparsity_level="0.5"), TypeError, "sparsity_level must be a number"),
        (dict(units=4, sparsity_level=None), TypeError, "sparsity_level must be a number"),
        (dict(units=4, random_seed=2**32), ValueError, "random_seed must be in"),
        (dict(units=4, random_seed="1"), TypeError, "random_seed must be an int"),
    ],
)
def test_random_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Random(**kwargs)


# ---------------------------------------------------------------- NCP


def test_ncp_numbers_neurons_motor_then_command_then_inter():
    wiring = NCP(
        3, 2, 1, sensory_fanout=2, inter_fanout=1, recurrent_command_synapses=1, motor_fanin=1
    )
    assert wiring.units == 6
    assert wiring.output_dim == 1
    assert wiring.num_layers == 3
    assert wiring.get_neurons_of_layer(0) == [3, 4, 5]  # inter
    assert wiring.get_neurons_of_layer(1) == [1, 2]  # command
    assert wiring.get_neurons_of_layer(2) == [0]  # motor
    assert wiring.neuron_types().tolist() == [
        "motor",
        "command",
        "command",
        "inter",
        "inter",
        "inter",
    ]


@pytest.mark.parametrize("case", list(NCP_CASES.values()), ids=list(NCP_CASES))
def test_ncp_neuron_types_agree_with_get_type_of_neuron_and_layer_sizes(case):
    wiring = NCP(**case)
    types = wiring.neuron_types()
    assert types.tolist() == [wiring.get_type_of_neuron(i) for i in range(wiring.units)]
    for layer, name, size in [(0, "inter", "inter_neurons"), (1, "command", "command_neurons"),
                              (2, "motor", "motor_neurons")]:  # fmt: skip
        assert np.count_nonzero(types == name) == case[size]
        assert sorted(wiring.get_neurons_of_layer(layer)) == np.flatnonzero(types == name).tolist()


@pytest.mark.parametrize("layer_id", [3, -1])
def test_ncp_get_neurons_of_layer_rejects_layers_outside_zero_to_two(layer_id):
    with pytest.raises(ValueError, match="layer_id"):
        NCP(**NCP_CASES["small"]).get_neurons_of_layer(layer_id)


@pytest.mark.parametrize("neuron_id", [12, -1])
def test_ncp_get_type_of_neuron_rejects_ids_outside_units(neuron_id):
    with pytest.raises(ValueError, match="neuron_id"):
        NCP(**NCP_CASES["small"]).get_type_of_neuron(neuron_id)


def test_ncp_draws_every_synapse_at_build():
    wiring = NCP(**NCP_CASES["small"])
    assert not wiring.is_built()
    assert wiring.synapse_count == 0
    wiring.build(3)
    assert wiring.synapse_count > 0 and wiring.sensory_synapse_count > 0


@pytest.mark.parametrize("case", list(NCP_CASES.values()), ids=list(NCP_CASES))
@pytest.mark.parametrize("input_dim", [1, 4, 15])
@pytest.mark.parametrize("seed", [0, 22222])
def test_ncp_follows_the_layer_rules(case, input_dim, seed):
    wiring = built(NCP(**case, seed=seed), input_dim)
    assert_ncp_structure(wiring, case, input_dim)


def test_ncp_without_recurrent_synapses_has_no_command_to_command_synapse():
    case = NCP_CASES["orphans_everywhere"]
    wiring = built(NCP(**case), 5)
    command = slice(case["motor_neurons"], case["motor_neurons"] + case["command_neurons"])
    assert not np.any(wiring.adjacency_matrix[command, command])


def test_ncp_with_full_fanouts_connects_whole_layers():
    case = NCP_CASES["full_fanouts"]  # I=4, C=3, M=2
    wiring = built(NCP(**case), 3)
    adjacency = np.abs(wiring.adjacency_matrix)
    assert np.all(np.abs(wiring.sensory_adjacency_matrix[:, 5:]) == 1)
    assert np.all(adjacency[5:, 2:5] == 1)  # inter -> command
    assert np.all(adjacency[2:5, 0:2] == 1)  # command -> motor


def test_ncp_seeds_decide_the_draws():
    first, second, other = (built(NCP(**NCP_CASES["small"], seed=s), 4) for s in (7, 7, 8))
    assert_same_matrices(first, second.adjacency_matrix, second.sensory_adjacency_matrix)
    assert not np.array_equal(first.adjacency_matrix, other.adjacency_matrix)


def test_ncp_polarities_are_about_half_excitatory():
    case = dict(inter_neurons=200, command_neurons=100, motor_neurons=20, sensory_fanout=100,
                inter_fanout=50, recurrent_command_synapses=1000, motor_fanin=50)  # fmt: skip
    fraction, count = excitatory_fraction(built(NCP(**case, seed=1), 40))
    assert count > 15_000
    assert abs(fraction - 0.5) < 0.015  # standard deviation of the fraction: < 0.004


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(inter_neurons=0), ValueError, "inter_neurons must be >= 1"),
        (dict(command_neurons=0), ValueError, "command_neurons must be >= 1"),
        (dict(motor_neurons=0), ValueError, "motor_neurons must be >= 1"),
        (dict(inter_neurons=2.5), TypeError, "inter_neurons must be an integer"),
        (dict(sensory_fanout=7), ValueError, "sensory_fanout must be <= 6"),
        (dict(sensory_fanout=0), ValueError, "sensory_fanout must be >= 1"),
        (dict(inter_fanout=5), ValueError, "inter_fanout must be <= 4"),
        (dict(motor_fanin=5), ValueError, "motor_fanin must be <= 4"),
        (dict(motor_fanin=0), ValueError, "motor_fanin must be >= 1"),
        (
            dict(recurrent_command_synapses=-1),
            ValueError,
            "recurrent_command_synapses must be >= 0",
        ),
        (dict(seed=-5), ValueError, "seed must be in"),
        (dict(seed="22222"), TypeError, "seed must be an int"),
    ],
)
def test_ncp_rejects_bad_arguments(change, error, message):
    with pytest.raises(error, match=message):
        NCP(**{**NCP_CASES["small"], **change})


# ---------------------------------------------------------------- AutoNCP

AUTO_NCP_TABLE = [
    # (units, output_size, sparsity):
    #     (inter, command, sensory_fanout, inter_fanout, recurrent, motor_fanin)
    ((16, 3, 0.5), (8, 5, 4, 2, 5, 2)),
    ((10, 2, 1.0), (5, 3, 1, 1, 1, 1)),
    ((4, 1, 0.1), (2, 1, 1, 1, 1, 1)),
    ((50, 10, 0.3), (24, 16, 16, 11, 22, 11)),
    ((32, 4, 0.75), (17, 11, 4, 2, 5, 2)),
]


@pytest.mark.parametrize("args, expected", AUTO_NCP_TABLE)
def test_auto_ncp_sizes_follow_the_documented_formula(args, expected):
    sizes = auto_ncp_sizes(*args)
    keys = ["inter_neurons", "command_neurons", "sensory_fanout", "inter_fanout",
            "recurrent_command_synapses", "motor_fanin"]  # fmt: skip
    assert tuple(sizes[key] for key in keys) == expected  # the formula agrees with hand values
    wiring = AutoNCP(*args)
    assert wiring.units == args[0]
    assert wiring.output_dim == args[1]
    assert len(wiring.get_neurons_of_layer(0)) == sizes["inter_neurons"]
    assert len(wiring.get_neurons_of_layer(1)) == sizes["command_neurons"]
    assert len(wiring.get_neurons_of_layer(2)) == args[1]
    types = wiring.neuron_types()
    assert types.tolist() == [wiring.get_type_of_neuron(i) for i in range(wiring.units)]
    assert np.count_nonzero(types == "motor") == args[1]


@pytest.mark.parametrize("args", [case for case, _ in AUTO_NCP_TABLE])
@pytest.mark.parametrize("seed", [0, 22222])
def test_auto_ncp_builds_the_ncp_with_the_formula_sizes(args, seed):
    sizes = auto_ncp_sizes(*args)
    auto = built(AutoNCP(*args, seed=seed), 6)
    explicit = built(NCP(**sizes, seed=seed), 6)
    assert_same_matrices(auto, explicit.adjacency_matrix, explicit.sensory_adjacency_matrix)
    assert_ncp_structure(auto, sizes, 6)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(units=3, output_size=1), ValueError, "units must be >= 4"),
        (dict(units=10, output_size=8), ValueError, "output_size must be <= 7"),
        (dict(units=10, output_size=9), ValueError, "output_size must be <= 7"),
        (dict(units=10, output_size=0), ValueError, "output_size must be >= 1"),
        (
            dict(units=10, output_size=2, sparsity_level=0.05),
            ValueError,
            r"sparsity_level must be in \[0.1, 1.0\]",
        ),
        (dict(units=10, output_size=2, sparsity_level=1.01), ValueError, "sparsity_level"),
        (dict(units=10, output_size=2, sparsity_level="0.5"), TypeError, "sparsity_level"),
        (dict(units=10, output_size=2, seed=2**32), ValueError, "seed must be in"),
        (dict(units=10, output_size=2, seed=0.5), TypeError, "seed must be an int"),
        (dict(units=10.0, output_size=2), TypeError, "units must be an integer"),
    ],
)
def test_auto_ncp_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        AutoNCP(**kwargs)


def test_auto_ncp_accepts_the_sparsity_bounds():
    for sparsity in (0.1, 1.0):
        assert AutoNCP(10, 2, sparsity_level=sparsity).units == 10


# ---------------------------------------------------------------- seeds, config and getters

FACTORIES = {
    "fully_connected": lambda seed: FullyConnected(
        5, output_dim=2, erev_init_seed=seed, self_connections=False
    ),
    "random": lambda seed: Random(6, output_dim=3, sparsity_level=0.4, random_seed=seed),
    "ncp": lambda seed: NCP(**NCP_CASES["small"], seed=seed),
    "auto_ncp": lambda seed: AutoNCP(14, 3, sparsity_level=0.4, seed=seed),
}


def assert_same_wiring(restored, original):
    assert type(restored) is type(original)
    assert (restored.units, restored.input_dim, restored.output_dim) == (
        original.units,
        original.input_dim,
        original.output_dim,
    )
    np.testing.assert_array_equal(restored.adjacency_matrix, original.adjacency_matrix)
    if original.is_built():
        np.testing.assert_array_equal(
            restored.sensory_adjacency_matrix, original.sensory_adjacency_matrix
        )
    assert restored.get_config() == original.get_config()


@pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
def test_built_config_round_trips_through_json_to_the_same_class_and_synapses(make):
    original = built(make(3), 4)
    config = json.loads(json.dumps(original.get_config()))
    assert_same_wiring(Wiring.from_config(config), original)
    assert_same_wiring(type(original).from_config(config), original)


@pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
def test_unbuilt_config_restores_a_wiring_that_builds_like_the_original(make):
    original = make(3)
    restored = Wiring.from_config(json.loads(json.dumps(original.get_config())))
    assert_same_wiring(restored, original)
    original.build(5)
    restored.build(5)
    assert_same_wiring(restored, original)


@pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
def test_set_input_dim_config_restores_a_wiring_that_builds_like_the_original(make):
    original = make(3)
    original.set_input_dim(4)
    restored = Wiring.from_config(json.loads(json.dumps(original.get_config())))
    original.build(4)
    restored.build(4)
    assert_same_wiring(restored, original)


@pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
def test_save_and_load_restore_the_built_wiring(tmp_path, make):
    original = built(make(11), 3)
    original.save(tmp_path / "w.json")
    assert_same_wiring(Wiring.load(tmp_path / "w.json"), original)


@pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
def test_getters_before_build_do_not_consume_random_draws(make):
    untouched, inspected = make(21), make(21)
    inspected.get_config()
    _ = inspected.adjacency_matrix, inspected.synapse_count, inspected.synapses()
    inspected.neuron_types()
    inspected.get_config()
    assert_same_wiring(built(inspected, 3), built(untouched, 3))


@pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
def test_generator_seed_equals_the_int_it_draws(make):
    drawn = int(np.random.default_rng(8).integers(0, 2**32))
    from_generator = built(make(np.random.default_rng(8)), 3)
    from_int = built(make(drawn), 3)
    assert_same_wiring(from_generator, from_int)


@pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
def test_none_seed_is_stored_as_an_int_that_rebuilds_the_same_wiring(make):
    original = built(make(None), 3)
    seeds = [v for k, v in original.get_config()["args"].items() if "seed" in k]
    assert len(seeds) == 1 and type(seeds[0]) is int and 0 <= seeds[0] < 2**32
    assert_same_wiring(built(make(seeds[0]), 3), original)


# ---------------------------------------------------------------- above EXACT_DRAW_LIMIT


@pytest.fixture
def small_draw_limit(monkeypatch):
    """Make every wiring with more than 50 candidate pairs take the large-wiring path."""
    monkeypatch.setattr(classic, "EXACT_DRAW_LIMIT", 50)
    calls = {"sampler": 0, "fast_ncp": 0}
    real_sampler = classic.sample_without_replacement

    def counting_sampler(*args, **kwargs):
        calls["sampler"] += 1
        return real_sampler(*args, **kwargs)

    class CountingFastNcpDraws(classic.FastNcpDraws):
        def __init__(self, rng):
            calls["fast_ncp"] += 1
            super().__init__(rng)

    monkeypatch.setattr(classic, "sample_without_replacement", counting_sampler)
    monkeypatch.setattr(classic, "FastNcpDraws", CountingFastNcpDraws)
    return calls


@pytest.mark.parametrize(
    "units, input_dim, sparsity", [(120, 50, 0.7), (30, 2, 0.0), (60, 9, 0.99)]
)
def test_large_random_keeps_exactly_the_rounded_number_of_distinct_pairs(
    small_draw_limit, units, input_dim, sparsity
):
    wiring = built(Random(units, sparsity_level=sparsity, random_seed=2), input_dim)
    assert small_draw_limit["sampler"] == 2  # internal and sensory stages both above the limit
    assert wiring.synapse_count == round(units * units * (1 - sparsity))
    assert wiring.sensory_synapse_count == round(input_dim * units * (1 - sparsity))
    assert np.count_nonzero(wiring.adjacency_matrix) == wiring.synapse_count
    assert np.count_nonzero(wiring.sensory_adjacency_matrix) == wiring.sensory_synapse_count


def test_large_random_switches_per_stage_at_the_limit(small_draw_limit):
    built(Random(7, sparsity_level=0.5), 7)  # 49 candidate pairs in each stage: exact draws
    assert small_draw_limit["sampler"] == 0
    built(Random(7, sparsity_level=0.5), 8)  # 56 sensory candidates: only that stage switches
    assert small_draw_limit["sampler"] == 1


def test_large_random_spreads_synapses_uniformly_over_rows_and_columns(small_draw_limit):
    units = 100
    wiring = Random(units, sparsity_level=0.8, random_seed=6)  # 2000 synapses, 20 per row
    adjacency = np.abs(wiring.adjacency_matrix)
    for degrees in (adjacency.sum(axis=0), adjacency.sum(axis=1)):
        statistic = float(((degrees - 20.0) ** 2 / 20.0).sum())
        assert statistic < 148.2  # chi-square 0.999 quantile for 99 degrees of freedom


def test_large_random_draws_about_two_thirds_excitatory_polarities(small_draw_limit):
    fraction, count = excitatory_fraction(built(Random(300, sparsity_level=0.5, random_seed=1), 30))
    assert count == 45_000 + 4500
    assert abs(fraction - 2 / 3) < 0.01  # standard deviation of the fraction: 0.0021


def test_random_above_the_real_limit_uses_the_sparse_sampler():
    wiring = Random(20_000, sparsity_level=0.99999, random_seed=0)  # 4e8 candidate pairs
    assert wiring.synapse_count == 4000
    src, dst, polarity = wiring.synapses()
    assert src.max() < 20_000 and dst.max() < 20_000
    assert set(np.unique(polarity)) == {-1, 1}


@pytest.mark.parametrize("case", list(NCP_CASES.values()), ids=list(NCP_CASES))
@pytest.mark.parametrize("input_dim", [4, 20])
def test_large_ncp_follows_the_layer_rules(small_draw_limit, case, input_dim):
    wiring = built(NCP(**case, seed=5), input_dim)
    inter, command = case["inter_neurons"], case["command_neurons"]
    candidates = input_dim * inter + inter * command + case["motor_neurons"] * command
    assert small_draw_limit["fast_ncp"] == (1 if candidates > 50 else 0)
    assert_ncp_structure(wiring, case, input_dim)


def test_large_ncp_takes_the_fast_path_and_differs_from_the_exact_draws(
    small_draw_limit, monkeypatch
):
    fast = built(NCP(**NCP_CASES["small"], seed=3), 10)
    assert small_draw_limit["fast_ncp"] == 1
    monkeypatch.setattr(classic, "EXACT_DRAW_LIMIT", 10**9)
    exact = built(NCP(**NCP_CASES["small"], seed=3), 10)
    assert small_draw_limit["fast_ncp"] == 1
    assert not np.array_equal(fast.adjacency_matrix, exact.adjacency_matrix)


def test_large_ncp_polarities_are_about_half_excitatory(small_draw_limit):
    case = dict(inter_neurons=400, command_neurons=200, motor_neurons=50, sensory_fanout=200,
                inter_fanout=100, recurrent_command_synapses=2000, motor_fanin=100)  # fmt: skip
    wiring = built(NCP(**case, seed=2), 100)
    assert small_draw_limit["fast_ncp"] == 1
    assert_ncp_structure(wiring, case, 100)
    fraction, count = excitatory_fraction(wiring)
    assert count > 60_000
    assert abs(fraction - 0.5) < 0.01  # standard deviation of the fraction: 0.002


def test_large_auto_ncp_round_trips_its_config(small_draw_limit):
    original = built(AutoNCP(60, 5, sparsity_level=0.5, seed=4), 12)
    assert small_draw_limit["fast_ncp"] == 1
    assert_same_wiring(Wiring.from_config(json.loads(json.dumps(original.get_config()))), original)
