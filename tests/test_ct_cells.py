"""CT-RNN, CT-GRU and ODE-LSTM: the papers' equations, the sequence contract, wiring masks.

Every numerical property compares two independent computations: the MLX modules against plain
numpy loops over each cell's equations written below (float64, weights copied out of the
module), the whole-sequence run against stepping the cell, padded against unpadded batches,
time-major against batch-first, unbatched against a batch of one; the ODE solvers against the
exact solution of a linear ODE.

Tolerances: float32 against the float64 references, 1e-5 relative (``RTOL``) with a 1e-6
absolute floor; 1e-5 absolute (``ATOL``) between two float32 runs.
"""

from functools import partial

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from model_helpers import build_model, model_twin, random_sequences
from training import train

from ncps_mlx.cells.ctgru import CTGRUCell
from ncps_mlx.cells.ctrnn import CTRNNCell
from ncps_mlx.cells.ode_solvers import integrate
from ncps_mlx.cells.odelstm import ODELSTMCell
from ncps_mlx.sequence import CTGRU, CTRNN, ODELSTM
from ncps_mlx.wirings import NCP, AutoNCP, FullyConnected, Wiring

RTOL, FLOOR, ATOL = 1e-5, 1e-6, 1e-5
F, B, T = 3, 3, 6

MODELS = {
    "ctrnn-int": lambda **kw: CTRNN(F, 5, **kw),
    "ctrnn-ncp-rk4": lambda **kw: CTRNN(
        F, NCP(3, 3, 2, 2, 2, 2, 2), solver="rk4", ode_unfolds=2, **kw
    ),
    "ctgru-int": lambda **kw: CTGRU(F, 4, time_scales=3, **kw),
    "ctgru-autoncp": lambda **kw: CTGRU(F, AutoNCP(8, 2), **kw),
    "odelstm-int": lambda **kw: ODELSTM(F, 5, **kw),
    "odelstm-autoncp-heun": lambda **kw: ODELSTM(F, AutoNCP(8, 2), solver="heun", **kw),
}
ALL = list(MODELS)
CLASSES = [CTRNN, CTGRU, ODELSTM]


# ---------------------------------------------------------------------- helpers
build = partial(build_model, MODELS)
twin = partial(model_twin, MODELS)
data = partial(random_sequences, batch=B, steps=T, features=F)


def timespans(seed=2, batch=B, steps=T):
    return np.random.default_rng(seed).uniform(0.1, 2.0, (batch, steps)).astype(np.float32)


def random_state(model, seed=1, batch=B):
    rng = np.random.default_rng(seed)
    return (0.5 * rng.standard_normal((batch, model.state_size))).astype(np.float32)


def assert_close(actual, expected, atol=ATOL):
    np.testing.assert_allclose(np.array(actual), np.array(expected), rtol=0, atol=atol)


def assert_matches_reference(actual, expected):
    np.testing.assert_allclose(np.array(actual), expected, rtol=RTOL, atol=FLOOR)


# ---------------------------------------------------------------------- numpy references
def np_integrate(slope, y, dt, unfolds, solver):
    """Fixed-step Euler / Heun / RK4, written out independently of ncps_mlx.cells.ode_solvers."""
    h = dt / unfolds
    for _ in range(unfolds):
        if solver == "euler":
            y = y + h * slope(y)
        elif solver == "heun":
            k1 = slope(y)
            y = y + h / 2 * (k1 + slope(y + h * k1))
        else:
            k1 = slope(y)
            k2 = slope(y + h / 2 * k1)
            k3 = slope(y + h / 2 * k2)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + slope(y + h * k3))
    return y


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Reference:
    """The cell's equations in numpy (float64), with the module's weights and the wiring's
    dense adjacency matrices as masks (``S`` ``(N, F)``, ``A`` ``(N, N)``, ``[target, source]``)."""

    def __init__(self, model):
        cell = model.rnn_cell
        self.p = {
            k.removeprefix("rnn_cell."): np.array(v, np.float64)
            for k, v in tree_flatten(model.parameters())
        }
        self.S = np.abs(model.wiring.sensory_adjacency_matrix).T.astype(np.float64)
        self.A = np.abs(model.wiring.adjacency_matrix).T.astype(np.float64)
        self.n, self.motor = model.wiring.units, model.wiring.output_dim
        self.cell, self.kind = cell, type(model)

    def ctrnn(self, x, h, dt):
        p, c = self.p, self.cell
        drive = x @ (p["input_map.weight"] * self.S).T + p["input_map.bias"]
        w_h, tau = p["recurrent_map.weight"] * self.A, np.exp(p["log_tau"])
        h = np_integrate(
            lambda y: -y / tau + np.tanh(drive + y @ w_h.T), h, dt, c.ode_unfolds, c.solver
        )
        return h, h

    def ctgru(self, x, state, dt):
        p, m = self.p, self.cell.time_scales
        tau = 10.0 ** (np.arange(m) / 2)
        traces = state.reshape(-1, self.n, m)
        u = np.concatenate([x, traces.sum(-1)], axis=1)
        scale_mask = np.repeat(np.concatenate([self.S, self.A], axis=1), m, axis=0)

        def attention(name):
            logits = u @ (p[f"{name}.weight"] * scale_mask).T + p[f"{name}.bias"]
            return softmax(-((logits.reshape(-1, self.n, m) - np.log(tau)) ** 2))

        retrieved = (attention("tau_r") * traces).sum(-1)
        detect_mask = np.concatenate([self.S, self.A], axis=1)
        event = np.tanh(
            np.concatenate([x, retrieved], axis=1) @ (p["detect.weight"] * detect_mask).T
            + p["detect.bias"]
        )
        s = attention("tau_s")
        traces = ((1 - s) * traces + s * event[..., None]) * np.exp(-dt[..., None] / tau)
        return traces.sum(-1), traces.reshape(state.shape)

    def odelstm(self, x, state, dt):
        p, c = self.p, self.cell
        h, c_mem = state[:, : self.n], state[:, self.n :]
        z = (
            x @ (p["lstm.input_map.weight"] * np.tile(self.S, (4, 1))).T
            + p["lstm.input_map.bias"]
            + h @ (p["lstm.recurrent_map.weight"] * np.tile(self.A, (4, 1))).T
        )
        i, gate_in, gate_forget, gate_out = np.split(z, 4, axis=1)
        c_mem = c_mem * sigmoid(gate_forget + 1) + np.tanh(i) * sigmoid(gate_in)
        h = np.tanh(c_mem) * sigmoid(gate_out)
        w1, b1 = p["f_node.0.weight"] * self.A, p["f_node.0.bias"]
        w2, b2 = p["f_node.1.weight"] * self.A, p["f_node.1.bias"]
        h = np_integrate(
            lambda y: np.tanh(y @ w1.T + b1) @ w2.T + b2, h, dt, c.ode_unfolds, c.solver
        )
        return h, np.concatenate([h, c_mem], axis=1)

    def run(self, x, ts, mask, state):
        """The module's contract: padded steps keep the state and repeat the last output."""
        step = getattr(self, {CTRNN: "ctrnn", CTGRU: "ctgru", ODELSTM: "odelstm"}[self.kind])
        state = state.astype(np.float64)
        y = self.initial_output(state)
        outputs = []
        for t in range(x.shape[1]):
            y_new, state_new = step(x[:, t].astype(np.float64), state, ts[:, t, None])
            valid = mask[:, t, None]
            state = np.where(valid, state_new, state)
            y = np.where(valid, y_new[:, : self.motor], y)
            outputs.append(y)
        return np.stack(outputs, axis=1), state

    def initial_output(self, state):
        if self.kind is CTGRU:
            return state.reshape(state.shape[0], self.n, -1).sum(-1)[:, : self.motor]
        return state[:, : self.motor]


# ---------------------------------------------------------------------- the papers' equations
@pytest.mark.parametrize("name", ALL)
def test_sequence_matches_the_numpy_equations_with_per_step_timespans_and_a_mask(name):
    model = build(name)
    x, ts, hx = data(), timespans(), random_state(model)
    mask = np.ones((B, T), bool)
    mask[0, 4:] = False  # trailing padding
    mask[1, 2] = False  # a gap inside the sequence
    y, h = model(mx.array(x), hx=mx.array(hx), timespans=mx.array(ts), mask=mx.array(mask))
    expected_y, expected_h = Reference(model).run(x, ts, mask, hx)
    assert y.shape == (B, T, model.output_size)
    assert_matches_reference(y, expected_y)
    assert_matches_reference(h, expected_h)


# ---------------------------------------------------------------------- the sequence contract
@pytest.mark.parametrize("name", ALL)
def test_sequence_equals_stepping_the_cell(name):
    model = build(name)
    x, ts, state = data(1), timespans(3), mx.array(random_state(model))
    y, h = model(mx.array(x), hx=state, timespans=mx.array(ts))
    outputs = []
    for t in range(T):
        out, state = model.rnn_cell(mx.array(x[:, t]), state, mx.array(ts[:, t, None]))
        outputs.append(out)
    assert_close(y, mx.stack(outputs, axis=1))
    assert_close(h, state)


@pytest.mark.parametrize("name", ALL)
def test_padded_batch_equals_each_sequence_run_alone(name):
    model = build(name)
    x, ts = data(4), timespans(5)
    lengths = [T, 2, 4]
    mask = np.arange(T)[None] < np.array(lengths)[:, None]
    x[~mask], ts[~mask] = np.nan, -1.0  # padding holds anything
    y, h = model(mx.array(x), timespans=mx.array(ts), mask=mx.array(mask))
    for i, length in enumerate(lengths):
        alone_y, alone_h = model(mx.array(x[i : i + 1, :length]), timespans=ts[i : i + 1, :length])
        assert_close(y[i, :length], alone_y[0])
        assert_close(y[i, length:], mx.broadcast_to(alone_y[0, -1], y[i, length:].shape))
        assert_close(h[i], alone_h[0])


@pytest.mark.parametrize("name", ALL)
def test_time_major_input_gives_the_transposed_output(name):
    model = build(name)
    x, ts = data(6), timespans(7)
    y, h = model(mx.array(x), timespans=mx.array(ts))
    time_major = twin(name, model, batch_first=False)
    y_t, h_t = time_major(mx.array(x.transpose(1, 0, 2)), timespans=mx.array(ts.T))
    assert_close(y_t.transpose(1, 0, 2), y)
    assert_close(h_t, h)


@pytest.mark.parametrize("name", ALL)
def test_unbatched_input_equals_a_batch_of_one(name):
    model = build(name)
    x, ts = data(8, batch=1), timespans(9, batch=1)
    y, h = model(mx.array(x), timespans=mx.array(ts))
    y_u, h_u = model(mx.array(x[0]), timespans=mx.array(ts[0]))
    assert y_u.shape == y.shape[1:] and h_u.shape == h.shape[1:]
    assert_close(y_u, y[0])
    assert_close(h_u, h[0])


@pytest.mark.parametrize("name", ALL)
def test_return_sequences_false_and_timespan_forms_agree(name):
    model = build(name)
    x = mx.array(data(10))
    y, _ = model(x, timespans=0.7)
    for form in (np.full((B, T), 0.7, np.float32), np.full((B, T, 1), 0.7, np.float32)):
        assert_close(model(x, timespans=form)[0], y)
    last = twin(name, model, return_sequences=False)
    assert_close(last(x, timespans=0.7)[0], y[:, -1])


@pytest.mark.parametrize("name", ALL)
def test_uncompiled_steps_give_the_same_outputs_and_gradients(name):
    model = build(name)
    x, ts = mx.array(data(11)), mx.array(timespans(12))

    def loss(m):
        return mx.sum(m(x, timespans=ts)[0] ** 2)

    compiled_loss, compiled_grads = nn.value_and_grad(model, loss)(model)
    model.compile_steps = False
    plain_loss, plain_grads = nn.value_and_grad(model, loss)(model)
    assert_close(plain_loss, compiled_loss, 1e-5 * abs(compiled_loss.item()))
    compiled_grads = dict(tree_flatten(compiled_grads))
    for key, grad in tree_flatten(plain_grads):
        np.testing.assert_allclose(
            np.array(grad), np.array(compiled_grads[key]), rtol=1e-4, atol=1e-6, err_msg=key
        )


@pytest.mark.parametrize("cls", CLASSES)
def test_zero_timespans_are_accepted_and_hold_the_ode_still(cls):
    mx.random.seed(0)
    model = cls(F, 4)
    y, _ = model(mx.array(data()), timespans=0.0)
    assert np.all(np.isfinite(np.array(y)))
    if cls is CTRNN:  # no time passes, so the state never leaves its start
        assert_close(y, mx.zeros_like(y), 0)


# ---------------------------------------------------------------------- wirings
def sparse_wiring():
    return NCP(3, 3, 2, 2, 2, 2, 2)


def wired_model_and_inputs(cls):
    """``cls`` on :func:`sparse_wiring` (seeded), inputs ``(B, T, F)`` and timespans."""
    mx.random.seed(0)
    return cls(F, sparse_wiring()), mx.array(data()), mx.array(timespans())


@pytest.mark.parametrize("cls", CLASSES)
def test_masked_out_weights_get_zero_gradients_and_do_not_change_outputs(cls):
    model, x, ts = wired_model_and_inputs(cls)

    def loss(m):
        return mx.sum(m(x, timespans=ts)[0] ** 2)

    _, grads = nn.value_and_grad(model, loss)(model)
    zero_masks = dead_entries(model)
    assert zero_masks, "the NCP wiring leaves some weights unconnected"
    grads = dict(tree_flatten(grads))
    for key, dead in zero_masks.items():
        assert np.all(np.array(grads[key])[dead] == 0.0), key
    before = model(x, timespans=ts)[0]
    perturbed = {}
    for key, dead in zero_masks.items():
        value = np.array(dict(tree_flatten(model.parameters()))[key])
        value[dead] = 123.0
        perturbed[key] = mx.array(value)
    model.load_weights(list(perturbed.items()), strict=False)
    assert_close(model(x, timespans=ts)[0], before, 0)


@pytest.mark.parametrize("cls", CLASSES)
def test_refresh_wiring_follows_a_synapse_added_to_the_wiring(cls):
    model, x, ts = wired_model_and_inputs(cls)

    def loss(m):
        return m(x, timespans=ts)[0].sum()

    def live_gradients():
        """Count of non-zero gradients of the masked weights; zero wherever the wiring has no
        synapse."""
        _, grads = nn.value_and_grad(model, loss)(model)
        grads = dict(tree_flatten(grads))
        for key, dead in dead_entries(model).items():
            assert np.all(np.array(grads[key])[dead] == 0.0), key
        return sum(np.count_nonzero(np.array(grads[key])) for key in dead_entries(model))

    before = live_gradients()
    source, target = np.argwhere(model.wiring.adjacency_matrix == 0)[0]
    model.wiring.add_synapse(int(source), int(target), 1)
    model.refresh_wiring()
    assert live_gradients() > before


def dead_entries(model):
    """Boolean arrays marking, per weight, the entries the wiring disconnects (from the dense
    adjacency matrices, independently of the cells' mask construction)."""
    wiring = model.wiring
    s = np.abs(wiring.sensory_adjacency_matrix).T == 0  # (N, F), [target, source]
    a = np.abs(wiring.adjacency_matrix).T == 0  # (N, N)
    if isinstance(model, CTRNN):
        return {"rnn_cell.input_map.weight": s, "rnn_cell.recurrent_map.weight": a}
    if isinstance(model, CTGRU):
        m = model.rnn_cell.time_scales
        scales = np.repeat(np.concatenate([s, a], axis=1), m, axis=0)
        return {
            "rnn_cell.tau_r.weight": scales,
            "rnn_cell.tau_s.weight": scales,
            "rnn_cell.detect.weight": np.concatenate([s, a], axis=1),
        }
    return {
        "rnn_cell.lstm.input_map.weight": np.tile(s, (4, 1)),
        "rnn_cell.lstm.recurrent_map.weight": np.tile(a, (4, 1)),
        "rnn_cell.f_node.0.weight": a,
        "rnn_cell.f_node.1.weight": a,
    }


@pytest.mark.parametrize("cls", CLASSES)
def test_masks_are_constants_not_parameters(cls):
    mx.random.seed(0)
    model = cls(F, sparse_wiring())
    names = [k for k, _ in tree_flatten(model.trainable_parameters())]
    assert not any("mask" in k for k in names)


@pytest.mark.parametrize("cls", CLASSES)
def test_autoncp_outputs_are_the_motor_neurons(cls):
    mx.random.seed(0)
    wiring = AutoNCP(10, 3)
    model = cls(F, wiring)
    y, h = model(mx.array(data()))
    assert model.output_size == 3 and y.shape == (B, T, 3)
    assert_close(y[:, -1], model.rnn_cell.output_of_state(h), 0)
    activity = h.reshape(B, 10, -1).sum(-1) if cls is CTGRU else h[:, :10]
    assert_close(y[:, -1], activity[:, :3], 0)


@pytest.mark.parametrize("cls", CLASSES)
def test_int_units_are_a_fully_connected_wiring_with_every_neuron_an_output(cls):
    mx.random.seed(0)
    model = cls(F, 5)
    assert isinstance(model.wiring, FullyConnected)
    assert model.output_size == 5 and model.wiring.input_dim == F


@pytest.mark.parametrize("cls", CLASSES)
def test_config_and_wiring_config_rebuild_the_same_model(cls):
    mx.random.seed(0)
    model = cls(F, AutoNCP(8, 2), batch_first=False)
    config = dict(model._config, units=Wiring.from_config(model.wiring.get_config()))
    rebuilt = cls(**config)
    rebuilt.update(model.parameters())
    x = mx.array(data().transpose(1, 0, 2))
    assert_close(rebuilt(x)[0], model(x)[0], 0)


# ---------------------------------------------------------------------- training
def sine_task():
    phase = np.random.default_rng(0).uniform(0, 2 * np.pi, (16, 1))
    t = 0.25 * np.arange(20)[None] + phase
    x = mx.array(np.sin(t)[..., None].astype(np.float32))
    return x, mx.array(np.sin(t + 0.8)[..., None].astype(np.float32))


@pytest.mark.parametrize("cls", CLASSES)
def test_each_module_learns_to_predict_a_sine_wave(cls):
    mx.random.seed(0)
    x, target = sine_task()
    model = cls(1, FullyConnected(12, 1))
    losses = train(model, lambda m: mx.mean((m(x, timespans=0.25)[0] - target) ** 2), 80, 0.02)
    assert np.all(np.isfinite(losses))
    assert min(losses[-10:]) <= losses[0] / 10, (losses[0], losses[-10:])


# ---------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("units", [2.5, "8", True, None])
def test_non_integer_units_are_type_errors_naming_units(cls, units):
    with pytest.raises(TypeError, match="units"):
        cls(F, units)


@pytest.mark.parametrize("cls", CLASSES)
def test_zero_units_or_input_size_are_value_errors_naming_them(cls):
    with pytest.raises(ValueError, match="units"):
        cls(F, 0)
    with pytest.raises(ValueError, match="input_size"):
        cls(0, 4)


@pytest.mark.parametrize("cls", [CTRNN, ODELSTM])
def test_unknown_solver_and_too_few_unfolds_are_value_errors_naming_them(cls):
    with pytest.raises(ValueError, match="solver"):
        cls(F, 4, solver="dopri5")
    with pytest.raises(ValueError, match="ode_unfolds"):
        cls(F, 4, ode_unfolds=0)
    with pytest.raises(TypeError, match="ode_unfolds"):
        cls(F, 4, ode_unfolds=1.5)


def test_too_few_time_scales_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="time_scales"):
        CTGRU(F, 4, time_scales=0)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_wiring_built_for_another_input_size_is_a_value_error(cls):
    wiring = AutoNCP(8, 2)
    wiring.build(F + 1)
    with pytest.raises(ValueError, match="input"):
        cls(F, wiring)


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_inputs_are_value_errors_naming_the_argument(cls):
    mx.random.seed(0)
    model, x = cls(F, 4), mx.array(data())
    with pytest.raises(ValueError, match="input_size"):
        model(mx.array(data(features=F + 1)))
    with pytest.raises(ValueError, match="x must be"):
        model(x[None])
    with pytest.raises(ValueError, match="hx"):
        model(x, hx=mx.zeros((B, model.state_size + 1)))
    with pytest.raises(ValueError, match="timespans"):
        model(x, timespans=np.ones((B, T + 1), np.float32))
    with pytest.raises(ValueError, match="mask"):
        model(x, mask=np.ones((B, 2), bool))


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("bad", [-0.5, np.nan, np.inf])
def test_negative_or_non_finite_timespans_are_value_errors(cls, bad):
    mx.random.seed(0)
    model = cls(F, 4)
    ts = np.ones((B, T), np.float32)
    ts[1, 3] = bad
    for form in (bad, ts):
        with pytest.raises(ValueError, match="timespans"):
            model(mx.array(data()), timespans=form)


# ---------------------------------------------------------------------- the ODE solvers
@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_solver_error_on_a_linear_ode_shrinks_at_the_solvers_order(solver, order):
    """dy/dt = A y with a rotation-and-decay A: exact solution y(t) = expm(A t) y0."""
    a = np.array([[-0.5, 2.0], [-2.0, -0.5]])
    y0, span = np.array([1.0, 0.5]), 1.0
    w, v = np.linalg.eig(a)
    exact = (v @ np.diag(np.exp(w * span)) @ np.linalg.inv(v) @ y0).real
    errors = [
        np.abs(integrate(lambda y: y @ a.T, y0, span, n, solver) - exact).max() for n in (8, 16, 32)
    ]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 2.0**order, rtol=0.15)


def test_solvers_run_on_mlx_arrays_with_per_sample_spans():
    y0 = mx.array([[1.0], [1.0]])
    dt = mx.array([[0.5], [2.0]])
    y = integrate(lambda y: -y, y0, dt, 20, "rk4")
    np.testing.assert_allclose(np.array(y)[:, 0], np.exp([-0.5, -2.0]), rtol=1e-5)


# ---------------------------------------------------------------------- cells alone
@pytest.mark.parametrize("cls", [CTRNNCell, CTGRUCell, ODELSTMCell])
def test_cells_take_units_or_a_wiring_and_step_one_batch(cls):
    mx.random.seed(0)
    cell = cls(F, AutoNCP(8, 2))
    state = mx.zeros((B, cell.state_size))
    y, state = cell(mx.array(data()[:, 0]), state, 0.5)
    assert y.shape == (B, 2) and state.shape == (B, cell.state_size)
    assert "units=8" in repr(cell)
