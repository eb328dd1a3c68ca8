"""LTC and CfC equal ncps 1.0.1 (PyTorch) with copied weights: outputs, states and gradients.

Tolerances: float32 outputs and states within 1e-5 absolute (the issue asks for <= 1e-4);
gradients within 1e-4 relative to the largest gradient entry of each parameter.
"""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

import ncps_mlx.wirings as ours_wirings
from ncps_mlx import LTC, CfC
from ncps_mlx.serialization import _backbone_renames, _in_our_layout, load_ncps_state_dict

torch = pytest.importorskip("torch", reason="torch (extra 'parity') not installed")
ncps_torch = pytest.importorskip("ncps.torch", reason="ncps==1.0.1 (extra 'parity') not installed")
ncps_wirings = pytest.importorskip("ncps.wirings")

pytestmark = pytest.mark.parity

OUTPUT_ATOL = 1e-5
BATCH, STEPS, FEATURES = 3, 64, 5


def wirings(name, args):
    return getattr(ncps_wirings, name)(*args), getattr(ours_wirings, name)(*args)


def inputs(seed=0, batch=BATCH, steps=STEPS):
    return np.random.default_rng(seed).standard_normal((batch, steps, FEATURES)).astype(np.float32)


def pair(torch_cls, ours_cls, units_args=None, *args, sparse=None, **kwargs):
    """Build the ncps module and ours with the same arguments; copy ncps's weights into ours.

    ``sparse`` (ours only) picks the LTC synapse layout; None lets the cell choose.
    """
    torch.manual_seed(1)
    if units_args is not None:
        theirs_units, ours_units = wirings(*units_args)
    else:
        theirs_units = ours_units = args[0]
        args = args[1:]
    reference = torch_cls(FEATURES, theirs_units, *args, **kwargs)
    ours_kwargs = dict(kwargs, sparse=sparse) if sparse is not None else kwargs
    model = ours_cls(FEATURES, ours_units, *args, **ours_kwargs)
    load_ncps_state_dict(model, reference.state_dict())
    return reference, model


def as_list(state):
    return list(state) if isinstance(state, tuple) else [state]


def assert_same_run(reference, model, x, **kwargs):
    expected_y, expected_h = reference(
        torch.tensor(x), **{k: torch.tensor(v) for k, v in kwargs.items()}
    )
    y, h = model(mx.array(x), **{k: mx.array(v) for k, v in kwargs.items()})
    np.testing.assert_allclose(np.array(y), expected_y.detach().numpy(), rtol=0, atol=OUTPUT_ATOL)
    for ours_state, their_state in zip(as_list(h), as_list(expected_h), strict=True):
        np.testing.assert_allclose(
            np.array(ours_state), their_state.detach().numpy(), rtol=0, atol=OUTPUT_ATOL
        )


WIRING_CASES = [
    ("FullyConnected", (10,)),
    ("FullyConnected", (9, 3, 7, False)),
    ("Random", (12, 4, 0.6)),
    ("NCP", (6, 5, 2, 3, 2, 4, 2)),
    ("AutoNCP", (16, 3)),
]


@pytest.mark.parametrize("wiring", WIRING_CASES, ids=lambda w: w[0])
@pytest.mark.parametrize("mixed_memory", [False, True])
@pytest.mark.parametrize("sparse", [None, True, False])
def test_ltc_with_wiring_equals_ncps(wiring, mixed_memory, sparse):
    reference, model = pair(ncps_torch.LTC, LTC, wiring, mixed_memory=mixed_memory, sparse=sparse)
    assert_same_run(reference, model, inputs())


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("mapping", ["affine", "linear", None])
def test_ltc_options_equal_ncps(implicit, mapping):
    reference, model = pair(
        ncps_torch.LTC,
        LTC,
        ("AutoNCP", (14, 2)),
        input_mapping=mapping,
        output_mapping=mapping,
        ode_unfolds=3,
        implicit_param_constraints=implicit,
        return_sequences=False,
    )
    assert_same_run(reference, model, inputs())


@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_dense_cfc_modes_equal_ncps(mode):
    reference, model = pair(ncps_torch.CfC, CfC, None, 16, mode=mode)
    assert_same_run(reference, model, inputs())


@pytest.mark.parametrize("activation", ["lecun_tanh", "tanh", "relu", "gelu", "silu"])
def test_cfc_backbone_options_equal_ncps(activation):
    reference, model = pair(
        ncps_torch.CfC,
        CfC,
        None,
        12,
        proj_size=4,
        activation=activation,
        backbone_units=24,
        backbone_layers=3,
        mixed_memory=True,
    )
    assert_same_run(reference, model, inputs())


# ncps's wired CfC outputs the whole last layer; that equals the motor neurons only when the
# last layer holds exactly them, so single-layer wirings appear here with output_dim == units.
WIRED_CFC_CASES = [
    ("FullyConnected", (9, 9, 7, False)),
    ("Random", (12, 12, 0.6)),
    ("NCP", (6, 5, 2, 3, 2, 4, 2)),
    ("AutoNCP", (16, 3)),
]


@pytest.mark.parametrize("wiring", WIRED_CFC_CASES, ids=lambda w: w[0])
@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_wired_cfc_equals_ncps(wiring, mode):
    reference, model = pair(
        ncps_torch.CfC, CfC, wiring, mode=mode, proj_size=2, mixed_memory=mode == "default"
    )
    assert_same_run(reference, model, inputs())


def test_wired_cfc_outputs_the_motor_neurons_where_ncps_outputs_the_whole_layer():
    reference, model = pair(ncps_torch.CfC, CfC, ("FullyConnected", (9, 3)))
    x = inputs()
    expected_y, expected_h = reference(torch.tensor(x))
    y, h = model(mx.array(x))
    np.testing.assert_allclose(np.array(h), expected_h.detach().numpy(), rtol=0, atol=OUTPUT_ATOL)
    np.testing.assert_allclose(
        np.array(y), expected_y.detach().numpy()[..., :3], rtol=0, atol=OUTPUT_ATOL
    )


def test_time_major_and_unbatched_equal_ncps():
    reference, model = pair(ncps_torch.CfC, CfC, None, 8, batch_first=False)
    assert_same_run(reference, model, inputs().transpose(1, 0, 2))
    reference, model = pair(ncps_torch.LTC, LTC, ("AutoNCP", (12, 2)))
    assert_same_run(reference, model, inputs()[0])


@pytest.mark.parametrize(
    "torch_cls,ours_cls,units_args,args",
    [
        (ncps_torch.CfC, CfC, None, (10,)),
        (ncps_torch.CfC, CfC, ("AutoNCP", (16, 3)), ()),
        (ncps_torch.LTC, LTC, ("AutoNCP", (16, 3)), ()),
        (ncps_torch.LTC, LTC, ("FullyConnected", (8,)), ()),
    ],
)
def test_irregular_timespans_equal_ncps(torch_cls, ours_cls, units_args, args):
    # ncps broadcasts a (B,) timespan against the hidden axis, so it is only right for one
    # sequence at a time: compare our batched run with ncps on each sequence alone.
    reference, model = pair(torch_cls, ours_cls, units_args, *args)
    x = inputs(seed=3)
    timespans = np.random.default_rng(4).uniform(0.05, 3.0, (BATCH, STEPS)).astype(np.float32)
    y, h = model(mx.array(x), timespans=mx.array(timespans))
    for b in range(BATCH):
        expected_y, expected_h = reference(
            torch.tensor(x[b : b + 1]), timespans=torch.tensor(timespans[b : b + 1])
        )
        np.testing.assert_allclose(
            np.array(y[b]), expected_y[0].detach().numpy(), rtol=0, atol=OUTPUT_ATOL
        )
        np.testing.assert_allclose(
            np.array(h[b]), expected_h[0].detach().numpy(), rtol=0, atol=OUTPUT_ATOL
        )


def assert_same_gradients(reference, model, x, timespans):
    expected_y, expected_h = reference(torch.tensor(x), timespans=torch.tensor(timespans[:1]))
    ((expected_y**2).sum() + sum(state.sum() for state in as_list(expected_h))).backward()
    expected = {k: p.grad.numpy() for k, p in reference.named_parameters() if p.requires_grad}

    def loss(model, x, ts):
        y, h = model(x, timespans=ts)
        return (y**2).sum() + sum(state.sum() for state in as_list(h))

    _, grads = nn.value_and_grad(model, loss)(model, mx.array(x), mx.array(timespans[:1]))
    grads = dict(tree_flatten(grads))
    renames = _backbone_renames(expected)
    assert set(grads) == {renames.get(k, k) for k in expected}
    for key, value in expected.items():
        name = renames.get(key, key)
        got = np.array(grads[name])
        value = _in_our_layout(model, name, value)  # per-synapse tables in the sparse layout
        scale = max(np.abs(value).max(), 1e-6)
        np.testing.assert_allclose(got, value, rtol=0, atol=1e-4 * scale, err_msg=key)


def test_cfc_default_gradients_equal_torch():
    reference, model = pair(ncps_torch.CfC, CfC, None, 12, backbone_layers=2, backbone_units=16)
    timespans = np.random.default_rng(5).uniform(0.5, 1.5, (1, STEPS)).astype(np.float32)
    assert_same_gradients(reference, model, inputs(batch=1), timespans)


@pytest.mark.parametrize("sparse", [True, False])
def test_ltc_autoncp_gradients_equal_torch(sparse):
    reference, model = pair(ncps_torch.LTC, LTC, ("AutoNCP", (16, 3)), sparse=sparse)
    timespans = np.random.default_rng(6).uniform(0.5, 1.5, (1, STEPS)).astype(np.float32)
    assert_same_gradients(reference, model, inputs(batch=1), timespans)


def test_wired_cfc_gradients_equal_torch():
    reference, model = pair(ncps_torch.CfC, CfC, ("AutoNCP", (16, 3)), mixed_memory=True)
    timespans = np.random.default_rng(7).uniform(0.5, 1.5, (1, STEPS)).astype(np.float32)
    assert_same_gradients(reference, model, inputs(batch=1), timespans)


def test_loading_checks_the_wiring_masks():
    torch.manual_seed(0)
    reference = ncps_torch.LTC(FEATURES, ncps_wirings.AutoNCP(16, 3, seed=1))
    model = LTC(FEATURES, ours_wirings.AutoNCP(16, 3, seed=2))
    with pytest.raises(ValueError, match="does not match this model's wiring"):
        load_ncps_state_dict(model, reference.state_dict())
