"""LTC's ODE solvers (``solver=``) against a fine-step float64 integration of the same ODE."""

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest

from ncps_mlx import LTC
from ncps_mlx.cells import LTCCell
from ncps_mlx.wirings import AutoNCP, FullyConnected

UNITS, FEATURES, BATCH = 8, 3, 4
ORDERS = {"semi_implicit": 1, "euler": 1, "heun": 2, "rk4": 4}


def make_cell(solver, unfolds, seed=0):
    mx.random.seed(seed)
    return LTCCell(
        FullyConnected(UNITS), FEATURES, ode_unfolds=unfolds, solver=solver, sparse=False
    )


def numpy_velocity(cell):
    """dv/dt of the LTC ODE for inputs ``x``, written from the cell's dense parameters."""
    p = {name: np.array(value, np.float64) for name, value in cell.parameters().items()}
    mask = np.array(cell._sparsity_mask, np.float64)
    sensory_mask = np.array(cell._sensory_sparsity_mask, np.float64)

    def currents(pre, w, sigma, mu, erev):  # pre (B, S); parameters (S, N)
        activation = w / (1.0 + np.exp(-sigma * (pre[:, :, None] - mu)))
        return (activation * erev).sum(1), activation.sum(1)

    def velocity(v, x):
        x = x * p["input_w"] + p["input_b"]
        s_num, s_den = currents(
            x,
            p["sensory_w"] * sensory_mask,
            p["sensory_sigma"],
            p["sensory_mu"],
            p["sensory_erev"],
        )
        num, den = currents(v, p["w"] * mask, p["sigma"], p["mu"], p["erev"])
        leak = p["gleak"] * (p["vleak"] - v)
        return (leak + s_num + num - v * (s_den + den)) / p["cm"]

    return velocity


def reference_solution(cell, v0, x, span, steps=4000):
    """RK4 with ``steps`` steps in float64: the ODE's solution to ~1e-14."""
    f, v, h = numpy_velocity(cell), v0.astype(np.float64), span / steps
    for _ in range(steps):
        k1 = f(v, x)
        k2 = f(v + 0.5 * h * k1, x)
        k3 = f(v + 0.5 * h * k2, x)
        k4 = f(v + h * k3, x)
        v = v + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return v


def start():
    rng = np.random.default_rng(1)
    v0 = rng.uniform(-0.5, 0.5, (BATCH, UNITS)).astype(np.float32)
    x = rng.standard_normal((BATCH, FEATURES)).astype(np.float32)
    return v0, x


@pytest.mark.parametrize(
    "solver, unfolds",
    [("semi_implicit", (4, 8, 16)), ("euler", (4, 8, 16)), ("heun", (2, 4, 8)), ("rk4", (2, 4, 8))],
)
def test_error_shrinks_at_the_solvers_order_as_unfolds_double(solver, unfolds):
    v0, x = start()
    span = 0.25  # the fastest neuron's time constant C_m / D is about 0.1 here
    exact = reference_solution(make_cell(solver, 1), v0, x, span)
    errors = []
    for count in unfolds:
        cell = make_cell(solver, count)
        _, v = cell(mx.array(x), mx.array(v0), span)
        errors.append(np.abs(np.array(v, np.float64) - exact).max())
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    expected = 2.0 ** ORDERS[solver]
    assert np.all(ratios > 0.7 * expected) and np.all(ratios < 1.5 * expected), (errors, ratios)


def test_rk4_is_accurate_to_float32_with_a_few_unfolds():
    v0, x = start()
    exact = reference_solution(make_cell("rk4", 1), v0, x, 0.25)
    _, v = make_cell("rk4", 16)(mx.array(x), mx.array(v0), 0.25)
    np.testing.assert_allclose(np.array(v), exact, rtol=1e-5, atol=1e-6)


def test_default_solver_is_ncps_semi_implicit_update():
    v0, x = start()
    default = LTCCell(FullyConnected(UNITS), FEATURES)
    assert default.solver == "semi_implicit"
    mx.random.seed(0)
    explicit = make_cell("semi_implicit", 6)
    mx.random.seed(0)
    implicit_default = LTCCell(FullyConnected(UNITS), FEATURES, sparse=False)
    a = implicit_default(mx.array(x), mx.array(v0), 0.5)[1]
    b = explicit(mx.array(x), mx.array(v0), 0.5)[1]
    assert mx.array_equal(a, b)


@pytest.mark.parametrize("solver", ["euler", "heun", "rk4"])
def test_sparse_and_dense_layouts_agree_for_every_solver(solver):
    wiring = AutoNCP(16, 4, seed=3)
    x = mx.array(np.random.default_rng(0).standard_normal((2, 5, FEATURES)).astype(np.float32))
    mx.random.seed(0)
    dense = LTC(FEATURES, wiring, solver=solver, sparse=False)
    mx.random.seed(0)
    sparse = LTC(FEATURES, wiring, solver=solver, sparse=True)
    weights = dense.rnn_cell.parameters().items()  # ncps's dense layout
    sparse.rnn_cell.update(
        {k: mx.array(sparse.rnn_cell.from_ncps(k, np.array(v))) for k, v in weights}
    )
    np.testing.assert_allclose(np.array(sparse(x)[0]), np.array(dense(x)[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_explicit_solvers_train(solver):
    rng = np.random.default_rng(0)
    x = mx.array(rng.standard_normal((8, 12, FEATURES)).astype(np.float32))
    target = mx.array(np.sin(np.cumsum(np.array(x)[..., :1], axis=1) * 0.3).astype(np.float32))
    mx.random.seed(0)
    model = LTC(FEATURES, FullyConnected(UNITS, 1), solver=solver, ode_unfolds=2)
    optimizer = optim.Adam(learning_rate=0.02)
    step = nn.value_and_grad(model, lambda m: nn.losses.mse_loss(m(x)[0], target))
    first = None
    for _ in range(150):
        loss, grads = step(model)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        first = loss.item() if first is None else first
    assert loss.item() < first / 10


@pytest.mark.parametrize("solver", ["rk5", "", None, 4])
def test_unknown_solver_is_a_value_error_naming_it(solver):
    with pytest.raises(ValueError, match="solver must be one of"):
        LTC(FEATURES, UNITS, solver=solver)
