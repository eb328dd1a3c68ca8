"""Saving and loading models: self-describing safetensors files and ncps state dicts.

A saved model is rebuilt from the file alone (class, config, wiring, weights) and runs exactly
like the original; malformed files are rejected with ValueError without executing anything in
them. ``load_ncps_state_dict`` is checked on state dicts built by hand, the way ncps 1.0.1 names
them (torch numbering of the CfC backbone, wiring masks stored as ``sparsity_mask``).

Tolerance: a reloaded model holds bit-identical weights, so its outputs equal exactly (atol 0).
"""

import json
import pickle
import re

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx import LTC, AutoNCP, CfC, FullyConnected
from ncps_mlx.serialization import load_model, load_ncps_state_dict, save_model

F = 3

MODELS = {
    "ltc-int": lambda: LTC(F, 6),
    "ltc-autoncp": lambda: LTC(F, AutoNCP(10, 2), ode_unfolds=3),
    "ltc-fullyconnected-mixed": lambda: LTC(F, FullyConnected(5, 2), mixed_memory=True),
    "cfc-dense-proj-mixed": lambda: CfC(
        F, 6, proj_size=2, mixed_memory=True, backbone_units=8, backbone_layers=2
    ),
    "cfc-dense-pure": lambda: CfC(F, 6, mode="pure", activation="silu", backbone_layers=0),
    "cfc-wired": lambda: CfC(F, AutoNCP(10, 2), mode="no_gate"),
    "cfc-wired-proj-mixed": lambda: CfC(F, AutoNCP(10, 2), proj_size=3, mixed_memory=True),
}


def build(name, seed=0):
    mx.random.seed(seed)
    return MODELS[name]()


def data(seed=0):
    return mx.array(np.random.default_rng(seed).standard_normal((2, 6, F)).astype(np.float32))


def params(model):
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def run(model, seed=0):
    y, hx = model(data(seed), timespans=mx.full((2, 6), 0.7))
    return [np.array(y)] + [np.array(s) for s in (hx if isinstance(hx, tuple) else [hx])]


def assert_same_outputs(model, other):
    for a, b in zip(run(model), run(other), strict=True):
        np.testing.assert_array_equal(a, b)


def assert_different_outputs(model, other):
    assert not np.allclose(run(model)[0], run(other)[0])


# ---------------------------------------------------------------------- safetensors round trip
@pytest.mark.parametrize("name", list(MODELS))
def test_load_model_rebuilds_an_equal_model_from_the_file_alone(name, tmp_path):
    model = build(name)
    path = tmp_path / "model.safetensors"
    model.save_weights(str(path))
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert loaded._config == model._config
    if hasattr(model, "wiring"):  # LTC always, CfC when wired (a dense CfC has none, as ncps)
        wiring, rebuilt = model.wiring, loaded.wiring
        assert type(rebuilt) is type(wiring)
        np.testing.assert_array_equal(rebuilt.adjacency_matrix, wiring.adjacency_matrix)
        np.testing.assert_array_equal(
            rebuilt.sensory_adjacency_matrix, wiring.sensory_adjacency_matrix
        )
        assert (rebuilt.input_dim, rebuilt.output_dim) == (wiring.input_dim, wiring.output_dim)
        assert rebuilt.get_config() == wiring.get_config()
    else:
        assert not hasattr(loaded, "wiring")
    original = params(model)
    reloaded = params(loaded)
    assert reloaded.keys() == original.keys()
    for key in original:
        np.testing.assert_array_equal(reloaded[key], original[key], err_msg=key)
    assert_same_outputs(loaded, model)


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-dense-proj-mixed", "cfc-wired"])
def test_load_weights_into_a_fresh_model_of_the_same_config_reproduces_outputs(name, tmp_path):
    model = build(name)
    path = str(tmp_path / "model.safetensors")
    model.save_weights(path)
    fresh = build(name, seed=1)
    assert_different_outputs(fresh, model)  # otherwise the test proves nothing
    fresh.load_weights(path)
    assert_same_outputs(fresh, model)


def test_saved_file_holds_the_parameters_under_their_ncps_names(tmp_path):
    model = build("cfc-dense-proj-mixed")
    path = str(tmp_path / "model.safetensors")
    save_model(model, path)
    weights, metadata = mx.load(path, return_metadata=True)
    assert set(weights) == set(params(model))
    description = json.loads(metadata["ncps_mlx"])
    assert description["class"] == "CfC" and description["config"] == model._config


def test_save_weights_to_npz_round_trips_through_load_weights(tmp_path):
    model = build("ltc-autoncp")
    path = str(tmp_path / "model.npz")
    model.save_weights(path)
    fresh = build("ltc-autoncp", seed=1)
    fresh.load_weights(path)
    assert_same_outputs(fresh, model)


def test_save_model_rejects_other_modules(tmp_path):
    import mlx.nn as nn

    with pytest.raises(TypeError, match="Linear"):
        save_model(nn.Linear(2, 2), tmp_path / "linear.safetensors")


# ---------------------------------------------------------------------- rejected files
def weights_with_metadata(path, metadata, name="cfc-dense-proj-mixed"):
    mx.save_safetensors(str(path), dict(tree_flatten(build(name).parameters())), metadata)
    return path


def description(name="cfc-dense-proj-mixed", **changes):
    model = build(name)
    result = {"version": 1, "class": type(model).__name__, "config": model._config, "wiring": None}
    result.update(changes)
    return result


def test_load_model_rejects_a_file_that_is_not_safetensors(tmp_path):
    text = tmp_path / "notes.safetensors"
    text.write_text("not a safetensors file")
    with pytest.raises(ValueError, match="safetensors"):
        load_model(text)
    npz = tmp_path / "weights.npz"
    np.savez(npz, w=np.ones(3))
    with pytest.raises(ValueError, match="safetensors"):
        load_model(npz)


def test_load_model_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "model.safetensors"
    build("ltc-autoncp").save_weights(str(path))
    raw = path.read_bytes()
    for size in (len(raw) // 2, len(raw) - 1, 4):
        truncated = tmp_path / f"truncated{size}.safetensors"
        truncated.write_bytes(raw[:size])
        with pytest.raises(ValueError, match="safetensors"):
            load_model(truncated)


def test_load_model_rejects_safetensors_without_ncps_mlx_metadata(tmp_path):
    plain = weights_with_metadata(tmp_path / "plain.safetensors", None)
    with pytest.raises(ValueError, match="save_model"):
        load_model(plain)
    other = weights_with_metadata(tmp_path / "other.safetensors", {"format": "mlx"})
    with pytest.raises(ValueError, match="save_model"):
        load_model(other)


def test_load_model_rejects_corrupt_json_metadata(tmp_path):
    for index, text in enumerate(['{"version": 1, "class": "CfC"', "not json", ""]):
        path = weights_with_metadata(tmp_path / f"c{index}.safetensors", {"ncps_mlx": text})
        with pytest.raises(ValueError, match="corrupt"):
            load_model(path)


@pytest.mark.parametrize("class_name", ["Transformer", "Wiring", "os.system", None, 3])
def test_load_model_rejects_an_unknown_class_name(class_name, tmp_path):
    path = weights_with_metadata(
        tmp_path / "m.safetensors", {"ncps_mlx": json.dumps(description(**{"class": class_name}))}
    )
    with pytest.raises(ValueError, match="unknown model class"):
        load_model(path)


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_load_model_rejects_another_format_version(version, tmp_path):
    path = weights_with_metadata(
        tmp_path / "m.safetensors", {"ncps_mlx": json.dumps(description(version=version))}
    )
    with pytest.raises(ValueError, match="version"):
        load_model(path)


def test_load_model_rejects_metadata_without_a_version(tmp_path):
    meta = description()
    del meta["version"]
    path = weights_with_metadata(tmp_path / "m.safetensors", {"ncps_mlx": json.dumps(meta)})
    with pytest.raises(ValueError, match="version"):
        load_model(path)


def test_load_model_rejects_a_config_that_does_not_fit_the_class(tmp_path):
    config = dict(build("cfc-dense-proj-mixed")._config, hidden_layers=3)
    path = weights_with_metadata(
        tmp_path / "m.safetensors", {"ncps_mlx": json.dumps(description(config=config))}
    )
    with pytest.raises(ValueError, match="config"):
        load_model(path)


def test_load_model_rejects_weights_that_do_not_fit_the_config(tmp_path):
    config = dict(build("cfc-dense-proj-mixed")._config, units=7)
    path = weights_with_metadata(
        tmp_path / "m.safetensors", {"ncps_mlx": json.dumps(description(config=config))}
    )
    with pytest.raises(ValueError):
        load_model(path)


@pytest.mark.parametrize(
    "changes",
    [
        {"config": [1, 2]},
        {"class": "LTC", "config": {"input_size": 3, "units": None}, "wiring": None},
        {"class": "LTC", "config": {"input_size": 3, "units": None}, "wiring": [1]},
    ],
    ids=["config-list", "wiring-null", "wiring-list"],
)
def test_load_model_rejects_metadata_of_the_wrong_structure_with_a_value_error(changes, tmp_path):
    path = weights_with_metadata(
        tmp_path / "m.safetensors", {"ncps_mlx": json.dumps(description(**changes))}
    )
    with pytest.raises(ValueError):
        load_model(path)


class _Payload:
    """Unpickling this creates a file: proof that code in a file ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_load_model_never_executes_code_from_the_file(tmp_path):
    sentinel = tmp_path / "executed"
    pickled = tmp_path / "model.safetensors"
    pickled.write_bytes(pickle.dumps(_Payload(str(sentinel))))
    with pytest.raises(ValueError):
        load_model(pickled)

    code = f"__import__('os').system('touch {sentinel}')"
    hostile = [
        description(**{"class": code}),
        description(config=dict(build("cfc-dense-proj-mixed")._config, activation=code)),
        description(
            "ltc-autoncp",
            config=dict(build("ltc-autoncp")._config, units=None),
            wiring=dict(build("ltc-autoncp").wiring.get_config(), class_name=code),
        ),
    ]
    for index, meta in enumerate(hostile):
        path = weights_with_metadata(
            tmp_path / f"h{index}.safetensors", {"ncps_mlx": json.dumps(meta)}
        )
        with pytest.raises(ValueError):
            load_model(path)
    assert not sentinel.exists()


# ---------------------------------------------------------------------- ncps state dicts
def wired_cfc_masks(wiring, prefix="rnn_cell"):
    """ncps WiredCfCCell: layer l's ``sparsity_mask`` is ``|[inputs; own state] -> layer|.T``."""
    masks, previous = {}, None
    for index in range(wiring.num_layers):
        neurons = wiring.get_neurons_of_layer(index)
        if previous is None:
            inputs = np.abs(wiring.sensory_adjacency_matrix)[:, neurons]
        else:
            inputs = np.abs(wiring.adjacency_matrix)[np.ix_(previous, neurons)]
        full = np.concatenate([inputs, np.ones((len(neurons), len(neurons)))], axis=0)
        masks[f"{prefix}.layer_{index}.sparsity_mask"] = full.T.astype(np.float32)
        previous = neurons
    return masks


def ncps_state_dict(model, backbone_stride=2):
    """The state dict ncps 1.0.1 would hold for ``model``, as numpy arrays.

    torch numbers ``backbone`` entries by position in an ``nn.Sequential`` of (Linear,
    activation[, Dropout]), so Linear ``i`` is ``backbone.{stride*i}`` (stride 2 without dropout);
    wiring masks are stored as ``sparsity_mask``/``sensory_sparsity_mask``.
    """
    state = {}
    for key, value in tree_flatten(model.parameters()):
        match = re.match(r"^(.*backbone)\.(\d+)\.(weight|bias)$", key)
        if match:
            key = f"{match[1]}.{backbone_stride * int(match[2])}.{match[3]}"
        if isinstance(model, LTC) and key.startswith("rnn_cell."):
            value = model.rnn_cell.to_ncps(key[len("rnn_cell.") :], value)  # ncps's dense layout
        state[key] = np.array(value)
    if isinstance(model, LTC):
        state["rnn_cell.sparsity_mask"] = np.abs(model.wiring.adjacency_matrix).astype(np.float32)
        state["rnn_cell.sensory_sparsity_mask"] = np.abs(
            model.wiring.sensory_adjacency_matrix
        ).astype(np.float32)
    elif hasattr(model, "wiring"):
        state.update(wired_cfc_masks(model.wiring))
    return state


@pytest.mark.parametrize("name", list(MODELS))
def test_ncps_state_dict_of_numpy_arrays_round_trips(name):
    source = build(name)
    target = build(name, seed=1)
    assert_different_outputs(target, source)
    assert load_ncps_state_dict(target, ncps_state_dict(source)) is target
    expected = params(source)
    for key, value in params(target).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
    assert_same_outputs(target, source)


def test_ncps_backbone_indices_with_dropout_modules_load_in_order():
    # with dropout, ncps's Sequential is (Linear, act, Linear, act, Dropout, Linear, act, Dropout)
    mx.random.seed(0)
    source = CfC(F, 6, backbone_units=8, backbone_layers=3, backbone_dropout=0.1)
    mx.random.seed(1)
    target = CfC(F, 6, backbone_units=8, backbone_layers=3, backbone_dropout=0.1)
    state = ncps_state_dict(source)
    renamed = {}
    for key, value in state.items():
        match = re.match(r"^rnn_cell\.backbone\.(\d+)\.(.*)$", key)
        key = f"rnn_cell.backbone.{[0, 2, 5][int(match[1]) // 2]}.{match[2]}" if match else key
        renamed[key] = value
    load_ncps_state_dict(target, renamed)
    expected = params(source)
    for key, value in params(target).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def test_ncps_state_dict_with_an_unknown_key_is_a_value_error_naming_it():
    model = build("ltc-autoncp")
    state = dict(ncps_state_dict(model), **{"rnn_cell.tau": np.ones(10, np.float32)})
    with pytest.raises(ValueError, match=r"rnn_cell\.tau"):
        load_ncps_state_dict(model, state)


@pytest.mark.parametrize(
    "name,key", [("ltc-autoncp", "rnn_cell.w"), ("cfc-dense-proj-mixed", "rnn_cell.ff1.weight")]
)
def test_ncps_state_dict_with_a_wrong_shape_is_a_value_error_naming_the_key(name, key):
    model = build(name)
    before = params(model)
    state = ncps_state_dict(build(name, seed=1))
    state[key] = np.zeros(state[key].shape[:1] + (state[key].shape[1] + 1,), np.float32)
    with pytest.raises(ValueError, match=re.escape(key) + ".*shape"):
        load_ncps_state_dict(model, state)
    for k, value in params(model).items():  # nothing was loaded
        np.testing.assert_array_equal(value, before[k])


@pytest.mark.parametrize(
    "name,key",
    [
        ("ltc-autoncp", "rnn_cell.sensory_mu"),
        ("cfc-dense-proj-mixed", "lstm.recurrent_map.weight"),
        ("cfc-wired", "rnn_cell.layer_1.time_a.bias"),
    ],
)
def test_ncps_state_dict_missing_a_parameter_is_a_value_error_when_strict(name, key):
    model = build(name)
    state = ncps_state_dict(build(name, seed=1))
    del state[key]
    with pytest.raises(ValueError, match=re.escape(key)):
        load_ncps_state_dict(model, state)


@pytest.mark.parametrize(
    "name,key",
    [
        ("ltc-autoncp", "rnn_cell.sensory_mu"),
        ("cfc-dense-proj-mixed", "lstm.recurrent_map.weight"),
        ("cfc-dense-proj-mixed", "rnn_cell.backbone.2.bias"),
    ],
)
def test_ncps_state_dict_missing_a_parameter_is_allowed_when_not_strict(name, key):
    model = build(name)
    before = params(model)
    source = build(name, seed=1)
    state = ncps_state_dict(source)
    del state[key]
    load_ncps_state_dict(model, state, strict=False)
    ours = re.sub(r"backbone\.(\d+)", lambda m: f"backbone.{int(m[1]) // 2}", key)
    expected = params(source)
    for k, value in params(model).items():
        np.testing.assert_array_equal(value, before[k] if k == ours else expected[k], err_msg=k)


def test_ncps_state_dict_missing_a_whole_backbone_layer_loads_the_others_in_place():
    mx.random.seed(0)
    model = CfC(F, 6, backbone_units=8, backbone_layers=3)
    before = params(model)
    mx.random.seed(1)
    source = CfC(F, 6, backbone_units=8, backbone_layers=3)
    state = ncps_state_dict(source)  # torch backbone.0, .2, .4 = our backbone.0, .1, .2
    del state["rnn_cell.backbone.2.weight"], state["rnn_cell.backbone.2.bias"]
    load_ncps_state_dict(model, state, strict=False)
    expected = params(source)
    for k, value in params(model).items():
        wanted = before[k] if ".backbone.1." in k else expected[k]
        np.testing.assert_array_equal(value, wanted, err_msg=k)


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-wired"])
def test_ncps_sparsity_masks_must_match_the_wiring(name):
    model = build(name)
    state = ncps_state_dict(build(name, seed=1))
    key = next(k for k in state if k.endswith("sparsity_mask"))
    flipped = state[key].copy()
    flipped.flat[0] = 1.0 - flipped.flat[0]
    with pytest.raises(ValueError, match=re.escape(key) + ".*wiring"):
        load_ncps_state_dict(model, dict(state, **{key: flipped}))
    with pytest.raises(ValueError, match=re.escape(key) + ".*wiring"):
        load_ncps_state_dict(model, dict(state, **{key: flipped[:-1]}))


def test_ncps_sparsity_masks_are_not_loaded_as_parameters():
    model = build("ltc-autoncp")
    load_ncps_state_dict(model, ncps_state_dict(build("ltc-autoncp", seed=1)))
    names = set(params(model))
    assert not any("sparsity_mask" in name for name in names)
