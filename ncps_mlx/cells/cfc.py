"""The closed-form continuous-time (CfC) cell of Hasani et al. 2022, ncps-compatible."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._validation import check_int
from .common import Prepared, check_mode, dense_weight, get_activation, in_out, xavier_uniform
from .fast_math import sigmoid, tanh

__all__ = ["CfCCell"]


class CfCCell(nn.Module):
    r"""A `closed-form continuous-time <https://arxiv.org/abs/2106.13898>`_ cell.

    With :math:`z = \text{backbone}([x_t, h_{t-1}])` (the identity if ``backbone_layers=0``) and
    elapsed time :math:`\Delta t`:

    .. math::

        f_1 &= \tanh(W_1 z + b_1), \quad f_2 = \tanh(W_2 z + b_2), \quad
        \tau = \sigma((W_a z + b_a) \Delta t + W_b z + b_b) \\
        h_t &= f_1 (1 - \tau) + \tau f_2 \qquad \text{(mode "default")} \\
        h_t &= f_1 + \tau f_2 \qquad \text{(mode "no_gate")} \\
        h_t &= -A e^{-\Delta t (|w_\tau| + |f|)} f + A, \quad f = W_1 z + b_1
            \qquad \text{(mode "pure")}

    Parameters carry ncps's names and shapes (``backbone.{i}``, ``ff1``, ``ff2``, ``time_a``,
    ``time_b``, or ``w_tau``/``A`` in pure mode), so ncps PyTorch weights load by name
    (:func:`ncps_mlx.io.load_ncps_state_dict`). The four heads are fused into one matmul per
    step, and the input half of the first layer is applied to all steps before the time loop.

    Difference from ncps 1.0.1: dropout follows every backbone layer (ncps skips the first).

    Args:
        input_size (int): Input features ``F``.
        hidden_size (int): State size ``H``.
        mode (str): ``"default"``, ``"pure"`` or ``"no_gate"``.
        backbone_activation (str): ``lecun_tanh``, ``tanh``, ``relu``, ``gelu`` or ``silu``.
        backbone_units (int): Width ``U`` of the backbone layers.
        backbone_layers (int): Number of backbone layers (0: heads read ``[x, h]`` directly).
        backbone_dropout (float): Dropout after each backbone layer in training mode.
        sparsity_mask (np.ndarray, optional): ``(F + H, H)`` mask of ``ff1``/``ff2`` inputs
            (as in ncps; used by :class:`WiredCfCCell`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask=None,
    ):
        super().__init__()
        self.input_size = check_int(input_size, "input_size", minimum=1)
        self.hidden_size = check_int(hidden_size, "hidden_size", minimum=1)
        self.mode = check_mode(mode)
        self._activation = get_activation(backbone_activation)
        self.backbone_activation = backbone_activation
        self.backbone_layers = check_int(backbone_layers, "backbone_layers", minimum=0)
        if not 0.0 <= backbone_dropout < 1.0:
            raise ValueError(f"backbone_dropout must be in [0, 1), got {backbone_dropout}")
        self.backbone_dropout = float(backbone_dropout)
        concat = self.input_size + self.hidden_size
        if self.backbone_layers > 0:
            units = check_int(backbone_units, "backbone_units", minimum=1)
            sizes = [concat] + [units] * self.backbone_layers
            self.backbone = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
            head_in = units
        else:
            head_in = concat
        heads = ["ff1"] if self.mode == "pure" else ["ff1", "ff2", "time_a", "time_b"]
        for name in heads:
            setattr(self, name, nn.Linear(head_in, self.hidden_size))
        if self.mode == "pure":
            # ncps sets zeros/ones, then its init_weights Xavier-initialises every 2-D parameter.
            self.w_tau = xavier_uniform(1, self.hidden_size)
            self.A = xavier_uniform(1, self.hidden_size)
        for layer in [*getattr(self, "backbone", []), *(getattr(self, name) for name in heads)]:
            layer.weight = xavier_uniform(*layer.weight.shape)
        self._heads = heads
        self._sparsity_mask = None
        if sparsity_mask is not None:
            mask = np.abs(np.asarray(sparsity_mask, np.float32))
            if mask.shape != (head_in, self.hidden_size):
                raise ValueError(
                    f"sparsity_mask must have shape {(head_in, self.hidden_size)} "
                    f"(inputs + hidden, hidden), got {mask.shape}"
                )
            self._sparsity_mask = mx.array(mask.T)

    # ------------------------------------------------------------------ fused weights
    def _head_weights(self) -> tuple[mx.array, mx.array]:
        """The heads as one ``(K*H, D)`` weight and ``(K*H,)`` bias (masks applied)."""
        weights, biases = [], []
        for name in self._heads:
            layer = getattr(self, name)
            weight = dense_weight(layer)
            masked = name in ("ff1", "ff2") and self._sparsity_mask is not None
            weights.append(weight * self._sparsity_mask if masked else weight)
            biases.append(layer.bias)
        return mx.concatenate(weights, axis=0), mx.concatenate(biases, axis=0)

    def step_params(self, input_per_step: bool = False) -> tuple:
        """Per-call constants: ``(w_x, b_x, w_h, hidden_layers, heads, extra)``.

        ``w_x``/``b_x`` map the input into the first layer (applied before the time loop),
        ``w_h`` maps the state into it, ``hidden_layers`` are the further backbone layers,
        ``heads`` the fused head weight and bias after a backbone, ``extra`` ``(A, w_tau)``.
        Weights are ``(in, out)`` and contiguous, the layout in which the CPU's BLAS
        multiplies fastest (about 2x faster than a transposed view there), except ``w_x``,
        which stays ``(out, in)`` unless ``input_per_step`` says that it is applied at every
        step (:class:`WiredCfCCell`'s layers after the first) rather than once per call.
        """
        heads = self._head_weights()
        backbone = [(dense_weight(layer), layer.bias) for layer in getattr(self, "backbone", [])]
        first = backbone[0] if self.backbone_layers else heads
        w_x, w_h = first[0][:, : self.input_size], in_out(first[0][:, self.input_size :])
        w_x = in_out(w_x) if input_per_step else w_x
        hidden = tuple((in_out(weight), bias) for weight, bias in backbone[1:])
        heads = (in_out(heads[0]), heads[1]) if self.backbone_layers else ()
        extra = (self.A, self.w_tau) if self.mode == "pure" else ()
        return w_x, first[1], w_h, hidden, heads, extra

    def prepare(self, x: mx.array) -> Prepared:
        """``x`` ``(T, B, F)`` -> input part of the first layer ``((T, B, D),)`` and constants."""
        params = self.step_params()
        return Prepared((x @ params[0].T + params[1],), params)

    # ------------------------------------------------------------------ one step
    def step(self, inputs_t, params, h, ts=1.0):
        """Advance ``h`` ``(B, H)`` by one step of length ``ts`` (float or ``(B, 1)``)."""
        h_new = self.advance(inputs_t[0], params, h, ts)
        return h_new, h_new

    def advance(self, projected, params, h, ts):
        """The CfC update given the input part ``projected`` ``(B, D)`` of the first layer."""
        _, _, w_h, hidden, heads, extra = params
        z = mx.addmm(projected, h, w_h)
        if self.backbone_layers:
            z = self._dropout(self._activation(z))
            for weight, bias in hidden:
                z = self._dropout(self._activation(mx.addmm(bias, z, weight)))
            z = mx.addmm(heads[1], z, heads[0])
        if self.mode == "pure":
            amplitude, w_tau = extra
            return -amplitude * mx.exp(-ts * (mx.abs(w_tau) + mx.abs(z))) * z + amplitude
        ff1, ff2, time_a, time_b = mx.split(z, 4, axis=-1)
        ff1, ff2 = tanh(ff1), tanh(ff2)
        t_interp = sigmoid(time_a * ts + time_b)
        if self.mode == "no_gate":
            return ff1 + t_interp * ff2
        return ff1 * (1.0 - t_interp) + t_interp * ff2

    def _dropout(self, z):
        if not (self.training and self.backbone_dropout > 0.0):
            return z
        keep = 1.0 - self.backbone_dropout
        return mx.where(mx.random.bernoulli(keep, z.shape), z / keep, 0.0)

    def ncps_buffers(self) -> dict[str, np.ndarray]:
        """ncps's non-trainable ``sparsity_mask`` buffer (wired layers only)."""
        return (
            {} if self._sparsity_mask is None else {"sparsity_mask": np.array(self._sparsity_mask)}
        )

    def output_of_state(self, h: mx.array) -> mx.array:
        """The step output a state stands for: ``h`` itself."""
        return h

    def __call__(self, x: mx.array, h: mx.array, ts=1.0):
        """One step on ``x`` ``(B, F)``: returns ``(output, h_new)``, both ``(B, H)``."""
        prepared = self.prepare(x[None])
        return self.step(tuple(a[0] for a in prepared.inputs), prepared.params, h, ts)

    def _extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, mode={self.mode!r}, "
            f"backbone_layers={self.backbone_layers}"
        )
