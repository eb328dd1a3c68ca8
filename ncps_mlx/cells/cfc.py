"""The closed-form continuous-time (CfC) cell of Hasani et al. 2022, ncps-compatible."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._validation import check_int, keyword_aliases
from .common import (
    DenseParams,
    Prepared,
    check_mode,
    dense_weight,
    get_activation,
    in_out,
    xavier_uniform,
)
from .fast_math import sigmoid, tanh

__all__ = ["CfCCell", "CfCParams"]


class CfCParams(NamedTuple):
    """Per-call constants of a :class:`CfCCell` step (state ``H``, backbone width ``U``, ``K``
    heads: 4, or 1 in mode ``"pure"``; ``D`` = the first layer's width: ``U`` with a backbone,
    ``K * H`` without).

    The input half of the first layer (``backbone.0``, or the fused heads without a backbone)
    is not here: ``prepare`` applies it to all steps before the loop (the step's input).

    Attributes:
        recurrent_weight: ``(H, D)``, the state half of the first layer, ``(in, out)``.
        backbone: Backbone layers after the first (``(U, U)`` weight, ``(U,)`` bias each);
            None with fewer than two backbone layers.
        heads: The heads ``ff1, ff2, time_a, time_b`` (pure: ``ff1``) fused, ``(U, K * H)``
            weight and ``(K * H,)`` bias, ``ff1``/``ff2`` masked by the sparsity mask; None
            without a backbone (then the first layer is the heads).
        amplitude: ``A`` ``(1, H)`` of mode ``"pure"``; None in the other modes.
        w_tau: ``w_tau`` ``(1, H)`` of mode ``"pure"``; None in the other modes.
    """

    recurrent_weight: mx.array
    backbone: tuple[DenseParams, ...] | None
    heads: DenseParams | None
    amplitude: mx.array | None
    w_tau: mx.array | None


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

    Attributes follow ncps too: ``backbone`` is the list of backbone layers (None without
    one), ``sparsity_mask`` the ``(H, F + H)`` mask of ``ff1``/``ff2`` (None if dense),
    ``tanh``/``sigmoid`` the activations and :meth:`init_weights` ncps's initialisation.

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
            (as in ncps; used by :class:`~ncps_mlx.cells.wired_cfc.WiredCfCCell`).
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
            self.backbone = None
            head_in = concat
        heads = ["ff1"] if self.mode == "pure" else ["ff1", "ff2", "time_a", "time_b"]
        for name in heads:
            setattr(self, name, nn.Linear(head_in, self.hidden_size))
        if self.mode == "pure":
            self.w_tau = mx.zeros((1, self.hidden_size))
            self.A = mx.ones((1, self.hidden_size))
        self._heads = heads
        self.init_weights()
        self._sparsity_mask = None
        if sparsity_mask is not None:
            mask = np.abs(np.asarray(sparsity_mask, np.float32))
            if mask.shape != (head_in, self.hidden_size):
                raise ValueError(
                    f"sparsity_mask must have shape {(head_in, self.hidden_size)} "
                    f"(inputs + hidden, hidden), got {mask.shape}"
                )
            self._sparsity_mask = mx.array(mask.T)

    #: The activations as ncps's cell names them (functions here, modules in ncps).
    tanh = staticmethod(tanh)
    sigmoid = staticmethod(sigmoid)

    def init_weights(self) -> None:
        """Draw every weight matrix afresh, Xavier-uniform, as ncps does at construction: the
        backbone's and the heads' weights, and ``w_tau``, ``A`` in mode ``"pure"`` (biases
        keep their values)."""
        if self.mode == "pure":
            self.w_tau = xavier_uniform(1, self.hidden_size)
            self.A = xavier_uniform(1, self.hidden_size)
        for layer in [*(self.backbone or []), *(getattr(self, name) for name in self._heads)]:
            layer.weight = xavier_uniform(*layer.weight.shape)

    @property
    def sparsity_mask(self) -> mx.array | None:
        """The ``(H, F + H)`` mask of ``ff1``/``ff2`` (ncps's layout), None if dense."""
        return self._sparsity_mask

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

    def split_params(self) -> tuple[mx.array, mx.array, CfCParams]:
        """The first layer's input half and the step's constants.

        Returns:
            ``(input_weight, input_bias, params)``: ``input_weight`` ``(D, F)`` (``(out, in)``,
            as stored) and ``input_bias`` ``(D,)`` map the input into the first layer; the
            caller applies them (:meth:`prepare`: to all steps at once). ``params`` are the
            step's :class:`CfCParams`.
        """
        heads = self._head_weights()
        backbone = [(dense_weight(layer), layer.bias) for layer in self.backbone or []]
        first_weight, first_bias = backbone[0] if backbone else heads
        pure = self.mode == "pure"
        params = CfCParams(
            recurrent_weight=in_out(first_weight[:, self.input_size :]),
            backbone=tuple(DenseParams(in_out(w), b) for w, b in backbone[1:]) or None,
            heads=DenseParams(in_out(heads[0]), heads[1]) if backbone else None,
            amplitude=self.A if pure else None,
            w_tau=self.w_tau if pure else None,
        )
        return first_weight[:, : self.input_size], first_bias, params

    def prepare(self, x: mx.array) -> Prepared:
        """``x`` ``(T, B, F)`` -> the input part of the first layer ``((T, B, D),)`` and the
        step's :class:`CfCParams`."""
        input_weight, input_bias, params = self.split_params()
        return Prepared((x @ input_weight.T + input_bias,), params)

    # ------------------------------------------------------------------ one step
    def step(self, inputs_t, params: CfCParams, h, timespans=1.0):
        """Advance ``h`` ``(B, H)`` by one step of length ``timespans`` (float or ``(B, 1)``);
        returns ``(h_new, h_new)``."""
        h_new = self.advance(inputs_t[0], params, h, timespans)
        return h_new, h_new

    def advance(self, projected, params: CfCParams, h, timespans):
        """The CfC update of ``h`` ``(B, H)`` given the input part ``projected`` ``(B, D)`` of
        the first layer; returns the new ``(B, H)`` state."""
        z = mx.addmm(projected, h, params.recurrent_weight)
        if self.backbone_layers:
            z = self._dropout(self._activation(z))
            for layer in params.backbone or ():
                z = self._dropout(self._activation(mx.addmm(layer.bias, z, layer.weight)))
            z = mx.addmm(params.heads.bias, z, params.heads.weight)
        if self.mode == "pure":
            amplitude = params.amplitude
            decay = mx.exp(-timespans * (mx.abs(params.w_tau) + mx.abs(z)))
            return -amplitude * decay * z + amplitude
        ff1, ff2, time_a, time_b = mx.split(z, 4, axis=-1)
        ff1, ff2 = self.tanh(ff1), self.tanh(ff2)
        t_interp = self.sigmoid(time_a * timespans + time_b)
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

    @keyword_aliases(input="x", hx="h", ts="timespans")
    def __call__(self, x: mx.array, h: mx.array, timespans=1.0):
        """One step on ``x`` ``(B, F)``: returns ``(output, h_new)``, both ``(B, H)``.

        ``timespans`` (float or ``(B, 1)``) is the elapsed time. ncps's keyword names work too
        (``input``, ``hx``, ``ts``); passing an argument under both names is a TypeError.
        """
        prepared = self.prepare(x[None])
        return self.step(tuple(a[0] for a in prepared.inputs), prepared.params, h, timespans)

    def _extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, mode={self.mode!r}, "
            f"backbone_layers={self.backbone_layers}"
        )
