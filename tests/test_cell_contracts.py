"""The cell contract (ncps_mlx.cells.common): typed step constants and one name for elapsed time.

Each cell's ``prepare(x).params`` is its own NamedTuple, with None for the features it does not
use; those structures pass through ``mx.compile`` and ``astype``; and the one-step calls take
``timespans`` (plus ncps's own keyword as an alias).
"""

import typing

import mlx.core as mx
import numpy as np
import pytest

from ncps_mlx.cells import (
    CfCCell,
    CfCParams,
    CTGRUCell,
    CTGRUParams,
    CTRNNCell,
    CTRNNParams,
    LSTMCell,
    LSTMParams,
    LTCCell,
    LTCParams,
    ODELSTMCell,
    ODELSTMParams,
    WiredCfCCell,
    WiredCfCParams,
)
from ncps_mlx.quantization import astype
from ncps_mlx.wirings import AutoNCP, DynamicRoutingWiring, MetaWiring
from ncps_mlx.wirings.multiscale import MultiScaleWiring

F, B, T = 3, 2, 4


def meta_wiring():
    return MetaWiring(6, 5, 2, decay=0.8, learning_rate=0.5, seed=3)


def routing_wiring():
    return DynamicRoutingWiring(3, 2, routing_iterations=3, num_input_capsules=2, seed=1)


# id: (cell factory, params class, {field path: whether it is None})
CASES = {
    "cfc": (lambda: CfCCell(F, 6, backbone_units=5), CfCParams, {
        "backbone": True, "heads": False, "amplitude": True, "w_tau": True,
    }),
    "cfc-2-layers": (lambda: CfCCell(F, 6, backbone_units=5, backbone_layers=2), CfCParams, {
        "backbone": False, "backbone.0.weight": False, "heads": False, "amplitude": True,
    }),
    "cfc-no-backbone-no-gate": (
        lambda: CfCCell(F, 6, "no_gate", backbone_layers=0), CfCParams, {
            "backbone": True, "heads": True, "amplitude": True, "w_tau": True,
        }),
    "cfc-pure": (lambda: CfCCell(F, 6, "pure", backbone_units=5), CfCParams, {
        "backbone": True, "heads": False, "amplitude": False, "w_tau": False,
    }),
    "cfc-pure-no-backbone": (lambda: CfCCell(F, 6, "pure", backbone_layers=0), CfCParams, {
        "heads": True, "amplitude": False, "w_tau": False,
    }),
    "wired-cfc": (lambda: WiredCfCCell(F, AutoNCP(8, 2)), WiredCfCParams, {
        "layers.0.input_map": True, "layers.1.input_map": False, "layers.2.input_map": False,
        "layers.0.timespan_scale": True, "layers.2.timespan_scale": True,
        "layers.0.cell.heads": True, "layers.1.cell.backbone": True,
        "layers.1.cell.amplitude": True,
    }),
    "wired-cfc-pure-multiscale": (
        lambda: WiredCfCCell(F, MultiScaleWiring(7, 5, 4, 2, fan_in=3, seed=0), "pure"),
        WiredCfCParams, {
            "layers.0.timespan_scale": True, "layers.1.timespan_scale": False,
            "layers.1.cell.amplitude": False, "layers.3.input_map": False,
        }),
    "ltc-dense": (lambda: LTCCell(AutoNCP(8, 2), F, sparse=False), LTCParams, {
        "synapses.sources": True, "fast_weights": True, "routing": True,
    }),
    "ltc-fan-in": (lambda: LTCCell(AutoNCP(8, 2), F, sparse=True), LTCParams, {
        "synapses.sources": False, "fast_weights": True, "routing": True,
    }),
    "ltc-fast-weights": (lambda: LTCCell(meta_wiring(), F), LTCParams, {
        "fast_weights": False, "fast_weights.erev": False, "routing": True,
    }),
    "ltc-fast-weights-off": (lambda: LTCCell(meta_wiring(), F, fast_weights=False), LTCParams, {
        "fast_weights": True,
    }),
    "ltc-routing": (lambda: LTCCell(routing_wiring(), F), LTCParams, {
        "routing": False, "fast_weights": True, "synapses.sources": False,
    }),
    "lstm": (lambda: LSTMCell(F, 5), LSTMParams, {"recurrent_weight": False}),
    "ctrnn": (lambda: CTRNNCell(F, AutoNCP(8, 2)), CTRNNParams, {"inverse_tau": False}),
    "ctgru": (lambda: CTGRUCell(F, 5, time_scales=3), CTGRUParams, {"detect_weight": False}),
    "odelstm": (lambda: ODELSTMCell(F, 5), ODELSTMParams, {
        "lstm.recurrent_weight": False, "ode_hidden.bias": False, "ode_output.weight": False,
    }),
}  # fmt: skip


def field(params, path: str):
    """The value at a dotted ``path`` (field names and tuple indices) of ``params``."""
    for part in path.split("."):
        params = params[int(part)] if part.isdigit() else getattr(params, part)
    return params


def namedtuples(value):
    """Every NamedTuple in a nested structure, outermost first."""
    if isinstance(value, tuple):
        if hasattr(value, "_fields"):
            yield value
        for item in value:
            yield from namedtuples(item)


def leaves(value):
    """The non-tuple leaves of a nested structure."""
    if isinstance(value, tuple):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def empty_tuples(value, path="params"):
    """Paths of the empty tuples in a nested structure (absent features must be None)."""
    if not isinstance(value, tuple):
        return []
    if not value:
        return [path]
    names = getattr(value, "_fields", range(len(value)))
    return [
        found
        for name, item in zip(names, value, strict=True)
        for found in empty_tuples(item, f"{path}.{name}")
    ]


def prepared(cell, steps=T):
    mx.random.seed(0)
    return cell.prepare(mx.random.normal((steps, B, F)))


def random_state(cell):
    size = cell.hidden_size if isinstance(cell, CfCCell) else cell.state_size
    return mx.random.normal((B, size), key=mx.random.key(1))


# ---------------------------------------------------------------------- typed params
@pytest.mark.parametrize("name", CASES)
def test_prepare_returns_the_cells_params_namedtuple_with_none_for_absent_features(name):
    make, params_class, expected = CASES[name]
    params = prepared(make()).params
    assert type(params) is params_class
    for path, absent in expected.items():
        assert (field(params, path) is None) == absent, path
    assert empty_tuples(params) == []
    for leaf in leaves(params):
        assert leaf is None or isinstance(leaf, mx.array | int | float), type(leaf)


@pytest.mark.parametrize("name", CASES)
def test_every_params_namedtuple_annotates_and_documents_each_field(name):
    for params in namedtuples(prepared(CASES[name][0]()).params):
        cls = type(params)
        assert list(typing.get_type_hints(cls)) == list(cls._fields), cls.__name__
        for name in cls._fields:
            assert f"{name}:" in cls.__doc__ or f"{name}," in cls.__doc__, (cls.__name__, name)


@pytest.mark.parametrize("name", ["ltc-fast-weights", "ltc-routing", "cfc-pure", "wired-cfc"])
def test_astype_casts_the_prepared_params_and_keeps_their_types_and_nones(name):
    make, params_class, expected = CASES[name]
    cell = astype(make(), mx.float16)
    params = prepared(cell).params
    assert type(params) is params_class
    for path, absent in expected.items():
        assert (field(params, path) is None) == absent, path
    floating = [a for a in leaves(params) if isinstance(a, mx.array)]
    floating = [a for a in floating if mx.issubdtype(a.dtype, mx.floating)]
    assert floating and all(a.dtype == mx.float16 for a in floating)


# ---------------------------------------------------------------------- compiled steps
@pytest.mark.parametrize(
    "name", ["cfc", "cfc-no-backbone-no-gate", "wired-cfc", "ltc-dense", "ltc-fan-in", "ctgru"]
)
def test_a_compiled_step_with_none_fields_equals_the_uncompiled_step(name):
    cell = CASES[name][0]()
    inputs, params = prepared(cell)
    assert any(leaf is None for leaf in leaves(params)) or name == "ctgru"
    compiled = mx.compile(cell.step)
    state = expected_state = random_state(cell)
    timespans = mx.array([[0.5], [1.5]])
    for t in range(T):
        inputs_t = tuple(a[t] for a in inputs)
        y, state = compiled(inputs_t, params, state, timespans=timespans)
        y_ref, expected_state = cell.step(inputs_t, params, expected_state, timespans=timespans)
        np.testing.assert_allclose(np.array(y), np.array(y_ref), rtol=0, atol=1e-6)
        np.testing.assert_allclose(np.array(state), np.array(expected_state), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "name, path", [("ltc-routing", "routing"), ("ltc-fast-weights", "fast_weights")]
)
def test_one_compiled_step_follows_a_field_that_switches_between_array_and_none(name, path):
    """``mx.compile`` retraces when a field becomes None (e.g. after ``refresh_wiring``)."""
    cell = CASES[name][0]()
    inputs, params = prepared(cell, steps=1)
    inputs_t = tuple(a[0] for a in inputs)
    state = random_state(cell)
    compiled = mx.compile(cell.step)
    for variant in (params, params._replace(**{path: None}), params):
        y, _ = compiled(inputs_t, variant, state, timespans=0.7)
        y_ref, _ = cell.step(inputs_t, variant, state, timespans=0.7)
        np.testing.assert_allclose(np.array(y), np.array(y_ref), rtol=0, atol=1e-6)
    y_without, _ = compiled(inputs_t, params._replace(**{path: None}), state, timespans=0.7)
    assert not np.allclose(np.array(y_without), np.array(y), atol=1e-6)


# ---------------------------------------------------------------------- elapsed time keywords
ALIASES = {
    "cfc": (lambda: CfCCell(F, 6, backbone_units=5), "ts"),
    "wired-cfc": (lambda: WiredCfCCell(F, AutoNCP(8, 2)), "ts"),
    "ltc": (lambda: LTCCell(AutoNCP(8, 2), F), "elapsed_time"),
}


def one_step(cell, *args, **kwargs):
    x = mx.random.normal((B, F), key=mx.random.key(2))
    y, state = cell(x, random_state(cell), *args, **kwargs)
    return np.array(y), np.array(state)


@pytest.mark.parametrize("timespans", [0.5, mx.array([[0.25], [2.0]])], ids=["float", "array"])
@pytest.mark.parametrize("name", ALIASES)
def test_ncps_keyword_for_the_elapsed_time_equals_timespans(name, timespans):
    make, alias = ALIASES[name]
    cell = make()
    expected = one_step(cell, timespans=timespans)
    for result in (one_step(cell, **{alias: timespans}), one_step(cell, timespans)):
        for array, reference in zip(result, expected, strict=True):
            np.testing.assert_array_equal(array, reference)
    other = one_step(cell, timespans=3.0)
    assert not np.array_equal(other[1], expected[1])


@pytest.mark.parametrize("name", ALIASES)
def test_the_elapsed_time_defaults_to_one(name):
    cell = ALIASES[name][0]()
    for array, reference in zip(one_step(cell), one_step(cell, timespans=1.0), strict=True):
        np.testing.assert_array_equal(array, reference)


@pytest.mark.parametrize("name", ALIASES)
def test_passing_timespans_and_its_ncps_alias_is_a_type_error_naming_both(name):
    make, alias = ALIASES[name]
    with pytest.raises(TypeError, match=f"timespans and {alias}"):
        one_step(make(), timespans=0.5, **{alias: 0.5})
    with pytest.raises(TypeError, match=f"timespans and {alias}"):
        one_step(make(), 0.5, **{alias: 0.5})


@pytest.mark.parametrize(
    "make",
    [lambda: CTRNNCell(F, 5), lambda: CTGRUCell(F, 5, time_scales=3), lambda: ODELSTMCell(F, 5)],
    ids=["ctrnn", "ctgru", "odelstm"],
)
def test_ct_cells_take_timespans_by_keyword_or_position(make):
    cell = make()
    by_keyword, by_position = one_step(cell, timespans=0.5), one_step(cell, 0.5)
    for array, reference in zip(by_keyword, by_position, strict=True):
        np.testing.assert_array_equal(array, reference)
