"""The cells benchmark's JAX reference computes what the ncps_mlx model computes: the same
outputs, loss and gradients from the same weights, and torch's Adam step. Skipped without jax
(``pip install -e ".[bench]"``)."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx import LTC, CfC
from ncps_mlx.wirings import AutoNCP, FullyConnected

pytest.importorskip("jax")

from ncps_mlx.apps.bench import jax_reference  # noqa: E402

MODELS = {
    "CfC(16, 64) dense": lambda: CfC(16, 64),
    "CfC AutoNCP(64, 8)": lambda: CfC(16, AutoNCP(64, 8)),
    "LTC AutoNCP(64, 8)": lambda: LTC(16, AutoNCP(64, 8)),
    "LTC FullyConnected(64)": lambda: LTC(16, FullyConnected(64)),
    "LTC AutoNCP(64, 8) dense layout": lambda: LTC(16, AutoNCP(64, 8), sparse=False),
    "CfC no_gate, 2 gelu backbone layers": lambda: CfC(
        16, 32, mode="no_gate", activation="gelu", backbone_layers=2
    ),
    "CfC pure, no backbone": lambda: CfC(16, 32, mode="pure", backbone_layers=0),
    "CfC AutoNCP(32, 4) pure": lambda: CfC(16, AutoNCP(32, 4), mode="pure"),
}


def inputs(batch=3, steps=12, features=16, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype(np.float32)


@pytest.mark.parametrize("label", list(MODELS))
def test_jax_outputs_equal_the_model_outputs_with_the_same_weights(label):
    mx.random.seed(1)
    model = MODELS[label]()
    x = inputs()
    expected = np.array(model(mx.array(x))[0])
    got = jax_reference.jax_outputs(model, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("label", ["CfC(16, 64) dense", "CfC AutoNCP(64, 8)", "LTC AutoNCP(64, 8)"])
def test_jax_loss_and_gradients_equal_mlx_ones_in_ncps_layout(label):
    mx.random.seed(2)
    model = MODELS[label]()
    x = inputs(batch=2, steps=6)
    target = inputs(batch=2, steps=6, features=model.output_size, seed=3)
    value_and_grad = nn.value_and_grad(
        model, lambda m: nn.losses.mse_loss(m(mx.array(x))[0], target)
    )
    loss, grads = value_and_grad(model)
    cell = model.rnn_cell
    to_ncps = getattr(cell, "to_ncps", lambda name, value: np.array(value))
    expected = {
        name.removeprefix("rnn_cell."): to_ncps(name.removeprefix("rnn_cell."), value)
        for name, value in tree_flatten(grads)
    }
    jax_loss, jax_grads = jax_reference.loss_and_gradients(model, x, target)
    assert jax_loss == pytest.approx(loss.item(), rel=1e-5)
    assert set(jax_grads) == set(expected)
    for name, value in expected.items():
        scale = max(np.abs(value).max(), 1e-3)
        np.testing.assert_allclose(jax_grads[name], value, atol=1e-4 * scale, rtol=0, err_msg=name)


def test_adam_update_matches_torch_adam_over_three_steps():
    torch = pytest.importorskip("torch")
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    start = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3)]
    weight = torch.nn.Parameter(torch.tensor(start))
    optimizer = torch.optim.Adam([weight], lr=jax_reference.ADAM["learning_rate"])
    params = {"w": jnp.asarray(start)}
    state = jax_reference.adam_state(params)
    for grad in grads:
        weight.grad = torch.tensor(grad)
        optimizer.step()
        params, state = jax_reference.adam_update(params, {"w": jnp.asarray(grad)}, state)
    np.testing.assert_allclose(np.asarray(params["w"]), weight.detach().numpy(), atol=1e-6)


def test_jax_timers_forward_returns_the_outputs_and_training_changes_them():
    mx.random.seed(4)
    model = MODELS["CfC AutoNCP(64, 8)"]()
    x = inputs(batch=2, steps=5)
    target = np.zeros((2, 5, model.output_size), np.float32)
    forward, train_step = jax_reference.jax_timers(model, x, target)
    before = np.asarray(forward())
    np.testing.assert_allclose(before, np.array(model(mx.array(x))[0]), atol=1e-5)
    train_step()
    after = np.asarray(forward())
    assert np.abs(after - before).max() > 0
    assert np.mean(after**2) < np.mean(before**2)  # one step towards the zero target


def test_models_without_a_jax_copy_are_named_not_guessed():
    model = CfC(16, 8, proj_size=2)
    assert jax_reference.unsupported(model) == "proj_size"
    assert jax_reference.unsupported(LTC(16, 8, solver="rk4")) == "solver='rk4'"
    with pytest.raises(ValueError, match="no JAX reference for this model: mixed_memory=True"):
        jax_reference.jax_outputs(CfC(16, 8, mixed_memory=True), inputs())
