"""The ``cells`` benchmark's JAX reference: ncps's CfC, wired CfC and LTC cells written again
in JAX, with one jitted ``jax.lax.scan`` over time.

    forward, train_step = jax_timers(model, x, target)  # like cells.mlx_timers
    outputs = jax_outputs(model, x)  # numpy (B, T, O): the same function as model(x)[0]

The weights are an ncps_mlx sequence module's, read in ncps's dense layout by
:func:`ncps_weights` (the LTC's fan-in tables become ``(S, N)`` matrices with their masks), so
the JAX copy computes what the module computes; the maths follow ncps 1.0.1's PyTorch cells
line by line. Supported: the dense :class:`~ncps_mlx.cells.CfCCell` (every mode and backbone),
the :class:`~ncps_mlx.cells.WiredCfCCell` (wirings whose time scales are all 1) and the
:class:`~ncps_mlx.cells.LTCCell` with ncps's semi-implicit solver (no fast weights, no routing);
sequences without mixed memory, ``proj_size``, timespans or masks (elapsed time 1 per step).
The state-independent work (the LTC's sensory synapses) runs for all steps before the scan.

A train step is the mean squared error, its gradients (``jax.value_and_grad``) and one Adam
update written out here (PyTorch's defaults, learning rate 1e-3), in one ``jax.jit``. With
``MLX_ENABLE_TF32=0`` matrix products run at ``"highest"`` precision, as MLX's then do.

jax is imported only when these functions run (``pip install -e ".[bench]"`` installs it); the
rest of ncps_mlx never imports it. It must be imported after ``XLA_PYTHON_CLIENT_PREALLOCATE``
is set to ``false`` (done here), or on a GPU it takes 75 % of the memory before MLX runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np

__all__ = ["ncps_weights", "jax_outputs", "loss_and_gradients", "jax_timers", "describe"]
__all__ += ["unsupported", "adam_update", "adam_state"]

ADAM = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def _jax():
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    return jax


def matmul_precision() -> str:
    """``"highest"`` when ``MLX_ENABLE_TF32=0`` (true float32 products, as MLX's), else
    ``"default"`` (which is TF32 on recent NVIDIA GPUs, as MLX's default)."""
    return "highest" if os.environ.get("MLX_ENABLE_TF32", "1") == "0" else "default"


def describe() -> str:
    """``"JAX 0.4.35 on gpu, matmul precision default"`` (imports jax)."""
    jax = _jax()
    return (
        f"JAX {jax.__version__} on {jax.default_backend()}, matmul precision {matmul_precision()}"
    )


class JaxCell(NamedTuple):
    """A cell in JAX: ``prepare(params, masks, xs)`` maps the time-major inputs ``(T, B, F)``
    to the per-step inputs (a tuple of ``(T, B, ·)``), ``step(params, masks, inputs_t, h)``
    returns ``(output, new state)``; ``state_size`` is ``N``."""

    prepare: Callable
    step: Callable
    state_size: int


# ---------------------------------------------------------------------- weights
def unsupported(model) -> str | None:
    """Why :func:`jax_timers` cannot copy ``model``, or None if it can."""
    from ncps_mlx.cells import CfCCell, LTCCell, WiredCfCCell

    cell = getattr(model, "rnn_cell", None)
    if getattr(model, "use_mixed", False):
        return "mixed_memory=True"
    if getattr(model, "proj_size", None) is not None:
        return "proj_size"
    if type(cell) is CfCCell:
        return None
    if type(cell) is WiredCfCCell:
        scales = cell.wiring.neuron_time_scales()
        return None if np.all(scales == 1) else "a wiring with neuron time scales"
    if type(cell) is LTCCell:
        if cell.solver != "semi_implicit":
            return f"solver={cell.solver!r}"
        if cell._fast is not None or cell._routing is not None:
            return "fast weights or routing"
        return None
    return f"no JAX reference for {type(cell).__name__}"


def ncps_weights(model) -> dict[str, np.ndarray]:
    """The parameters of ``model``'s cell in ncps's dense layout, by their names in the cell
    (``ff1.weight``, ``layer_0.ff1.weight``, ``sensory_w``, ...), and its wiring masks under
    ncps's buffer names (``sparsity_mask``, ``layer_1.sparsity_mask``, ...)."""
    from mlx.utils import tree_flatten

    cell = model.rnn_cell
    to_ncps = getattr(cell, "to_ncps", lambda name, value: value)
    weights = {
        name: np.asarray(to_ncps(name, value), np.float32)
        for name, value in tree_flatten(cell.parameters())
    }
    for path, module in cell.named_modules():
        if hasattr(module, "ncps_buffers"):
            prefix = f"{path}." if path else ""
            for name, mask in module.ncps_buffers().items():
                weights[prefix + name] = np.asarray(mask, np.float32)
    return weights


def _split(weights: dict) -> tuple[dict, dict]:
    """``(trainable parameters, masks)``."""
    masks = {k: v for k, v in weights.items() if k.rpartition(".")[2].endswith("sparsity_mask")}
    return {k: v for k, v in weights.items() if k not in masks}, masks


# ---------------------------------------------------------------------- the cells
def _activations(jax):
    jnp = jax.numpy
    return {
        "lecun_tanh": lambda x: 1.7159 * jnp.tanh(0.666 * x),
        "tanh": jnp.tanh,
        "relu": jax.nn.relu,
        "gelu": partial(jax.nn.gelu, approximate=False),
        "silu": jax.nn.silu,
    }


def _linear(p, name, x, mask=None):
    weight = p[f"{name}.weight"]
    return x @ (weight if mask is None else weight * mask).T + p[f"{name}.bias"]


def _cfc_heads(jax, mode, p, prefix, z, mask, timespan=1.0):
    """ncps's ``CfCCell.forward`` after its backbone: the new state from ``z``."""
    jnp = jax.numpy
    ff1 = _linear(p, prefix + "ff1", z, mask)
    if mode == "pure":
        amplitude, w_tau = p[prefix + "A"], p[prefix + "w_tau"]
        return -amplitude * jnp.exp(-timespan * (jnp.abs(w_tau) + jnp.abs(ff1))) * ff1 + amplitude
    ff1, ff2 = jnp.tanh(ff1), jnp.tanh(_linear(p, prefix + "ff2", z, mask))
    gate = jax.nn.sigmoid(
        _linear(p, prefix + "time_a", z) * timespan + _linear(p, prefix + "time_b", z)
    )
    return ff1 + gate * ff2 if mode == "no_gate" else ff1 * (1.0 - gate) + gate * ff2


def _dense_cfc(jax, cell) -> JaxCell:
    jnp = jax.numpy
    activation = _activations(jax)[cell.backbone_activation]

    def step(p, masks, inputs_t, h):
        z = jnp.concatenate([inputs_t[0], h], axis=-1)
        for index in range(cell.backbone_layers):
            z = activation(_linear(p, f"backbone.{index}", z))
        h = _cfc_heads(jax, cell.mode, p, "", z, masks.get("sparsity_mask"))
        return h, h

    return JaxCell(lambda p, masks, xs: (xs,), step, cell.hidden_size)


def _wired_cfc(jax, cell) -> JaxCell:
    """ncps's ``WiredCfCCell``: one backbone-free CfC per wiring layer, fed the previous
    layer's new state; the output is the motor neurons of the concatenated state."""
    jnp = jax.numpy
    wiring = cell.wiring
    layers = [np.asarray(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]
    bounds = np.cumsum([0] + [layer.size for layer in layers])
    position = np.empty(wiring.units, np.int64)
    position[np.concatenate(layers)] = np.arange(wiring.units)
    motor = position[: wiring.output_dim]

    def step(p, masks, inputs_t, h):
        inputs, states = inputs_t[0], []
        for index in range(len(layers)):
            z = jnp.concatenate([inputs, h[:, bounds[index] : bounds[index + 1]]], axis=-1)
            prefix = f"layer_{index}."
            inputs = _cfc_heads(jax, cell.mode, p, prefix, z, masks[prefix + "sparsity_mask"])
            states.append(inputs)
        h = jnp.concatenate(states, axis=-1)
        return h[:, motor], h

    return JaxCell(lambda p, masks, xs: (xs,), step, wiring.units)


def _ltc(jax, cell) -> JaxCell:
    """ncps's ``LTCCell``: input mapping, ``ode_unfolds`` semi-implicit Euler updates of the
    potentials, output mapping; elapsed time 1."""
    jnp = jax.numpy
    positive = jax.nn.softplus if cell.implicit_param_constraints else (lambda x: x)
    unfolds, epsilon, motor = cell.ode_unfolds, cell.epsilon, cell.motor_size

    def synapse_sums(presynaptic, w, sigma, mu, erev, mask):
        activation = w * jax.nn.sigmoid(sigma * (presynaptic[..., :, None] - mu)) * mask
        return jnp.sum(activation * erev, axis=-2), jnp.sum(activation, axis=-2)

    def prepare(p, masks, xs):
        if cell.input_mapping in ("affine", "linear"):
            xs = xs * p["input_w"]
        if cell.input_mapping == "affine":
            xs = xs + p["input_b"]
        names = ("sensory_sigma", "sensory_mu", "sensory_erev")
        return synapse_sums(
            xs, positive(p["sensory_w"]), *(p[n] for n in names), masks["sensory_sparsity_mask"]
        )

    def step(p, masks, inputs_t, v):
        sensory_numerator, sensory_denominator = inputs_t
        cm_t = positive(p["cm"]) / (1.0 / unfolds)  # cm / (elapsed time / unfolds)
        gleak, w = positive(p["gleak"]), positive(p["w"])
        for _ in range(unfolds):
            numerator, denominator = synapse_sums(
                v, w, p["sigma"], p["mu"], p["erev"], masks["sparsity_mask"]
            )
            numerator = cm_t * v + gleak * p["vleak"] + numerator + sensory_numerator
            denominator = cm_t + gleak + denominator + sensory_denominator
            v = numerator / (denominator + epsilon)
        output = v[:, :motor]
        if cell.output_mapping in ("affine", "linear"):
            output = output * p["output_w"]
        if cell.output_mapping == "affine":
            output = output + p["output_b"]
        return output, v

    return JaxCell(prepare, step, cell.num_neurons)


def jax_cell(jax, model) -> JaxCell:
    """The :class:`JaxCell` of ``model``'s cell; ValueError if :func:`unsupported`."""
    from ncps_mlx.cells import CfCCell, WiredCfCCell

    reason = unsupported(model)
    if reason is not None:
        raise ValueError(f"no JAX reference for this model: {reason}")
    cell = model.rnn_cell
    if type(cell) is CfCCell:
        return _dense_cfc(jax, cell)
    return _wired_cfc(jax, cell) if type(cell) is WiredCfCCell else _ltc(jax, cell)


# ---------------------------------------------------------------------- sequences and training
def _sequence(jax, cell: JaxCell, params, masks, x):
    """Outputs ``(B, T, O)`` of the cell run over ``x`` ``(B, T, F)`` from a zero state."""
    jnp = jax.numpy
    inputs = cell.prepare(params, masks, jnp.swapaxes(x, 0, 1))

    def body(h, inputs_t):
        y, h = cell.step(params, masks, inputs_t, h)
        return h, y

    h0 = jnp.zeros((x.shape[0], cell.state_size), x.dtype)
    return jnp.swapaxes(jax.lax.scan(body, h0, inputs)[1], 0, 1)


def _loss(jax, cell: JaxCell, params, masks, x, target):
    """The mean squared error of the outputs on ``x`` against ``target``."""
    return jax.numpy.mean((_sequence(jax, cell, params, masks, x) - target) ** 2)


def adam_update(params, grads, state):
    """One Adam step as ``torch.optim.Adam`` takes it with :data:`ADAM` (bias-corrected).

    Args:
        params: A tree of JAX arrays.
        grads: Their gradients (the same tree).
        state: ``(count, first moments, second moments)``; start from :func:`adam_state`.

    Returns:
        ``(new params, new state)``.
    """
    jax = _jax()
    jnp, tree_map = jax.numpy, jax.tree_util.tree_map
    count, first, second = state
    count = count + 1
    b1, b2, rate, eps = ADAM["beta1"], ADAM["beta2"], ADAM["learning_rate"], ADAM["eps"]
    first = tree_map(lambda m, g: b1 * m + (1 - b1) * g, first, grads)
    second = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, second, grads)
    correction1, correction2 = 1 - b1**count, 1 - b2**count

    def update(p, m, v):
        return p - rate * (m / correction1) / (jnp.sqrt(v / correction2) + eps)

    return tree_map(update, params, first, second), (count, first, second)


def adam_state(params):
    """The Adam state before the first step: step 0, zero moments shaped like ``params``."""
    jax = _jax()
    zeros = jax.tree_util.tree_map(jax.numpy.zeros_like, params)
    return jax.numpy.zeros((), jax.numpy.int32), zeros, zeros


def _train_step(jax, cell: JaxCell, params, adam, masks, x, target):
    """MSE, its gradients and one Adam update."""
    loss, grads = jax.value_and_grad(partial(_loss, jax, cell))(params, masks, x, target)
    return (*adam_update(params, grads, adam), loss)


def _device_arrays(jax, model):
    params, masks = _split(ncps_weights(model))
    as_jax = partial(jax.tree_util.tree_map, jax.numpy.asarray)
    return as_jax(params), as_jax(masks)


def jax_outputs(model, x: np.ndarray) -> np.ndarray:
    """``model(x)[0]`` computed by the JAX copy of ``model`` (``x`` ``(B, T, F)``)."""
    jax = _jax()
    params, masks = _device_arrays(jax, model)
    forward = jax.jit(partial(_sequence, jax, jax_cell(jax, model)))
    with jax.default_matmul_precision(matmul_precision()):
        return np.asarray(forward(params, masks, jax.numpy.asarray(x)))


def loss_and_gradients(model, x: np.ndarray, target: np.ndarray) -> tuple[float, dict]:
    """The MSE of the JAX copy of ``model`` on ``x`` against ``target`` and its gradients by
    parameter name, in ncps's dense layout (as :func:`ncps_weights`)."""
    jax = _jax()
    params, masks = _device_arrays(jax, model)
    function = jax.jit(jax.value_and_grad(partial(_loss, jax, jax_cell(jax, model))))
    with jax.default_matmul_precision(matmul_precision()):
        loss, grads = function(params, masks, jax.numpy.asarray(x), jax.numpy.asarray(target))
    return float(loss), {name: np.asarray(value) for name, value in grads.items()}


def jax_timers(model, x: np.ndarray, target: np.ndarray):
    """``(forward, train_step)`` closures that run the JAX copy of ``model`` on ``x``
    ``(B, T, F)`` (train step: towards ``target`` ``(B, T, O)``) and wait for the result;
    ``forward()`` returns the outputs (a JAX array)."""
    jax = _jax()
    cell = jax_cell(jax, model)
    params, masks = _device_arrays(jax, model)
    x, target = jax.numpy.asarray(x), jax.numpy.asarray(target)
    state = {"params": params, "adam": adam_state(params)}
    forward_fn = jax.jit(partial(_sequence, jax, cell))
    train_fn = jax.jit(partial(_train_step, jax, cell))
    precision = matmul_precision()

    def forward():
        with jax.default_matmul_precision(precision):
            return forward_fn(state["params"], masks, x).block_until_ready()

    def train_step():
        with jax.default_matmul_precision(precision):
            params, adam, loss = train_fn(state["params"], state["adam"], masks, x, target)
        state.update(params=params, adam=adam)
        jax.block_until_ready((params, adam, loss))

    return forward, train_step
