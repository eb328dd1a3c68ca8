"""Pieces shared by the cells: the cell contract, activations, initialisers.

The cell contract
-----------------

Every cell splits its work in two (DESIGN.md, "Cells and sequence modules"), and the sequence
module (:class:`~ncps_mlx.sequence.LiquidSequence`) owns the time loop between them:

* ``prepare(x) -> Prepared(inputs, params)`` takes a time-major input ``x`` ``(T, B, F)``.

  - ``inputs`` is a tuple of arrays ``(T, B, ...)``: the state-independent terms of every step
    (input projections, sensory synapse sums), computed for all ``T`` steps at once.
  - ``params`` is the cell's own :class:`typing.NamedTuple` of per-call constants of the step
    (:class:`~ncps_mlx.cells.cfc.CfCParams`, :class:`~ncps_mlx.cells.wired_cfc.WiredCfCParams`,
    :class:`~ncps_mlx.cells.ltc.LTCParams`, :class:`~ncps_mlx.cells.lstm.LSTMParams`,
    :class:`~ncps_mlx.cells.ctrnn.CTRNNParams`, :class:`~ncps_mlx.cells.ctgru.CTGRUParams`,
    :class:`~ncps_mlx.cells.odelstm.ODELSTMParams`): fused, masked, dequantized or
    constrained weights computed once per call from the trainable parameters (so gradients
    reach them), plus the cell's fixed constants. Each class documents every field's meaning
    and shape. Weight matrices that the step multiplies by are ``(in, out)`` and contiguous
    (:func:`in_out`; layers as :class:`DenseParams`). A feature the cell does not use (LTC fast
    weights or routing, CfC backbone layers or heads, pure-mode constants, ...) is ``None``.
    ``params`` hold only arrays, ``None``, nested tuples of them and Python scalars (the
    constants of :class:`~ncps_mlx.cells.fast_weights.FastWeights` and
    :class:`~ncps_mlx.cells.ltc_routing.RoutingPlan`), so they are pytrees that ``mx.compile``
    and :func:`ncps_mlx.quantization.astype` traverse.

* ``step(inputs_t, params, state, timespans=1.0) -> (output, state_new)`` advances one step:
  ``inputs_t`` is ``inputs`` at step ``t`` (each ``(B, ...)``), ``params`` as returned by
  ``prepare``, ``state`` ``(B, state_size)`` (:class:`~ncps_mlx.cells.LSTMCell`: a tuple
  ``(h, c)``), and ``timespans`` the elapsed time of the step: a float or ``(B, 1)``. It is a
  pure function of its array arguments, so the sequence module may ``mx.compile`` it, and a
  fused kernel may replace it by reading ``params`` by field name.
* ``output_of_state(state)`` is the step output a state stands for (what a padded step
  repeats).

A cell's one-step ``__call__(x, state, timespans=1.0)`` runs ``prepare`` on ``x[None]`` and one
``step``; it also takes its arguments under ncps's keyword names (``input``/``inputs``,
``hx``/``states``, ``ts``/``elapsed_time``: :func:`~ncps_mlx._validation.keyword_aliases`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn

from .._validation import check_int
from ..wirings import FullyConnected, Wiring
from . import fast_math

__all__ = [
    "Prepared",
    "DenseParams",
    "WiredCell",
    "lecun_tanh",
    "get_activation",
    "ACTIVATIONS",
    "check_mode",
    "xavier_uniform",
    "dense_weight",
    "parameter_dtype",
    "wiring_for_units",
    "in_out",
]


class Prepared(NamedTuple):
    """What a cell's ``prepare(x)`` returns for a time-major ``x`` ``(T, B, F)`` (see the
    contract in this module's docstring).

    Attributes:
        inputs: Tuple of arrays of shape ``(T, B, ...)``, the state-independent terms of every
            step; step ``t`` receives ``a[t]`` of each.
        params: The cell's NamedTuple of per-call constants (e.g.
            :class:`~ncps_mlx.cells.cfc.CfCParams`), handed unchanged to every ``step``; None
            where a cell has none (the sequence module's placeholder for absent mixed memory).
    """

    inputs: tuple
    params: tuple | None


class DenseParams(NamedTuple):
    """An affine layer as a step applies it: ``x @ weight + bias``.

    Attributes:
        weight: ``(in, out)``, contiguous (:func:`in_out`).
        bias: ``(out,)``.
    """

    weight: mx.array
    bias: mx.array


def lecun_tanh(x: mx.array) -> mx.array:
    """LeCun's scaled tanh, ``1.7159 * tanh(0.666 * x)`` (ncps's default backbone activation)."""
    return 1.7159 * fast_math.tanh(0.666 * x)


#: Backbone activations accepted by name, as in ncps 1.0.1 (``gelu`` is the exact erf form;
#: the tanh forms use :func:`ncps_mlx.cells.fast_math.tanh`).
ACTIVATIONS = {
    "lecun_tanh": lecun_tanh,
    "tanh": fast_math.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}

MODES = ("default", "pure", "no_gate")


def get_activation(name: str):
    """Return the activation function called ``name``; ValueError for unknown names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def check_mode(mode: str) -> str:
    """Validate a CfC ``mode`` (``"default"``, ``"pure"`` or ``"no_gate"``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def xavier_uniform(out_features: int, in_features: int) -> mx.array:
    """Glorot/Xavier uniform init of an ``(out, in)`` weight (gain 1, as in torch)."""
    bound = math.sqrt(6.0 / (in_features + out_features))
    return mx.random.uniform(-bound, bound, (out_features, in_features))


def dense_weight(layer: nn.Module) -> mx.array:
    """The ``(out, in)`` float weight of a linear layer: ``layer.weight``, or for a quantized
    layer (:func:`ncps_mlx.quantization.quantize`) its dequantized weight, in the layer's
    :func:`parameter_dtype` (that of its scales, or of its bias for the floating-point modes).

    Cells that fuse or split their layers' weights read them through this function, so they
    run unchanged after quantization (the stored weights stay quantized; each call
    dequantizes them once, outside the time loop).
    """
    if "scales" not in layer:
        return layer.weight
    return mx.dequantize(
        layer.weight,
        layer.scales,
        layer.get("biases"),
        layer.group_size,
        layer.bits,
        mode=layer.mode,
        dtype=parameter_dtype(layer),
    )


def in_out(weight: mx.array) -> mx.array:
    """An ``(out, in)`` weight as a contiguous ``(in, out)`` array, for ``x @ w`` in a time
    loop: the layout in which the CPU's BLAS multiplies fastest (about 2x faster than through
    a transposed view on MLX's Linux CPU build). Cells call it once per sequence, in
    ``prepare``."""
    return mx.contiguous(weight.T)


def parameter_dtype(module: nn.Module) -> mx.Dtype:
    """The dtype of a module's first floating parameter (float32 if it has none): the dtype
    the module computes in (see :func:`ncps_mlx.quantization.astype`)."""
    return next((array.dtype for array in _floating_parameters(module)), mx.float32)


def _floating_parameters(tree):
    """The floating parameters of a module (or of its nested dicts and lists), lazily, so that
    :func:`parameter_dtype` stops at the first (private ``_`` names are constants, skipped)."""
    for key, value in tree.items() if isinstance(tree, dict) else enumerate(tree):
        if isinstance(key, str) and key.startswith("_"):
            continue
        if isinstance(value, mx.array) and mx.issubdtype(value.dtype, mx.floating):
            yield value
        elif isinstance(value, dict | list):
            yield from _floating_parameters(value)


def wiring_for_units(units, input_size: int) -> Wiring:
    """``units`` as a wiring: a :class:`~ncps_mlx.wirings.Wiring` as is (it must not be built
    for another input size), an int as ``FullyConnected(units)`` (as ncps)."""
    if isinstance(units, Wiring):
        if units.input_dim is not None and units.input_dim != input_size:
            raise ValueError(
                f"the wiring was built for input_dim={units.input_dim} but input_size={input_size}"
            )
        return units
    return FullyConnected(check_int(units, "units", minimum=1))


class WiredCell:
    """Sizes of a cell whose neurons are a wiring's (mixed into LTCCell and WiredCfCCell)."""

    def _attach_wiring(self, wiring: Wiring, input_size: int | None, input_name: str) -> None:
        """Build ``wiring`` with ``input_size`` if given; it must know its input size after."""
        if not isinstance(wiring, Wiring):
            raise TypeError(f"wiring must be an ncps_mlx Wiring, got {type(wiring).__name__}")
        if input_size is not None:
            wiring.build(input_size)
        if not wiring.is_built():
            raise ValueError(
                f"the wiring has no input size: pass {input_name} or call wiring.build()"
            )
        self._wiring = wiring

    @property
    def wiring(self) -> Wiring:
        return self._wiring

    @property
    def num_neurons(self) -> int:
        """Number of neurons ``N``."""
        return self._wiring.units

    @property
    def state_size(self) -> int:
        """Size of the state (the neurons, unless a cell keeps more)."""
        return self._wiring.units

    @property
    def sensory_size(self) -> int:
        """Number of inputs ``F``."""
        return self._wiring.input_dim

    @property
    def motor_size(self) -> int:
        """Number of motor (output) neurons ``M``."""
        return self._wiring.output_dim

    @property
    def output_size(self) -> int:
        return self.motor_size

    @property
    def synapse_count(self) -> int:
        """Number of synapses between the wiring's neurons."""
        return self._wiring.synapse_count

    @property
    def sensory_synapse_count(self) -> int:
        """Number of synapses from the inputs to the neurons (ncps 1.0.1's cells return
        :attr:`synapse_count` here, a bug)."""
        return self._wiring.sensory_synapse_count
