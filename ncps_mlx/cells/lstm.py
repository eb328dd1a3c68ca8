"""The LSTM cell that gives LTC and CfC their mixed memory (ncps's ``LSTMCell``)."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn

from .._validation import keyword_aliases
from .common import Prepared, dense_weight, in_out, xavier_uniform
from .fast_math import sigmoid, tanh

__all__ = ["LSTMCell", "LSTMParams"]


class LSTMParams(NamedTuple):
    """Per-call constants of an :class:`LSTMCell` step (state ``H``).

    Attributes:
        recurrent_weight: ``(H, 4H)``, the recurrent map of the four gates (``i``, input,
            forget, output), ``(in, out)``.
    """

    recurrent_weight: mx.array


class LSTMCell(nn.Module):
    r"""An LSTM cell with ncps's parameterisation (forget-gate bias +1), used for mixed memory.

    .. math::

        i, g_i, g_f, g_o &= \text{split}_4(W_x x_t + b + W_h h_{t-1}) \\
        c_t &= c_{t-1} \sigma(g_f + 1) + \tanh(i) \sigma(g_i) \\
        h_t &= \tanh(c_t) \sigma(g_o)

    Parameters (ncps names): ``input_map.weight`` ``(4H, F)``, ``input_map.bias`` ``(4H,)``,
    ``recurrent_map.weight`` ``(4H, H)``. Init as ncps (:meth:`init_weights`): Xavier-uniform
    input weight, orthogonal recurrent weight, biases uniform in ``[-0.1, 0.1]``.

    Args:
        input_size (int): Input features ``F``.
        hidden_size (int): State size ``H``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_map = nn.Linear(input_size, 4 * hidden_size, bias=True)
        self.recurrent_map = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.init_weights()

    #: The activations as ncps's cell names them (functions here, modules in ncps).
    tanh = staticmethod(tanh)
    sigmoid = staticmethod(sigmoid)

    def init_weights(self) -> None:
        """Draw the weights afresh as ncps does at construction."""
        gates, inputs = self.input_map.weight.shape
        self.input_map.weight = xavier_uniform(gates, inputs)
        self.input_map.bias = mx.random.uniform(-0.1, 0.1, (gates,))
        self.recurrent_map.weight = nn.init.orthogonal()(mx.zeros((gates, self.hidden_size)))

    def prepare(self, x: mx.array) -> Prepared:
        """Input projection of all steps: ``x`` ``(T, B, F)`` -> inputs ``((T, B, 4H),)``; the
        step's :class:`LSTMParams`."""
        recurrent_weight = in_out(dense_weight(self.recurrent_map))
        return Prepared((self.input_map(x),), LSTMParams(recurrent_weight))

    @staticmethod
    def step(inputs_t, params: LSTMParams, state, timespans=1.0):
        """One step: ``state = (h, c)``, each ``(B, H)``; returns ``(h_new, (h_new, c_new))``.

        ``timespans`` is accepted for the common step signature and ignored.
        """
        (projected,) = inputs_t
        h, c = state
        z = mx.addmm(projected, h, params.recurrent_weight)
        i, input_gate, forget_gate, output_gate = mx.split(z, 4, axis=-1)
        c = c * sigmoid(forget_gate + 1.0) + tanh(i) * sigmoid(input_gate)
        h = tanh(c) * sigmoid(output_gate)
        return h, (h, c)

    @keyword_aliases(inputs="x", states="state")
    def __call__(self, x: mx.array, state: tuple[mx.array, mx.array]):
        """One step on ``x`` ``(B, F)``, ``state = (h, c)``; returns ``(h, c)``.

        ncps's keyword names work too (``inputs``, ``states``); passing an argument under both
        names is a TypeError.
        """
        prepared = self.prepare(x[None])
        return self.step(tuple(a[0] for a in prepared.inputs), prepared.params, state)[1]

    def _extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"
