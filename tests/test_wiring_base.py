"""Specification of the Wiring base class: sizes, build, neuron types, config and files."""

import json
import pickle

import numpy as np
import pytest

from ncps_mlx.wirings import NCP, AutoNCP, FullyConnected, Random, Wiring


class ChainWiring(Wiring):
    """A user-defined wiring: a chain ``0 -> 1 -> ... -> units-1``, every input into neuron 0."""

    def __init__(self, units, polarity=1):
        super().__init__(units)
        self.polarity = polarity
        self.add_synapses(np.arange(units - 1), np.arange(1, units), polarity)

    def _build_sensory_synapses(self):
        self.add_sensory_synapses(np.arange(self.input_dim), np.zeros(self.input_dim, int), -1)

    def _config_args(self):
        return {"units": self.units, "polarity": self.polarity}


class LegacyTypedWiring(Wiring):
    """Written against the ncps API: defines only ``get_type_of_neuron``."""

    def get_type_of_neuron(self, neuron_id):
        return "command" if neuron_id % 2 else "motor"


class UnconfigurableWiring(Wiring):
    """A subclass with a new constructor argument but no ``_config_args`` override."""

    def __init__(self, size):
        super().__init__(size)


def filled_wiring(build: bool = True) -> Wiring:
    wiring = Wiring(4)
    wiring.set_output_dim(2)
    wiring.add_synapses([0, 1, 3, 3], [1, 2, 0, 3], [1, -1, -1, 1])
    if build:
        wiring.build(3)
        wiring.add_sensory_synapses([0, 2], [3, 1], [-1, 1])
    return wiring


def assert_same_wiring(restored: Wiring, original: Wiring) -> None:
    assert type(restored) is type(original)
    assert (restored.units, restored.input_dim, restored.output_dim) == (
        original.units,
        original.input_dim,
        original.output_dim,
    )
    for got, expected in zip(restored.synapses(), original.synapses(), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert restored.is_built() == original.is_built()
    if original.is_built():
        for got, expected in zip(
            restored.sensory_synapses(), original.sensory_synapses(), strict=True
        ):
            np.testing.assert_array_equal(got, expected)
    assert restored.get_config() == original.get_config()


# ---------------------------------------------------------------- sizes


def test_new_wiring_has_units_and_no_synapses_input_or_output_dim():
    wiring = Wiring(5)
    assert wiring.units == 5
    assert wiring.input_dim is None and wiring.output_dim is None
    assert wiring.synapse_count == 0
    np.testing.assert_array_equal(wiring.adjacency_matrix, np.zeros((5, 5)))


@pytest.mark.parametrize("units", [0, -3])
def test_units_must_be_positive(units):
    with pytest.raises(ValueError, match=f"units must be >= 1, got {units}"):
        Wiring(units)


@pytest.mark.parametrize("units", [2.0, "3", True, None])
def test_units_must_be_an_integer(units):
    with pytest.raises(TypeError, match="units must be an integer"):
        Wiring(units)


def test_set_output_dim_accepts_one_to_units():
    wiring = Wiring(3)
    wiring.set_output_dim(3)
    assert wiring.output_dim == 3
    wiring.set_output_dim(1)
    assert wiring.output_dim == 1


@pytest.mark.parametrize(
    "output_dim, message", [(4, "output_dim must be <= 3"), (0, "output_dim must be >= 1")]
)
def test_set_output_dim_rejects_values_outside_one_to_units(output_dim, message):
    with pytest.raises(ValueError, match=message):
        Wiring(3).set_output_dim(output_dim)


# ---------------------------------------------------------------- build


def test_build_sets_input_dim_and_makes_the_wiring_built():
    wiring = Wiring(3)
    assert not wiring.is_built()
    wiring.build(4)
    assert wiring.is_built()
    assert wiring.input_dim == 4
    assert wiring.sensory_adjacency_matrix.shape == (4, 3)


def test_build_twice_with_the_same_input_dim_keeps_the_sensory_synapses():
    wiring = ChainWiring(3)
    wiring.build(2)
    wiring.add_sensory_synapse(1, 0, 1)  # overwrite a drawn synapse
    before = [array.copy() for array in wiring.sensory_synapses()]
    wiring.build(2)
    for got, expected in zip(wiring.sensory_synapses(), before, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert wiring.sensory_synapses()[2].tolist() == [-1, 1]


def test_build_with_another_input_dim_raises_naming_both_dims():
    wiring = Wiring(3)
    wiring.build(2)
    with pytest.raises(ValueError, match="input_dim=5 conflicts with the wiring's input_dim=2"):
        wiring.build(5)
    assert wiring.input_dim == 2


def test_set_input_dim_conflicting_with_an_earlier_one_raises():
    wiring = Wiring(3)
    wiring.set_input_dim(2)
    wiring.set_input_dim(2)
    with pytest.raises(ValueError, match="input_dim=3 conflicts"):
        wiring.set_input_dim(3)
    wiring.build(2)
    with pytest.raises(ValueError, match="input_dim=1 conflicts"):
        wiring.set_input_dim(1)


@pytest.mark.parametrize(
    "input_dim, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), ("2", TypeError)]
)
def test_input_dim_must_be_a_positive_integer(input_dim, error):
    with pytest.raises(error, match="input_dim"):
        Wiring(3).build(input_dim)
    with pytest.raises(error, match="input_dim"):
        Wiring(3).set_input_dim(input_dim)


def test_set_input_dim_counts_as_built_but_draws_nothing_until_build():
    wiring = ChainWiring(3)
    wiring.set_input_dim(2)
    assert wiring.is_built()
    assert wiring.sensory_synapse_count == 0
    wiring.build(2)
    assert wiring.sensory_synapses()[0].tolist() == [0, 1]
    assert wiring.sensory_synapses()[1].tolist() == [0, 0]


def test_sensory_synapses_added_between_set_input_dim_and_build_are_kept():
    wiring = ChainWiring(3)
    wiring.set_input_dim(2)
    wiring.add_sensory_synapse(1, 2, 1)
    wiring.build(2)
    expected = np.array([[-1, 0, 0], [-1, 0, 1]])
    np.testing.assert_array_equal(wiring.sensory_adjacency_matrix, expected)


# ---------------------------------------------------------------- neurons


def test_plain_wiring_has_one_layer_holding_every_neuron():
    wiring = Wiring(4)
    assert wiring.num_layers == 1
    assert wiring.get_neurons_of_layer(0) == [0, 1, 2, 3]


@pytest.mark.parametrize("layer_id", [1, -1])
def test_get_neurons_of_layer_rejects_a_layer_outside_num_layers(layer_id):
    with pytest.raises(ValueError, match="layer_id"):
        Wiring(4).get_neurons_of_layer(layer_id)


def test_first_output_dim_neurons_are_motor_and_the_rest_inter():
    wiring = Wiring(5)
    wiring.set_output_dim(2)
    expected = ["motor", "motor", "inter", "inter", "inter"]
    assert [wiring.get_type_of_neuron(i) for i in range(5)] == expected
    assert wiring.neuron_types().tolist() == expected


def test_without_output_dim_every_neuron_is_inter():
    assert Wiring(3).neuron_types().tolist() == ["inter"] * 3


@pytest.mark.parametrize("neuron_id", [5, -1])
def test_get_type_of_neuron_rejects_ids_outside_units(neuron_id):
    with pytest.raises(ValueError, match="neuron_id"):
        Wiring(5).get_type_of_neuron(neuron_id)


def test_neuron_types_uses_a_subclass_get_type_of_neuron():
    assert LegacyTypedWiring(4).neuron_types().tolist() == ["motor", "command", "motor", "command"]


def test_neuron_time_scales_are_ones_by_default():
    scales = Wiring(3).neuron_time_scales()
    assert scales.dtype == np.float32
    np.testing.assert_array_equal(scales, np.ones(3))


def test_repr_names_the_class_and_counts():
    text = repr(filled_wiring())
    assert text == "Wiring(units=4, input_dim=3, output_dim=2, synapses=4, sensory_synapses=2)"


# ---------------------------------------------------------------- config


def test_config_stores_sizes_and_the_synapse_lists():
    config = filled_wiring().get_config()
    assert config["class_name"] == "Wiring"
    assert config["args"] == {"units": 4}
    assert (config["units"], config["input_dim"], config["output_dim"]) == (4, 3, 2)
    assert config["synapses"] == {
        "src": [0, 1, 3, 3],
        "dst": [1, 2, 0, 3],
        "polarity": [1, -1, -1, 1],
    }
    assert config["sensory_synapses"] == {"src": [0, 2], "dst": [3, 1], "polarity": [-1, 1]}


def test_unbuilt_config_has_no_sensory_synapses():
    config = filled_wiring(build=False).get_config()
    assert config["input_dim"] is None
    assert config["sensory_synapses"] is None


@pytest.mark.parametrize("build", [True, False], ids=["built", "unbuilt"])
def test_config_round_trips_exactly_through_json(build):
    original = filled_wiring(build)
    text = json.dumps(original.get_config())
    restored = Wiring.from_config(json.loads(text))
    assert_same_wiring(restored, original)


@pytest.mark.parametrize("build", [True, False], ids=["built", "unbuilt"])
def test_user_defined_subclass_round_trips_to_its_own_class(build):
    original = ChainWiring(4, polarity=-1)
    if build:
        original.build(2)
    original.add_synapse(3, 0, 1)
    restored = Wiring.from_config(json.loads(json.dumps(original.get_config())))
    assert_same_wiring(restored, original)
    assert restored.polarity == -1
    assert original.get_config()["class_name"].endswith("ChainWiring")


def test_restored_unbuilt_subclass_builds_the_same_sensory_synapses():
    original = ChainWiring(3)
    restored = Wiring.from_config(original.get_config())
    original.build(4)
    restored.build(4)
    assert_same_wiring(restored, original)


def test_config_after_set_input_dim_restores_a_wiring_that_still_draws_at_build():
    original = ChainWiring(3)
    original.set_input_dim(2)
    restored = Wiring.from_config(json.loads(json.dumps(original.get_config())))
    assert restored.sensory_synapse_count == 0
    original.build(2)
    restored.build(2)
    assert restored.sensory_synapse_count == 2
    assert_same_wiring(restored, original)


def test_restored_built_wiring_does_not_draw_again_at_build():
    original = ChainWiring(3)
    original.build(2)
    original.add_sensory_synapse(0, 0, 1)
    restored = Wiring.from_config(original.get_config())
    restored.build(2)
    assert restored.sensory_synapses()[2].tolist() == [1, -1]


def test_base_from_config_restores_the_subclass_named_in_the_config():
    for original in (
        FullyConnected(3),
        Random(4, sparsity_level=0.5),
        NCP(3, 2, 1, 2, 1, 1, 1),
        AutoNCP(8, 2),
    ):
        assert type(Wiring.from_config(original.get_config())) is type(original)


def test_subclass_from_config_accepts_its_own_subclasses():
    restored = NCP.from_config(AutoNCP(8, 2).get_config())
    assert type(restored) is AutoNCP


def test_subclass_from_config_rejects_a_config_of_an_unrelated_class():
    with pytest.raises(ValueError, match="class_name='Random' is not a NCP"):
        NCP.from_config(Random(4).get_config())
    with pytest.raises(ValueError, match="is not a ChainWiring"):
        ChainWiring.from_config(Wiring(2).get_config())


def test_from_config_rejects_an_unknown_class_name():
    config = Wiring(2).get_config()
    config["class_name"] = "NoSuchWiring"
    with pytest.raises(
        ValueError, match="class_name='NoSuchWiring' is not a known Wiring subclass"
    ):
        Wiring.from_config(config)


@pytest.mark.parametrize(
    "class_name", ["os.system", "builtins.eval", "json.JSONDecoder", ["Wiring"], 3, None]
)
def test_from_config_never_imports_or_evaluates_a_class_name(class_name):
    config = Wiring(2).get_config()
    config["class_name"] = class_name
    config["args"] = {"units": 2}
    with pytest.raises(ValueError, match="class_name"):
        Wiring.from_config(config)


@pytest.mark.parametrize(
    "key", ["class_name", "args", "units", "input_dim", "output_dim", "synapses"]
)
def test_from_config_rejects_a_config_missing_a_key(key):
    config = filled_wiring().get_config()
    del config[key]
    with pytest.raises(ValueError, match=f"missing keys \\['{key}'\\]"):
        Wiring.from_config(config)


def test_from_config_requires_a_dict():
    with pytest.raises(TypeError, match="config must be a dict"):
        Wiring.from_config([("units", 3)])


def test_from_config_rejects_args_that_are_not_a_dict_or_do_not_fit_the_constructor():
    config = Wiring(2).get_config()
    config["args"] = [2]
    with pytest.raises(ValueError, match="args"):
        Wiring.from_config(config)
    config["args"] = {"units": 2, "colour": "red"}
    with pytest.raises(ValueError, match="config args do not fit Wiring"):
        Wiring.from_config(config)


def test_from_config_rejects_a_subclass_config_whose_args_are_not_stored():
    with pytest.raises(ValueError, match="config args do not fit UnconfigurableWiring"):
        Wiring.from_config(UnconfigurableWiring(3).get_config())


def test_from_config_rejects_units_that_disagree_with_the_args():
    config = Wiring(2).get_config()
    config["units"] = 3
    with pytest.raises(ValueError, match="units=3 but its args build 2 units"):
        Wiring.from_config(config)


def test_from_config_rejects_input_dim_without_sensory_synapses():
    config = filled_wiring().get_config()
    config["sensory_synapses"] = None
    with pytest.raises(ValueError, match="sensory_synapses is None"):
        Wiring.from_config(config)


MALFORMED_SYNAPSE_LISTS = {
    "ragged": {"src": [[0, 1], [2]], "dst": [0, 1], "polarity": [1, 1]},
    "nested": {"src": [[0], [1]], "dst": [0, 1], "polarity": [1, 1]},
    "float_indices": {"src": [0.0, 1.0], "dst": [0, 1], "polarity": [1, 1]},
    "string_indices": {"src": ["0", "1"], "dst": [0, 1], "polarity": [1, 1]},
    "bool_indices": {"src": [True, False], "dst": [0, 1], "polarity": [1, 1]},
    "none_index": {"src": [0, None], "dst": [0, 1], "polarity": [1, 1]},
    "huge_index": {"src": [0, 2**70], "dst": [0, 1], "polarity": [1, 1]},
    "out_of_range": {"src": [0, 4], "dst": [0, 1], "polarity": [1, 1]},
    "negative": {"src": [0, -1], "dst": [0, 1], "polarity": [1, 1]},
    "polarity_zero": {"src": [0, 1], "dst": [0, 1], "polarity": [1, 0]},
    "polarity_two": {"src": [0, 1], "dst": [0, 1], "polarity": [2, 1]},
    "polarity_float": {"src": [0, 1], "dst": [0, 1], "polarity": [1.0, -1.0]},
    "unequal_lengths": {"src": [0, 1], "dst": [0], "polarity": [1, 1]},
    "not_lists": {"src": "01", "dst": "01", "polarity": "11"},
    "scalar_entries": {"src": 0, "dst": 1, "polarity": 1},
    "missing_polarity": {"src": [0], "dst": [1]},
    "extra_key": {"src": [0], "dst": [1], "polarity": [1], "weight": [0.5]},
    "a_list": [[0, 1, 1]],
    "dense_matrix": [[0, 1], [1, 0]],
}


@pytest.mark.parametrize(
    "entry", list(MALFORMED_SYNAPSE_LISTS.values()), ids=list(MALFORMED_SYNAPSE_LISTS)
)
@pytest.mark.parametrize("key", ["synapses", "sensory_synapses"])
def test_from_config_rejects_a_malformed_synapse_list(key, entry):
    config = filled_wiring().get_config()
    config[key] = entry
    with pytest.raises(ValueError):
        Wiring.from_config(config)


def test_from_config_accepts_empty_synapse_lists():
    config = Wiring(3).get_config()
    assert config["synapses"] == {"src": [], "dst": [], "polarity": []}
    assert Wiring.from_config(config).synapse_count == 0


def test_get_config_does_not_change_the_wiring():
    wiring = filled_wiring()
    first = wiring.get_config()
    assert wiring.get_config() == first
    assert wiring.synapse_count == 4 and wiring.sensory_synapse_count == 2


# ---------------------------------------------------------------- files


def test_save_writes_a_versioned_json_document(tmp_path):
    path = tmp_path / "wiring.json"
    wiring = filled_wiring()
    wiring.save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == {"format": "ncps_mlx.wiring", "version": 1, "wiring": wiring.get_config()}


@pytest.mark.parametrize(
    "make",
    [
        lambda: filled_wiring(),
        lambda: filled_wiring(build=False),
        lambda: ChainWiring(5, polarity=-1),
        lambda: Random(6, sparsity_level=0.5, random_seed=3),
    ],
    ids=["wiring", "unbuilt", "user_subclass", "random_unbuilt"],
)
def test_save_then_load_restores_the_exact_wiring(tmp_path, make):
    original = make()
    path = tmp_path / "wiring.json"
    original.save(str(path))
    assert_same_wiring(Wiring.load(path), original)


def test_load_through_a_subclass_rejects_a_file_of_another_class(tmp_path):
    path = tmp_path / "random.json"
    Random(4).save(path)
    with pytest.raises(ValueError, match="is not a NCP"):
        NCP.load(path)


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _valid_text() -> str:
    return json.dumps(
        {"format": "ncps_mlx.wiring", "version": 1, "wiring": filled_wiring().get_config()}
    )


BAD_FILES = {
    "plain_text": "units = 4\n",
    "empty": "",
    "json_list": "[1, 2, 3]",
    "json_number": "42",
    "other_format": json.dumps({"format": "keras.model", "version": 1, "wiring": {}}),
    "no_format": json.dumps(Wiring(3).get_config()),
    "newer_version": json.dumps(
        {"format": "ncps_mlx.wiring", "version": 2, "wiring": Wiring(3).get_config()}
    ),
    "string_version": json.dumps(
        {"format": "ncps_mlx.wiring", "version": "1", "wiring": Wiring(3).get_config()}
    ),
    "no_version": json.dumps({"format": "ncps_mlx.wiring", "wiring": Wiring(3).get_config()}),
    "no_wiring": json.dumps({"format": "ncps_mlx.wiring", "version": 1}),
    "wiring_is_a_list": json.dumps({"format": "ncps_mlx.wiring", "version": 1, "wiring": [4]}),
    "truncated": _valid_text()[: len(_valid_text()) // 2],
    "binary_garbage": bytes(range(256)) * 4,
    "utf16": _valid_text().encode("utf-16"),
}


@pytest.mark.parametrize("content", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_load_rejects_a_file_that_is_not_a_valid_wiring_file(tmp_path, content):
    path = _write(tmp_path / "bad.json", content)
    with pytest.raises(ValueError):
        Wiring.load(path)


def test_load_rejects_a_config_value_of_the_wrong_type_with_value_error(tmp_path):
    config = filled_wiring().get_config()
    config["input_dim"] = "3"
    path = _write(
        tmp_path / "bad.json",
        json.dumps({"format": "ncps_mlx.wiring", "version": 1, "wiring": config}),
    )
    with pytest.raises(ValueError, match="input_dim"):
        Wiring.load(path)


class _CreatesFileWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_never_unpickles_or_imports_what_a_file_names(tmp_path):
    marker = tmp_path / "code_ran"
    pickled = _write(tmp_path / "wiring.pkl", pickle.dumps(_CreatesFileWhenUnpickled(str(marker))))
    with pytest.raises(ValueError):
        Wiring.load(pickled)
    config = {
        **Wiring(2).get_config(),
        "class_name": "builtins.open",
        "args": {"file": str(marker), "mode": "w"},
    }
    named = _write(
        tmp_path / "named.json",
        json.dumps({"format": "ncps_mlx.wiring", "version": 1, "wiring": config}),
    )
    with pytest.raises(ValueError, match="not a known Wiring subclass"):
        Wiring.load(named)
    assert not marker.exists()
