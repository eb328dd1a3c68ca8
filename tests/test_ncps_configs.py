"""ncps 1.0.1's wiring configs in both directions (``ncps_mlx.wirings.ncps_configs``).

Reading: ``from_config``, ``Wiring.from_config`` and ``Wiring.load`` accept ncps's own
``get_config()`` dicts (and their JSON) of every ncps wiring class and give ncps's synapses.
Writing: ``to_ncps_config`` gives a dict that ncps's ``from_config`` turns into the same wiring,
``to_ncps_wiring`` the ncps object. ncps's flawed ``NCP.get_config`` (neuron-id lists for layer
sizes, a lost seed) is read as documented. Foreign or corrupt dicts raise ``ValueError`` naming
what is wrong. Tests comparing with ncps objects are marked ``parity`` and skip without ncps.
"""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from model_helpers import assert_same_matrices

import ncps_mlx.wirings as ours
from ncps_mlx.wirings import (
    NCP,
    AutoNCP,
    FullyConnected,
    HierarchicalWiring,
    Random,
    Wiring,
    classic,
    ncps_configs,
    to_ncps_config,
    to_ncps_wiring,
)
from ncps_mlx.wirings.ncps_configs import NCPS_CONFIG_KEYS, ncps_class_name, translate_ncps_config

INPUT_DIM = 5

# ncps class name -> [(args, kwargs)], several sizes and seeds each.
CASES = {
    "FullyConnected": [
        ((6,), {"erev_init_seed": 1111}),
        ((9, 3), {"erev_init_seed": 7, "self_connections": False}),
        ((1,), {"erev_init_seed": 0}),
    ],
    "Random": [
        ((10,), {"sparsity_level": 0.5, "random_seed": 1111}),
        ((16, 4), {"sparsity_level": 0.8, "random_seed": 3}),
        ((5, 2, 0.0, 42), {}),
    ],
    "NCP": [
        ((10, 8, 3, 4, 4, 6, 4), {"seed": 22222}),
        ((6, 5, 2, 3, 2, 4, 2), {"seed": 22222}),
        ((3, 2, 1, 1, 1, 1, 1), {}),
    ],
    "AutoNCP": [
        ((28, 4), {"seed": 22222}),
        ((16, 3), {"sparsity_level": 0.9, "seed": 5}),
        ((64, 8), {"sparsity_level": 0.1, "seed": 123}),
    ],
}
ALL_CASES = [(name, args, kwargs) for name, cases in CASES.items() for args, kwargs in cases]
CASE_IDS = [f"{name}-{i}" for name, cases in CASES.items() for i in range(len(cases))]


@pytest.fixture
def ncps_wirings():
    return pytest.importorskip("ncps.wirings", reason="ncps==1.0.1 (extra 'parity') not installed")


def ncps_built(ncps_wirings, name, args, kwargs, input_dim=INPUT_DIM):
    wiring = getattr(ncps_wirings, name)(*args, **kwargs)
    wiring.build(input_dim)
    return wiring


def built(wiring, input_dim=INPUT_DIM):
    wiring.build(input_dim)
    return wiring


def ncps_base_config(units=4, input_dim=3, output_dim=2):
    """An ncps base ``Wiring.get_config()`` dict, written out by hand."""
    adjacency = np.zeros((units, units), int)
    adjacency[0, 1], adjacency[3, 3], adjacency[2, 0] = 1, -1, 1
    sensory = np.zeros((input_dim, units), int)
    sensory[0, 3], sensory[2, 1] = -1, 1
    return {
        "units": units,
        "adjacency_matrix": adjacency.tolist(),
        "sensory_adjacency_matrix": sensory.tolist(),
        "input_dim": input_dim,
        "output_dim": output_dim,
    }


# ---------------------------------------------------------------------- reading ncps configs
@pytest.mark.parity
@pytest.mark.parametrize("name,args,kwargs", ALL_CASES, ids=CASE_IDS)
def test_from_config_of_ncps_config_gives_ncps_synapses(ncps_wirings, name, args, kwargs):
    reference = ncps_built(ncps_wirings, name, args, kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NCP seed warning, tested on its own below
        for read in (Wiring.from_config, getattr(ours, name).from_config):
            restored = read(reference.get_config())
            assert type(restored).__name__ == name
            assert not restored.is_built()  # as ncps's from_config gives it
            assert_same_matrices(built(restored), reference)


@pytest.mark.parity
@pytest.mark.parametrize("name,args,kwargs", ALL_CASES, ids=CASE_IDS)
def test_json_of_ncps_config_reads_as_dict_and_as_file(ncps_wirings, tmp_path, name, args, kwargs):
    reference = ncps_built(ncps_wirings, name, args, kwargs)
    text = json.dumps(reference.get_config())
    path = tmp_path / "ncps_wiring.json"
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_matrices(built(Wiring.from_config(json.loads(text))), reference)
        assert_same_matrices(built(Wiring.load(path)), reference)


@pytest.mark.parity
@pytest.mark.parametrize("input_dim", [None, 1, 4])
def test_ncps_base_wiring_config_gives_its_matrices(ncps_wirings, input_dim):
    reference = ncps_wirings.Wiring(5)
    reference.add_synapse(0, 4, -1)
    reference.add_synapse(3, 3, 1)
    if input_dim is not None:
        reference.build(input_dim)
        reference.add_sensory_synapse(input_dim - 1, 2, -1)
    reference.set_output_dim(2)
    restored = Wiring.from_config(json.loads(json.dumps(reference.get_config())))
    assert type(restored) is Wiring
    assert restored.is_built() == (input_dim is not None)
    assert (restored.units, restored.input_dim, restored.output_dim) == (5, input_dim, 2)
    np.testing.assert_array_equal(restored.adjacency_matrix, reference.adjacency_matrix)
    if input_dim is not None:
        np.testing.assert_array_equal(
            restored.sensory_adjacency_matrix, reference.sensory_adjacency_matrix
        )


@pytest.mark.parity
def test_ncps_base_config_of_a_built_ncp_keeps_every_synapse(ncps_wirings):
    reference = ncps_built(ncps_wirings, "AutoNCP", (20, 4), {"seed": 9})
    restored = Wiring.from_config(ncps_wirings.Wiring.get_config(reference))
    assert type(restored) is Wiring
    assert_same_matrices(restored, reference)


def test_hand_written_ncps_configs_read_without_ncps_installed():
    config = {"units": 6, "output_dim": 2, "erev_init_seed": 3, "self_connections": False}
    assert_same_matrices(built(Wiring.from_config(config)), built(FullyConnected(6, 2, 3, False)))
    config = {"units": 12, "output_size": 3, "sparsity_level": 0.5, "seed": 4}
    assert_same_matrices(built(AutoNCP.from_config(config)), built(AutoNCP(12, 3, seed=4)))
    restored = Wiring.from_config(ncps_base_config())
    assert restored.synapse_count == 3 and restored.sensory_synapse_count == 2
    assert restored.adjacency_matrix[3, 3] == -1 and restored.sensory_adjacency_matrix[0, 3] == -1


def test_subclass_from_config_rejects_an_ncps_config_of_another_class():
    config = {"units": 6, "output_dim": 2, "erev_init_seed": 3, "self_connections": True}
    with pytest.raises(ValueError, match="ncps's FullyConnected config, not a AutoNCP"):
        AutoNCP.from_config(config)
    with pytest.raises(ValueError, match="ncps's Wiring config, not a NCP"):
        NCP.from_config(ncps_base_config())
    auto = {"units": 12, "output_size": 3, "sparsity_level": 0.5, "seed": 4}
    assert type(NCP.from_config(auto)) is AutoNCP  # an AutoNCP is an NCP


# ---------------------------------------------------------------------- ncps's NCP flaw
def ncps_ncp_config(ncps_wirings, args, seed):
    """ncps's NCP config, taken after build (before build it would reseed ncps's wiring)."""
    reference = ncps_built(ncps_wirings, "NCP", args, {"seed": seed})
    return reference, reference.get_config()


@pytest.mark.parity
def test_ncps_cannot_read_its_own_ncp_config(ncps_wirings):
    _, config = ncps_ncp_config(ncps_wirings, (6, 5, 2, 3, 2, 4, 2), seed=7)
    assert config["motor_neurons"] == [0, 1]
    assert config["command_neurons"] == [2, 3, 4, 5, 6]
    assert config["inter_neurons"] == list(range(7, 13))
    assert config["seed"] is None
    with pytest.raises(TypeError):
        ncps_wirings.NCP.from_config(config)


@pytest.mark.parity
@pytest.mark.parametrize("args", CASES["NCP"][:2], ids=["ncp-0", "ncp-1"])
def test_ncps_ncp_config_reads_with_the_default_seed_and_a_warning(ncps_wirings, args):
    reference, config = ncps_ncp_config(ncps_wirings, args[0], seed=22222)
    with pytest.warns(UserWarning, match="does not store the seed.*22222"):
        restored = NCP.from_config(config)
    assert type(restored) is NCP
    assert restored.spec()["args"]["inter_neurons"] == args[0][0]
    assert_same_matrices(built(restored), reference)
    assert [restored.get_neurons_of_layer(i) for i in range(3)] == [
        reference.get_neurons_of_layer(i) for i in range(3)
    ]


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 99, 2**31])
def test_ncps_ncp_config_with_the_seed_given_reproduces_any_seed(ncps_wirings, seed):
    reference, config = ncps_ncp_config(ncps_wirings, (10, 8, 3, 4, 4, 6, 4), seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = Wiring.from_ncps_config(json.loads(json.dumps(config)), seed=seed)
    assert_same_matrices(built(restored), reference)


@pytest.mark.parity
def test_ncps_ncp_config_without_its_seed_is_read_with_the_documented_default(ncps_wirings):
    _, config = ncps_ncp_config(ncps_wirings, (10, 8, 3, 4, 4, 6, 4), seed=5)
    with pytest.warns(UserWarning, match="pass seed="):
        restored = Wiring.from_config(config)
    default = ncps_built(ncps_wirings, "NCP", (10, 8, 3, 4, 4, 6, 4), {})
    assert_same_matrices(built(restored), default)


def test_ncp_config_with_corrected_sizes_and_seed_reads_without_warning():
    config = {
        "inter_neurons": 6,
        "command_neurons": 5,
        "motor_neurons": 2,
        "sensory_fanout": 3,
        "inter_fanout": 2,
        "recurrent_command_synapses": 4,
        "motor_fanin": 2,
        "seed": 11,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = Wiring.from_config(config)
    assert_same_matrices(built(restored), built(NCP(6, 5, 2, 3, 2, 4, 2, seed=11)))


def flawed_ncp_config(**changes):
    config = {
        "inter_neurons": [3, 4, 5],
        "command_neurons": [1, 2],
        "motor_neurons": [0],
        "sensory_fanout": 1,
        "inter_fanout": 1,
        "recurrent_command_synapses": 1,
        "motor_fanin": 1,
        "seed": None,
    }
    return {**config, **changes}


@pytest.mark.parametrize(
    "changes,named",
    [
        ({"motor_neurons": [1]}, "motor_neurons"),
        ({"command_neurons": [2, 1]}, "command_neurons"),
        ({"inter_neurons": [3, 5, 6]}, "inter_neurons"),
        ({"inter_neurons": [4, 5, 6]}, "inter_neurons"),
        ({"motor_neurons": "0"}, "motor_neurons"),
        ({"command_neurons": []}, "command_neurons"),
    ],
)
def test_ncp_config_with_neuron_lists_that_are_not_ncps_ids_is_rejected(changes, named):
    with pytest.raises(ValueError, match=named):
        Wiring.from_ncps_config(flawed_ncp_config(**changes), seed=1)


def test_seed_argument_must_agree_with_a_stored_seed_and_needs_a_seeded_class():
    config = {"units": 12, "output_size": 3, "sparsity_level": 0.5, "seed": 4}
    with pytest.raises(ValueError, match="conflicts"):
        Wiring.from_ncps_config(config, seed=5)
    assert Wiring.from_ncps_config(config, seed=4).spec() == AutoNCP(12, 3, seed=4).spec()
    with pytest.raises(ValueError, match="has none"):
        Wiring.from_ncps_config(ncps_base_config(), seed=1)


# ---------------------------------------------------------------------- writing ncps configs
def our_case(name, args, kwargs):
    return getattr(ours, name)(*args, **kwargs)


@pytest.mark.parity
@pytest.mark.parametrize("name,args,kwargs", ALL_CASES, ids=CASE_IDS)
def test_to_ncps_config_is_read_by_ncps_into_the_same_synapses(ncps_wirings, name, args, kwargs):
    wiring = built(our_case(name, args, kwargs))
    config = json.loads(json.dumps(to_ncps_config(wiring)))
    assert ncps_class_name(config) == name
    assert set(config) == NCPS_CONFIG_KEYS[name]
    theirs = getattr(ncps_wirings, name).from_config(config)
    theirs.build(INPUT_DIM)
    assert_same_matrices(theirs, wiring)


@pytest.mark.parity
@pytest.mark.parametrize("name,args,kwargs", ALL_CASES, ids=CASE_IDS)
def test_to_ncps_wiring_is_ncps_class_with_the_same_synapses_and_layers(
    ncps_wirings, name, args, kwargs
):
    wiring = built(our_case(name, args, kwargs))
    theirs = to_ncps_wiring(wiring)
    assert type(theirs) is getattr(ncps_wirings, name)
    assert_same_matrices(theirs, wiring)
    assert theirs.num_layers == wiring.num_layers
    for layer in range(wiring.num_layers):
        assert list(theirs.get_neurons_of_layer(layer)) == wiring.get_neurons_of_layer(layer)


@pytest.mark.parity
def test_unbuilt_wiring_exports_its_arguments_and_ncps_draws_the_rest(ncps_wirings):
    wiring = AutoNCP(20, 4, seed=8)
    theirs = ncps_wirings.AutoNCP.from_config(to_ncps_config(wiring))
    theirs.build(3)
    assert_same_matrices(theirs, built(wiring, 3))
    assert not to_ncps_wiring(AutoNCP(20, 4, seed=8)).is_built()


@pytest.mark.parity
def test_edited_or_unclassic_wirings_export_as_ncps_base_wiring_matrices(ncps_wirings):
    edited = built(FullyConnected(5, erev_init_seed=2))
    edited.add_synapse(0, 1, -edited.adjacency_matrix[0, 1])
    hierarchical = built(HierarchicalWiring([6, 5, 2], fan_in=2, seed=1))
    for wiring in (edited, hierarchical, built(Wiring(3))):
        config = json.loads(json.dumps(to_ncps_config(wiring)))
        assert ncps_class_name(config) == "Wiring"
        assert_same_matrices(ncps_wirings.Wiring.from_config(config), wiring)
        assert_same_matrices(Wiring.from_config(config), wiring)  # and back to ours
    assert type(to_ncps_wiring(edited)) is ncps_wirings.Wiring
    assert_same_matrices(to_ncps_wiring(edited), edited)


@pytest.mark.parity
def test_edited_ncp_stays_an_ncps_ncp_with_our_synapses_and_its_layers(ncps_wirings):
    edited = built(AutoNCP(16, 3, seed=1))
    edited.add_sensory_synapse(0, 15, 1)
    edited.add_synapse(15, 3, -1)  # inter -> command
    assert ncps_class_name(to_ncps_config(edited)) == "Wiring"
    theirs = to_ncps_wiring(edited)
    assert type(theirs) is ncps_wirings.AutoNCP
    assert_same_matrices(theirs, edited)
    assert [list(theirs.get_neurons_of_layer(i)) for i in range(3)] == [
        edited.get_neurons_of_layer(i) for i in range(3)
    ]


@pytest.mark.parity
def test_random_drawn_by_our_sampler_above_the_exact_draw_limit_exports_matrices(
    ncps_wirings, monkeypatch
):
    for module in (classic, ncps_configs):  # a limit of 100 pairs: 12 x 12 is above it
        monkeypatch.setattr(module, "EXACT_DRAW_LIMIT", 100)
    wiring = built(Random(12, sparsity_level=0.5, random_seed=2), 3)
    reference = ncps_built(ncps_wirings, "Random", (12,), {"sparsity_level": 0.5}, 3)
    assert not np.array_equal(wiring.adjacency_matrix, reference.adjacency_matrix)
    config = to_ncps_config(wiring)
    assert ncps_class_name(config) == "Wiring"
    assert_same_matrices(ncps_wirings.Wiring.from_config(config), wiring)
    assert_same_matrices(to_ncps_wiring(wiring), wiring)


def test_ncps_config_round_trips_through_ours_without_ncps():
    config = ncps_base_config()
    assert to_ncps_config(Wiring.from_config(config)) == config
    auto = {"units": 12, "output_size": 3, "sparsity_level": 0.5, "seed": 4}
    assert to_ncps_config(built(Wiring.from_config(auto))) == auto


def test_to_ncps_functions_require_an_ncps_mlx_wiring():
    with pytest.raises(TypeError, match="ncps_mlx Wiring"):
        to_ncps_config({"units": 3})
    with pytest.raises(TypeError, match="ncps_mlx Wiring"):
        to_ncps_wiring(np.zeros((3, 3)))


def test_wirings_import_neither_ncps_nor_torch():
    code = (
        "import sys, ncps_mlx.wirings as w\n"
        "w.to_ncps_config(w.AutoNCP(12, 3))\n"
        "w.Wiring.from_config({'units': 8, 'output_size': 1, 'sparsity_level': 0.5, 'seed': 1})\n"
        "print(sorted(m for m in ('ncps', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------- foreign or corrupt dicts
AUTO = {"units": 12, "output_size": 3, "sparsity_level": 0.5, "seed": 4}
FOREIGN = {
    "empty": ({}, "neither"),
    "unknown_key": ({"units": 3, "colour": "red"}, "colour"),
    "ncps_missing_a_key": ({k: v for k, v in AUTO.items() if k != "seed"}, r"\['seed'\]"),
    "ncps_extra_key": ({**AUTO, "dropout": 0.1}, "dropout"),
    "keras_wrapper": ({"class_name": "AutoNCP", "config": AUTO}, "missing keys"),
    "wrong_type": ({**AUTO, "units": "12"}, "ncps AutoNCP config: units must be an integer"),
    "bool_units": ({**AUTO, "units": True}, "ncps AutoNCP config"),
    "bad_sparsity": ({**AUTO, "sparsity_level": 1.5}, "sparsity_level"),
    "bad_output_size": ({**AUTO, "output_size": 11}, "output_size"),
    "random_bad_seed": (
        {"units": 4, "output_dim": 2, "sparsity_level": 0.5, "random_seed": "x"},
        "random_seed",
    ),
    "fc_bad_self_connections": (
        {"units": 4, "output_dim": 2, "erev_init_seed": 1, "self_connections": "yes"},
        "self_connections",
    ),
    "matrix_wrong_shape": ({**ncps_base_config(), "adjacency_matrix": [[0, 1], [1, 0]]}, "4 x 4"),
    "matrix_ragged": ({**ncps_base_config(), "adjacency_matrix": [[0], [1, 0, 0, 0]] * 2}, "4 x 4"),
    "matrix_floats": (
        {**ncps_base_config(), "adjacency_matrix": np.eye(4).tolist()},
        "integers",
    ),
    "matrix_bools": (
        {**ncps_base_config(), "adjacency_matrix": np.eye(4, dtype=bool).tolist()},
        "integers",
    ),
    "matrix_polarity_two": (
        {**ncps_base_config(), "adjacency_matrix": (2 * np.eye(4, dtype=int)).tolist()},
        "adjacency_matrix entries",
    ),
    "sensory_wrong_shape": (
        {**ncps_base_config(), "sensory_adjacency_matrix": [[1, 0, 0, 0]]},
        "sensory_adjacency_matrix must be a 3 x 4",
    ),
    "input_dim_without_sensory": (
        {**ncps_base_config(), "sensory_adjacency_matrix": None},
        "both set or both None",
    ),
    "sensory_without_input_dim": ({**ncps_base_config(), "input_dim": None}, "both set"),
    "output_dim_too_large": ({**ncps_base_config(), "output_dim": 9}, "output_dim"),
    "units_zero": ({**ncps_base_config(), "units": 0}, "units"),
}


@pytest.mark.parametrize("config,named", list(FOREIGN.values()), ids=list(FOREIGN))
def test_foreign_or_corrupt_dict_raises_value_error_naming_the_problem(config, named):
    with pytest.raises(ValueError, match=named):
        Wiring.from_config(config)


def test_non_dicts_are_a_type_error():
    with pytest.raises(TypeError, match="config must be a dict"):
        ncps_class_name([("units", 3)])
    with pytest.raises(TypeError, match="config must be a dict"):
        translate_ncps_config("AutoNCP")


@pytest.mark.parametrize("config,named", [FOREIGN["ncps_missing_a_key"], FOREIGN["wrong_type"]])
def test_load_of_a_corrupt_ncps_json_file_names_the_problem(tmp_path, config, named):
    path = tmp_path / "wiring.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=named):
        Wiring.load(path)


def test_our_own_config_format_is_unchanged_and_still_preferred():
    original = built(AutoNCP(16, 3, seed=2))
    config = original.get_config()
    assert {"class_name", "args", "synapses"} <= set(config)
    restored = Wiring.from_config(config)
    assert_same_matrices(restored, original)
    assert restored.get_config() == config
