"""``export_ncps_state_dict``: ncps_mlx weights back into ncps 1.0.1's PyTorch modules.

Two properties for every configuration ncps has (LTC, CfC in all modes, dense and wired, mixed
memory, ``proj_size``, and the four cells):

- ncps -> ncps_mlx -> ncps is exact: an ncps module's state dict, loaded into ours and exported
  again, loads into a *fresh* ncps module (other initial weights) with ``load_state_dict``
  (strict), and the tensors and outputs equal the original's exactly;
- a model initialised by ncps_mlx, exported, computes the same outputs and states in ncps
  within 1e-5.

What ncps lacks raises an error naming it. Parity tests are marked ``parity`` and skip
without ncps/torch; on CUDA, MLX's matmuls must not run in TF32 (set before MLX starts).
"""

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import ncps_mlx  # noqa: E402
import ncps_mlx.wirings as ours_wirings  # noqa: E402
from ncps_mlx import io, serialization  # noqa: E402
from ncps_mlx.cells import CfCCell, LSTMCell, LTCCell, WiredCfCCell  # noqa: E402
from ncps_mlx.hybrid import LiquidLayer  # noqa: E402
from ncps_mlx.quantization import quantize  # noqa: E402
from ncps_mlx.sequence import CTRNN  # noqa: E402
from ncps_mlx.serialization import export_ncps_state_dict, load_ncps_state_dict  # noqa: E402
from ncps_mlx.wirings import (  # noqa: E402
    AutoNCP,
    DynamicRoutingWiring,
    FullyConnected,
    HierarchicalWiring,
    MetaWiring,
    Wiring,
    to_ncps_wiring,
)

ATOL = 1e-5
BATCH, STEPS, FEATURES = 3, 12, 5

# name -> (module class, units: an int or a wiring (class name, args), keyword arguments)
MODULES = {
    "ltc_fully_connected": ("LTC", 8, {}),
    "ltc_autoncp": ("LTC", ("AutoNCP", (16, 3)), {}),
    "ltc_ncp_mixed_memory": ("LTC", ("NCP", (6, 5, 2, 3, 2, 4, 2)), {"mixed_memory": True}),
    "ltc_random_options": (
        "LTC",
        ("Random", (10, 4, 0.5)),
        {
            "input_mapping": "linear",
            "output_mapping": None,
            "ode_unfolds": 3,
            "implicit_param_constraints": False,
            "return_sequences": False,
        },
    ),
    "cfc_default": ("CfC", 8, {}),
    "cfc_no_gate": ("CfC", 8, {"mode": "no_gate", "activation": "silu"}),
    "cfc_pure": ("CfC", 8, {"mode": "pure"}),
    "cfc_no_backbone": ("CfC", 8, {"backbone_layers": 0}),
    "cfc_deep_dropout_proj": (
        "CfC",
        8,
        {
            "backbone_units": 16,
            "backbone_layers": 3,
            "backbone_dropout": 0.3,
            "proj_size": 3,
            "activation": "gelu",
        },
    ),
    "cfc_mixed_memory": ("CfC", 6, {"mixed_memory": True, "activation": "relu"}),
    "cfc_pure_mixed_proj": ("CfC", 6, {"mode": "pure", "mixed_memory": True, "proj_size": 2}),
    "wired_cfc_autoncp": ("CfC", ("AutoNCP", (16, 3)), {}),
    "wired_cfc_ncp_pure_proj": (
        "CfC",
        ("NCP", (6, 5, 2, 3, 2, 4, 2)),
        {"mode": "pure", "proj_size": 2},
    ),
    "wired_cfc_fully_connected_no_gate_mixed": (
        "CfC",
        ("FullyConnected", (7,)),
        {"mode": "no_gate", "mixed_memory": True},
    ),
    "wired_cfc_random": ("CfC", ("Random", (9, 9, 0.5)), {"return_sequences": False}),
}
# Our LTC's synapse layout (ncps has only the dense one): each LTC case runs with both.
LAYOUTS = {"dense": {"sparse": False}, "fan_in": {"sparse": True}}
CASES = [
    (name, layout)
    for name, (kind, _, _) in MODULES.items()
    for layout in (LAYOUTS if kind == "LTC" else {"-": {}})
]
CASE_IDS = [f"{name}-{layout}" for name, layout in CASES]


@pytest.fixture
def ncps():
    """torch, ncps.torch and ncps.wirings (skips without them)."""
    torch = pytest.importorskip("torch", reason="torch (extra 'parity') not installed")
    ncps_torch = pytest.importorskip("ncps.torch", reason="ncps==1.0.1 not installed")
    ncps_wirings = pytest.importorskip("ncps.wirings")
    return torch, ncps_torch, ncps_wirings


def inputs(seed=0):
    return np.random.default_rng(seed).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)


def build_ncps(ncps, name, seed, wiring=None):
    """ncps's module ``name`` with weights drawn from torch seed ``seed``, in eval mode; its
    wiring is ``wiring`` or ncps's own class with the same arguments."""
    torch, ncps_torch, ncps_wirings = ncps
    kind, units, kwargs = MODULES[name]
    if wiring is None and not isinstance(units, int):
        wiring = getattr(ncps_wirings, units[0])(*units[1])
    torch.manual_seed(seed)
    return getattr(ncps_torch, kind)(FEATURES, units if wiring is None else wiring, **kwargs).eval()


def build_ours(name, layout="-"):
    kind, units, kwargs = MODULES[name]
    if not isinstance(units, int):
        units = getattr(ours_wirings, units[0])(*units[1])
    extra = LAYOUTS.get(layout, {})
    return getattr(ncps_mlx, kind)(FEATURES, units, **kwargs, **extra).eval()


def as_torch(ncps, state):
    return {key: ncps[0].from_numpy(value) for key, value in state.items()}


def flat(result):
    """``(outputs, state)`` -> list of numpy arrays (a mixed-memory state is a pair)."""
    outputs, state = result
    states = list(state) if isinstance(state, tuple | list) else [state]
    return [np.array(a.detach().numpy() if hasattr(a, "detach") else a) for a in [outputs, *states]]


def run_torch(ncps, module, x):
    return flat(module(ncps[0].from_numpy(x)))


def run_ours(model, x):
    return flat(model(mx.array(x)))


def assert_all_close(got, expected, atol):
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)


def synapse_masks(state):
    """ncps's LTC masks for each synapse parameter of a state dict (None for the others)."""
    masks = {}
    for key in state:
        prefix, _, attribute = key.rpartition(".")
        sensory = attribute.startswith("sensory_")
        if attribute.removeprefix("sensory_") in ("sigma", "mu", "w", "erev"):
            mask = f"{prefix}.{'sensory_' if sensory else ''}sparsity_mask"
            masks[key] = state.get(mask)
    return masks


# ---------------------------------------------------------------------- ncps -> ours -> ncps
@pytest.mark.parity
@pytest.mark.parametrize("name,layout", CASES, ids=CASE_IDS)
def test_ncps_to_ncps_mlx_to_ncps_round_trip_is_exact(ncps, name, layout):
    source = build_ncps(ncps, name, seed=1)
    model = build_ours(name, layout)
    load_ncps_state_dict(model, source.state_dict())
    exported = export_ncps_state_dict(model)

    fresh = build_ncps(ncps, name, seed=2)
    x = inputs()
    assert not np.allclose(run_torch(ncps, fresh, x)[0], run_torch(ncps, source, x)[0])
    fresh.load_state_dict(as_torch(ncps, exported))  # strict: exactly ncps's keys

    expected = {key: value.numpy() for key, value in source.state_dict().items()}
    assert exported.keys() == expected.keys()
    masks = synapse_masks(expected) if layout == "fan_in" else {}
    for key, value in exported.items():
        assert value.dtype == np.float32 and value.shape == expected[key].shape, key
        if masks.get(key) is None:
            np.testing.assert_array_equal(value, expected[key], err_msg=key)
        else:  # the fan-in layout keeps synapses only: masked-out entries come back 0
            mask = masks[key] != 0
            np.testing.assert_array_equal(value[mask], expected[key][mask], err_msg=key)
            assert not value[~mask].any(), key

    reference = run_torch(ncps, source, x)
    assert_all_close(run_torch(ncps, fresh, x), reference, atol=0)
    assert_all_close(run_ours(model, x), reference, atol=ATOL)


# ---------------------------------------------------------------------- ours -> ncps
@pytest.mark.parity
@pytest.mark.parametrize("name,layout", CASES, ids=CASE_IDS)
def test_model_initialised_by_ncps_mlx_computes_the_same_in_ncps(ncps, name, layout):
    mx.random.seed(3)
    model = build_ours(name, layout)
    theirs = build_ncps(ncps, name, seed=4)
    theirs.load_state_dict(as_torch(ncps, export_ncps_state_dict(model)))
    x = inputs(1)
    assert_all_close(run_ours(model, x), run_torch(ncps, theirs, x), atol=ATOL)


@pytest.mark.parity
@pytest.mark.parametrize("kind", ["LTC", "CfC"])
def test_model_exports_into_ncps_with_the_wiring_to_ncps_wiring_gives(ncps, kind):
    wiring = AutoNCP(20, 4, seed=7)
    model = getattr(ncps_mlx, kind)(FEATURES, wiring, mixed_memory=True).eval()
    torch, ncps_torch, _ = ncps
    theirs = getattr(ncps_torch, kind)(FEATURES, to_ncps_wiring(wiring), mixed_memory=True)
    theirs.load_state_dict(as_torch(ncps, export_ncps_state_dict(model)))
    assert_all_close(run_ours(model, inputs()), run_torch(ncps, theirs.eval(), inputs()), ATOL)


@pytest.mark.parity
def test_ltc_over_a_wiring_class_ncps_lacks_exports_through_its_synapses(ncps):
    wiring = HierarchicalWiring([6, 5, 2], fan_in=2, seed=3)
    model = ncps_mlx.LTC(FEATURES, wiring)
    theirs = ncps[1].LTC(FEATURES, to_ncps_wiring(wiring))  # an ncps base Wiring
    theirs.load_state_dict(as_torch(ncps, export_ncps_state_dict(model)))
    assert_all_close(run_ours(model, inputs()), run_torch(ncps, theirs, inputs()), ATOL)


# ---------------------------------------------------------------------- cells
def make_cells(ncps, name):
    """(ncps cell, our cell, initial state as numpy) for cell case ``name``."""
    _, ncps_torch, ncps_wirings = ncps
    rng = np.random.default_rng(5)
    if name in ("LTCCell", "WiredCfCCell"):
        theirs_wiring, our_wiring = ncps_wirings.AutoNCP(12, 3), AutoNCP(12, 3)
        if name == "LTCCell":
            pair = (
                ncps_torch.LTCCell(theirs_wiring, FEATURES),
                LTCCell(our_wiring, FEATURES, sparse=False),  # ncps's layout: exact round trip
            )
        else:
            pair = (
                ncps_torch.WiredCfCCell(FEATURES, theirs_wiring, "no_gate"),
                WiredCfCCell(FEATURES, our_wiring, "no_gate"),
            )
        return (*pair, rng.standard_normal((BATCH, 12)).astype(np.float32))
    if name == "LSTMCell":
        state = tuple(rng.standard_normal((2, BATCH, 6)).astype(np.float32))
        return ncps_torch.lstm.LSTMCell(FEATURES, 6), LSTMCell(FEATURES, 6), state
    mode, layers = ("pure", 0) if name == "CfCCell_pure" else ("default", 2)
    args = (FEATURES, 6, mode, "tanh", 10, layers, 0.0)
    state = rng.standard_normal((BATCH, 6)).astype(np.float32)
    return ncps_torch.CfCCell(*args), CfCCell(*args), state


def step_torch(ncps, cell, x, state):
    torch = ncps[0]
    if isinstance(state, tuple):
        return flat(cell(torch.from_numpy(x), tuple(map(torch.from_numpy, state))))
    return flat(cell(torch.from_numpy(x), torch.from_numpy(state), 1.0))


def step_ours(cell, x, state):
    if isinstance(state, tuple):
        return flat(cell(mx.array(x), tuple(map(mx.array, state))))
    return flat(cell(mx.array(x), mx.array(state)))


@pytest.mark.parity
@pytest.mark.parametrize("name", ["LTCCell", "CfCCell", "CfCCell_pure", "WiredCfCCell", "LSTMCell"])
def test_cells_round_trip_exactly_and_export_into_ncps(ncps, name):
    torch = ncps[0]
    torch.manual_seed(6)
    source, cell, state = make_cells(ncps, name)
    x = inputs()[:, 0]
    load_ncps_state_dict(cell, source.state_dict())
    exported = export_ncps_state_dict(cell)
    expected = source.state_dict()
    assert exported.keys() == expected.keys()
    for key, value in exported.items():
        np.testing.assert_array_equal(value, expected[key].numpy(), err_msg=key)
    assert_all_close(step_ours(cell, x, state), step_torch(ncps, source, x, state), ATOL)

    mx.random.seed(7)  # and one initialised by ncps_mlx
    fresh, cell, state = make_cells(ncps, name)
    fresh.load_state_dict(as_torch(ncps, export_ncps_state_dict(cell)))
    assert_all_close(step_ours(cell, x, state), step_torch(ncps, fresh, x, state), ATOL)


# ---------------------------------------------------------------------- what ncps lacks
def test_export_is_public_under_io_and_serialization():
    assert io.export_ncps_state_dict is export_ncps_state_dict
    assert "export_ncps_state_dict" in io.__all__ and "export_ncps_state_dict" in (
        serialization.__all__
    )


def test_exported_state_is_float32_numpy_under_ncps_names():
    model = ncps_mlx.CfC(FEATURES, 8, backbone_layers=3, backbone_dropout=0.1, proj_size=2)
    state = export_ncps_state_dict(model)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
    # ncps's nn.Sequential with dropout: Linear, act, Linear, act, Dropout, Linear, ...
    backbone = sorted(k for k in state if ".backbone." in k)
    assert backbone == [
        f"rnn_cell.backbone.{i}.{kind}" for i in (0, 2, 5) for kind in ("bias", "weight")
    ]
    np.testing.assert_array_equal(state["fc.weight"], np.array(model.fc.weight))


class TimeScaledWiring(Wiring):
    """One layer of all neurons, but half of them twice as slow (ncps's cells have no such)."""

    def __init__(self, units):
        super().__init__(units)
        self.set_output_dim(units)
        self.add_synapses(np.arange(units), np.arange(units)[::-1], 1)

    def _build_sensory_synapses(self):
        self.add_sensory_synapses(np.zeros(self.units, int), np.arange(self.units), 1)

    def neuron_time_scales(self):
        return np.where(np.arange(self.units) % 2, 2.0, 1.0).astype(np.float32)


UNSUPPORTED = {
    "ctrnn": (lambda: CTRNN(FEATURES, 8), TypeError, "CTRNN has no ncps counterpart"),
    "hybrid_layer": (lambda: LiquidLayer(16), TypeError, "LiquidLayer has no ncps counterpart"),
    "linear": (lambda: nn.Linear(3, 4), TypeError, "Linear has no ncps counterpart"),
    "ltc_solver": (
        lambda: ncps_mlx.LTC(FEATURES, 8, solver="rk4"),
        ValueError,
        "solver='rk4'",
    ),
    "ltc_cell_solver": (
        lambda: LTCCell(FullyConnected(4), FEATURES, solver="euler"),
        ValueError,
        "solver='euler'",
    ),
    "ltc_fast_weights": (
        lambda: ncps_mlx.LTC(FEATURES, MetaWiring(6, 10)),
        ValueError,
        "Hebbian fast weights",
    ),
    "ltc_routing": (
        lambda: ncps_mlx.LTC(FEATURES, DynamicRoutingWiring(3, 4)),
        ValueError,
        "routing",
    ),
    "quantized_cfc": (
        lambda: _quantized(ncps_mlx.CfC(FEATURES, 64, backbone_units=64)),
        ValueError,
        "quantized",
    ),
    "wired_cfc_more_neurons_than_motor": (
        lambda: ncps_mlx.CfC(FEATURES, FullyConnected(8, output_dim=3)),
        ValueError,
        "last layer",
    ),
    "wired_cfc_layers": (
        lambda: ncps_mlx.CfC(FEATURES, HierarchicalWiring([6, 5, 2], fan_in=2)),
        ValueError,
        "HierarchicalWiring with layers of sizes",
    ),
    "wired_cfc_time_scales": (
        lambda: ncps_mlx.CfC(FEATURES, TimeScaledWiring(6)),
        ValueError,
        "time scales",
    ),
}


def _quantized(model):
    quantize(model, bits=4, group_size=32)
    return model


@pytest.mark.parametrize("make,error,named", list(UNSUPPORTED.values()), ids=list(UNSUPPORTED))
def test_what_ncps_lacks_raises_an_error_naming_it(make, error, named):
    with pytest.raises(error, match=named):
        export_ncps_state_dict(make())
