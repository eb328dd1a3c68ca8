"""One step of each cell equals a plain numpy implementation of the equations in its docstring.

The numpy references below are written from the docstrings (and ncps 1.0.1's equations), run in
float64 on the weights read from the module, and compared with the float32 MLX step.

Tolerances: float32 rounding, 1e-5 absolute (``ATOL``) after one step.
"""

import math

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

from ncps_mlx import NCP, AutoNCP, CfCCell, FullyConnected, LSTMCell, LTCCell, WiredCfCCell
from ncps_mlx.wirings import GroupedWiring, connect

ATOL = 1e-5
BATCH = 4


# ---------------------------------------------------------------------- numpy references
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0.0, x)


_erf = np.vectorize(math.erf)

NUMPY_ACTIVATIONS = {
    "lecun_tanh": lambda x: 1.7159 * np.tanh(0.666 * x),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),  # exact (erf) form, as torch
    "silu": lambda x: x * sigmoid(x),
}


def numpy_params(module) -> dict[str, np.ndarray]:
    """The module's parameters as float64 numpy arrays in ncps's (dense) layout, by name."""
    to_ncps = getattr(module, "to_ncps", lambda name, value: np.array(value))
    return {k: to_ncps(k, v).astype(np.float64) for k, v in tree_flatten(module.parameters())}


def cfc_step_reference(p, x, h, ts, mode, activation, backbone_layers, ff_mask=None):
    """CfC docstring: z = backbone([x, h]); heads; the mode's update. ``ff_mask`` ``(D, H)``."""
    z = np.concatenate([x, h], axis=-1)
    for i in range(backbone_layers):
        z = NUMPY_ACTIVATIONS[activation](z @ p[f"backbone.{i}.weight"].T + p[f"backbone.{i}.bias"])

    def head(name):
        weight = p[f"{name}.weight"]
        if ff_mask is not None and name in ("ff1", "ff2"):
            weight = weight * ff_mask.T
        return z @ weight.T + p[f"{name}.bias"]

    if mode == "pure":
        f = head("ff1")
        a, w_tau = p["A"], p["w_tau"]
        return -a * np.exp(-ts * (np.abs(w_tau) + np.abs(f))) * f + a
    ff1, ff2 = np.tanh(head("ff1")), np.tanh(head("ff2"))
    tau = sigmoid(head("time_a") * ts + head("time_b"))
    if mode == "no_gate":
        return ff1 + tau * ff2
    return ff1 * (1.0 - tau) + tau * ff2


def ltc_step_reference(p, wiring, x, v, ts, ode_unfolds, epsilon, implicit, in_map, out_map):
    """LTC docstring: the fused semi-implicit Euler update, ``ode_unfolds`` times."""
    positive = softplus if implicit else (lambda a: a)
    mask = np.abs(wiring.adjacency_matrix).astype(np.float64)
    sensory_mask = np.abs(wiring.sensory_adjacency_matrix).astype(np.float64)
    if in_map in ("affine", "linear"):
        x = x * p["input_w"]
    if in_map == "affine":
        x = x + p["input_b"]
    # sensory synapses k -> j: (B, F, N)
    sensory = (
        positive(p["sensory_w"])
        * sigmoid(p["sensory_sigma"] * (x[:, :, None] - p["sensory_mu"]))
        * sensory_mask
    )
    sensory_num = (sensory * p["sensory_erev"]).sum(axis=1)
    sensory_den = sensory.sum(axis=1)
    c = positive(p["cm"]) * ode_unfolds / ts
    gleak = positive(p["gleak"])
    for _ in range(ode_unfolds):
        a = positive(p["w"]) * sigmoid(p["sigma"] * (v[:, :, None] - p["mu"])) * mask
        numerator = c * v + gleak * p["vleak"] + (a * p["erev"]).sum(axis=1) + sensory_num
        denominator = c + gleak + a.sum(axis=1) + sensory_den + epsilon
        v = numerator / denominator
    out = v[:, : wiring.output_dim]
    if out_map in ("affine", "linear"):
        out = out * p["output_w"]
    if out_map == "affine":
        out = out + p["output_b"]
    return out, v


def lstm_step_reference(p, x, h, c):
    """ncps LSTMCell: gates (i, input, forget, output), forget bias +1."""
    z = x @ p["input_map.weight"].T + p["input_map.bias"] + h @ p["recurrent_map.weight"].T
    i, gate_in, gate_forget, gate_out = np.split(z, 4, axis=-1)
    c = c * sigmoid(gate_forget + 1.0) + np.tanh(i) * sigmoid(gate_in)
    h = np.tanh(c) * sigmoid(gate_out)
    return h, c


# ---------------------------------------------------------------------- helpers
def rand(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def randomize(module, rng, names, scale=0.5):
    """Replace the named parameters with random normals (to exercise e.g. the mappings)."""
    params = dict(tree_flatten(module.parameters()))
    new = [(n, mx.array(rand(rng, *params[n].shape, scale=scale))) for n in names if n in params]
    module.update(tree_unflatten(new))


def close(actual, expected, atol=ATOL):
    np.testing.assert_allclose(np.array(actual), expected, rtol=0, atol=atol)


# ---------------------------------------------------------------------- CfCCell
@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
@pytest.mark.parametrize("backbone_layers", [0, 1, 2])
@pytest.mark.parametrize("activation", ["lecun_tanh", "tanh", "relu", "gelu", "silu"])
def test_cfc_cell_step_equals_numpy_equations(mode, backbone_layers, activation):
    mx.random.seed(0)
    rng = np.random.default_rng(1)
    cell = CfCCell(5, 7, mode, activation, backbone_units=9, backbone_layers=backbone_layers)
    if mode == "pure":  # A and w_tau start Xavier-small; give them a visible effect
        randomize(cell, rng, ["A", "w_tau"], scale=1.0)
    x, h = rand(rng, BATCH, 5), rand(rng, BATCH, 7)
    ts = rng.uniform(0.2, 2.0, (BATCH, 1)).astype(np.float32)
    y, h_new = cell(mx.array(x), mx.array(h), mx.array(ts))
    expected = cfc_step_reference(
        numpy_params(cell), x, h, ts.astype(np.float64), mode, activation, backbone_layers
    )
    close(h_new, expected)
    close(y, expected)


@pytest.mark.parametrize("ts", [0.0, 0.5, 3.0])
def test_cfc_cell_scalar_timespan_equals_numpy_equations(ts):
    mx.random.seed(2)
    rng = np.random.default_rng(3)
    cell = CfCCell(3, 6, backbone_units=8)
    x, h = rand(rng, BATCH, 3), rand(rng, BATCH, 6)
    _, h_new = cell(mx.array(x), mx.array(h), ts)
    close(h_new, cfc_step_reference(numpy_params(cell), x, h, ts, "default", "lecun_tanh", 1))


def test_cfc_cell_sparsity_mask_zeroes_masked_ff_inputs_only():
    mx.random.seed(4)
    rng = np.random.default_rng(5)
    mask = (rng.uniform(size=(3 + 6, 6)) < 0.5).astype(np.float32)
    cell = CfCCell(3, 6, backbone_layers=0, sparsity_mask=mask)
    x, h = rand(rng, BATCH, 3), rand(rng, BATCH, 6)
    _, h_new = cell(mx.array(x), mx.array(h), 1.0)
    expected = cfc_step_reference(
        numpy_params(cell), x, h, 1.0, "default", "lecun_tanh", 0, ff_mask=mask
    )
    close(h_new, expected)


def test_cfc_cell_backbone_dropout_is_inactive_in_eval_mode():
    mx.random.seed(6)
    rng = np.random.default_rng(7)
    cell = CfCCell(3, 6, backbone_units=8, backbone_layers=2, backbone_dropout=0.5)
    cell.eval()
    x, h = rand(rng, BATCH, 3), rand(rng, BATCH, 6)
    _, h_new = cell(mx.array(x), mx.array(h), 1.0)
    close(h_new, cfc_step_reference(numpy_params(cell), x, h, 1.0, "default", "lecun_tanh", 2))


def test_cfc_cell_has_ncps_parameter_names_and_shapes():
    cell = CfCCell(3, 6, backbone_units=8, backbone_layers=2)
    shapes = {k: tuple(v.shape) for k, v in tree_flatten(cell.parameters())}
    assert shapes == {
        "backbone.0.weight": (8, 9),
        "backbone.0.bias": (8,),
        "backbone.1.weight": (8, 8),
        "backbone.1.bias": (8,),
        **{f"{head}.weight": (6, 8) for head in ("ff1", "ff2", "time_a", "time_b")},
        **{f"{head}.bias": (6,) for head in ("ff1", "ff2", "time_a", "time_b")},
    }
    pure = CfCCell(3, 6, "pure", backbone_layers=0)
    shapes = {k: tuple(v.shape) for k, v in tree_flatten(pure.parameters())}
    assert shapes == {"ff1.weight": (6, 9), "ff1.bias": (6,), "A": (1, 6), "w_tau": (1, 6)}


@pytest.mark.parametrize("bad", ["swish", "sigmoid", "Tanh"])
def test_cfc_cell_unknown_activation_is_a_value_error_naming_it(bad):
    with pytest.raises(ValueError, match=bad):
        CfCCell(3, 4, backbone_activation=bad)


def test_cfc_cell_unknown_mode_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="gated"):
        CfCCell(3, 4, mode="gated")


def test_cfc_cell_sparsity_mask_of_wrong_shape_is_a_value_error():
    with pytest.raises(ValueError, match="sparsity_mask"):
        CfCCell(3, 4, backbone_layers=0, sparsity_mask=np.ones((4, 4)))


# ---------------------------------------------------------------------- LTCCell
LTC_RANDOMIZED = ["input_w", "input_b", "output_w", "output_b", "erev", "sensory_erev", "vleak"]


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("mapping", ["affine", "linear", None])
def test_ltc_cell_step_with_autoncp_equals_numpy_equations(sparse, implicit, mapping):
    mx.random.seed(10)
    rng = np.random.default_rng(11)
    wiring = AutoNCP(12, 3)
    cell = LTCCell(
        wiring,
        4,
        input_mapping=mapping,
        output_mapping=mapping,
        ode_unfolds=4,
        implicit_param_constraints=implicit,
        sparse=sparse,
    )
    randomize(cell, rng, LTC_RANDOMIZED)
    x, v = rand(rng, BATCH, 4), rand(rng, BATCH, 12, scale=0.3)
    ts = rng.uniform(0.2, 2.0, (BATCH, 1)).astype(np.float32)
    y, v_new = cell(mx.array(x), mx.array(v), mx.array(ts))
    expected_y, expected_v = ltc_step_reference(
        numpy_params(cell), wiring, x, v, ts, 4, 1e-8, implicit, mapping, mapping
    )
    close(v_new, expected_v)
    close(y, expected_y)


@pytest.mark.parametrize(
    "wiring", [FullyConnected(6, 2), NCP(4, 3, 2, 2, 2, 2, 2)], ids=["FullyConnected", "NCP"]
)
def test_ltc_cell_step_with_other_wirings_equals_numpy_equations(wiring):
    mx.random.seed(12)
    rng = np.random.default_rng(13)
    cell = LTCCell(wiring, 3, ode_unfolds=6, epsilon=1e-3)
    randomize(cell, rng, LTC_RANDOMIZED)
    x, v = rand(rng, BATCH, 3), rand(rng, BATCH, wiring.units, scale=0.3)
    y, v_new = cell(mx.array(x), mx.array(v), 0.7)
    expected_y, expected_v = ltc_step_reference(
        numpy_params(cell), wiring, x, v, 0.7, 6, 1e-3, False, "affine", "affine"
    )
    close(v_new, expected_v)
    close(y, expected_y)


def test_ltc_cell_wiring_masks_are_constants_not_parameters():
    cell = LTCCell(AutoNCP(10, 2), 3)
    names = {k for k, _ in tree_flatten(cell.trainable_parameters())}
    assert names == {
        "gleak", "vleak", "cm", "sigma", "mu", "w", "erev",
        "sensory_sigma", "sensory_mu", "sensory_w", "sensory_erev",
        "input_w", "input_b", "output_w", "output_b",
    }  # fmt: skip


@pytest.mark.parametrize("name", ["input_mapping", "output_mapping"])
def test_ltc_cell_unknown_mapping_is_a_value_error_naming_it(name):
    with pytest.raises(ValueError, match=f"{name}.*'scaled'"):
        LTCCell(FullyConnected(4), 2, **{name: "scaled"})


def test_ltc_cell_apply_weight_constraints_clips_at_zero_in_explicit_mode():
    mx.random.seed(14)
    rng = np.random.default_rng(15)
    cell = LTCCell(AutoNCP(10, 2), 3, implicit_param_constraints=False)
    randomize(cell, rng, ["w", "sensory_w", "cm", "gleak", "vleak", "sigma", "mu"], scale=1.0)
    before = numpy_params(cell)
    cell.apply_weight_constraints()
    after = numpy_params(cell)
    for name in before:
        if name in ("w", "sensory_w", "cm", "gleak"):
            assert (before[name] < 0).any()  # the test would be vacuous otherwise
            np.testing.assert_array_equal(after[name], np.maximum(before[name], 0.0))
        else:
            np.testing.assert_array_equal(after[name], before[name])


def test_ltc_cell_apply_weight_constraints_does_nothing_in_implicit_mode():
    mx.random.seed(16)
    rng = np.random.default_rng(17)
    cell = LTCCell(AutoNCP(10, 2), 3, implicit_param_constraints=True)
    randomize(cell, rng, ["w", "sensory_w", "cm", "gleak"], scale=1.0)
    before = numpy_params(cell)
    cell.apply_weight_constraints()
    after = numpy_params(cell)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


# ---------------------------------------------------------------------- LSTMCell
def test_lstm_cell_step_equals_numpy_lstm_with_forget_bias_one():
    mx.random.seed(20)
    rng = np.random.default_rng(21)
    cell = LSTMCell(5, 7)
    x, h, c = rand(rng, BATCH, 5), rand(rng, BATCH, 7), rand(rng, BATCH, 7)
    h_new, c_new = cell(mx.array(x), (mx.array(h), mx.array(c)))
    expected_h, expected_c = lstm_step_reference(numpy_params(cell), x, h, c)
    close(h_new, expected_h)
    close(c_new, expected_c)


def test_lstm_cell_has_ncps_parameter_names_and_shapes():
    shapes = {k: tuple(v.shape) for k, v in tree_flatten(LSTMCell(5, 7).parameters())}
    assert shapes == {
        "input_map.weight": (28, 5),
        "input_map.bias": (28,),
        "recurrent_map.weight": (28, 7),
    }


# ---------------------------------------------------------------------- WiredCfCCell
def wired_step_reference(cell, wiring, x, h, ts, mode):
    """numpy: layer l reads the previous layer's new state (x for layer 0) masked by the wiring,
    plus its own state; the state is the layers in order; outputs are neurons 0..M-1."""
    layers = [wiring.get_neurons_of_layer(i) for i in range(wiring.num_layers)]
    states = np.split(h, np.cumsum([len(n) for n in layers])[:-1], axis=-1)
    inputs, previous, new_states = x, None, []
    for index, neurons in enumerate(layers):
        if previous is None:
            input_mask = np.abs(wiring.sensory_adjacency_matrix)[:, neurons]
        else:
            input_mask = np.abs(wiring.adjacency_matrix)[np.ix_(previous, neurons)]
        ff_mask = np.concatenate([input_mask, np.ones((len(neurons), len(neurons)))], axis=0)
        p = numpy_params(getattr(cell, f"layer_{index}"))
        new = cfc_step_reference(p, inputs, states[index], ts, mode, "lecun_tanh", 0, ff_mask)
        new_states.append(new)
        inputs, previous = new, neurons
    h_new = np.concatenate(new_states, axis=-1)
    order = np.concatenate(layers)  # neuron id at each state position
    motor_positions = [int(np.flatnonzero(order == n)[0]) for n in range(wiring.output_dim)]
    return h_new[:, motor_positions], h_new


WIRED_CASES = [
    ("AutoNCP", lambda: AutoNCP(12, 3)),
    ("NCP", lambda: NCP(4, 3, 2, 2, 2, 2, 2)),
    ("FullyConnected", lambda: FullyConnected(7, 3)),
]


@pytest.mark.parametrize(
    "make_wiring", [c[1] for c in WIRED_CASES], ids=[c[0] for c in WIRED_CASES]
)
@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_wired_cfc_step_equals_running_its_layer_cells_in_order(make_wiring, mode):
    mx.random.seed(30)
    rng = np.random.default_rng(31)
    wiring = make_wiring()
    cell = WiredCfCCell(4, wiring, mode)
    x, h = rand(rng, BATCH, 4), rand(rng, BATCH, wiring.units)
    y, h_new = cell(mx.array(x), mx.array(h), 0.8)

    by_hand, inputs = [], mx.array(x)
    states = mx.split(mx.array(h), np.cumsum(cell.layer_sizes)[:-1].tolist(), axis=-1)
    for layer, state in zip(cell.layers, states, strict=True):
        _, inputs = layer(inputs, state, 0.8)
        by_hand.append(inputs)
    close(h_new, np.array(mx.concatenate(by_hand, axis=-1)))
    if wiring.num_layers == 3:  # NCP: the motor neurons are the last layer
        close(y, np.array(by_hand[-1]))

    expected_y, expected_h = wired_step_reference(cell, wiring, x, h, 0.8, mode)
    close(h_new, expected_h)
    close(y, expected_y)


def test_wired_cfc_layers_follow_the_wiring_layers():
    wiring = NCP(4, 3, 2, 2, 2, 2, 2)
    cell = WiredCfCCell(5, wiring)
    assert cell.layer_sizes == [4, 3, 2]
    assert [layer.input_size for layer in cell.layers] == [5, 4, 3]
    assert [layer.backbone_layers for layer in cell.layers] == [0, 0, 0]


def test_wired_cfc_unknown_mode_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="gated"):
        WiredCfCCell(3, AutoNCP(8, 2), mode="gated")


class _TimeScaled(GroupedWiring):
    """A small two-group wiring whose hidden group runs ``scale`` times slower."""

    def __init__(self, scale=4.0, seed=0):
        super().__init__(6)
        self._scale, self._seed = scale, seed
        self._define_groups(
            [("output", 2), ("hidden", 4)],
            [["hidden"], ["output"]],
            time_scales={"hidden": scale},
        )
        rng = np.random.default_rng(seed)
        connect(
            self, self.group("hidden"), self.group("hidden"), fan_in=2, polarity="random", rng=rng
        )
        connect(
            self, self.group("hidden"), self.group("output"), fan_in=3, polarity="random", rng=rng
        )

    def _build_sensory_synapses(self):
        connect(self, range(self.input_dim), self.group("hidden"), sensory=True)

    def _config_args(self):
        return {"scale": self._scale, "seed": self._seed}


def test_ltc_capacitance_starts_scaled_by_the_wiring_time_scales():
    mx.random.seed(3)
    cm = np.array(LTCCell(_TimeScaled(scale=4.0), 3).cm)
    assert np.all((cm[:2] >= 0.4) & (cm[:2] <= 0.6))  # ncps's init range
    assert np.all((cm[2:] >= 1.6) & (cm[2:] <= 2.4))  # four times that range


def test_wired_cfc_slow_neurons_see_the_elapsed_time_divided_by_their_scale():
    slow, unit = WiredCfCCell(3, _TimeScaled(scale=4.0)), WiredCfCCell(3, _TimeScaled(scale=1.0))
    unit.update(slow.parameters())
    x, h = mx.random.normal((2, 3)), mx.random.normal((2, 6))
    # Layer order is hidden | output; only the hidden layer is slowed down.
    _, h_slow = slow(x, h, ts=2.0)
    _, h_quarter = unit(x, h, ts=0.5)
    _, h_full = unit(x, h, ts=2.0)
    np.testing.assert_allclose(np.array(h_slow[:, :4]), np.array(h_quarter[:, :4]), atol=1e-6)
    assert not np.allclose(np.array(h_slow[:, :4]), np.array(h_full[:, :4]), atol=1e-4)
