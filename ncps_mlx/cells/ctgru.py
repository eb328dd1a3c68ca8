"""The continuous-time GRU (CT-GRU) cell of Mozer, Kazakov & Lindsey 2017."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._validation import check_int
from .common import Prepared, in_out, xavier_uniform
from .ctrnn import DenseWiredCell, masked_weight, wiring_masks
from .fast_math import tanh

__all__ = ["CTGRUCell", "CTGRUParams"]


class CTGRUParams(NamedTuple):
    """Per-call constants of a :class:`CTGRUCell` step (``N`` neurons, ``M`` time scales).

    Attributes:
        scale_weight: ``(N, 2NM)``, ``(in, out)``: the recurrent halves of ``W_r`` then
            ``W_s`` (retrieval and storage scale logits), masked by the wiring.
        detect_weight: ``(N, N)``, ``(in, out)``: the recurrent half of ``W_q``, masked.
        log_tau: ``ln tau_k`` ``(M,)``.
        inverse_tau: ``1 / tau_k`` ``(M,)``.
    """

    scale_weight: mx.array
    detect_weight: mx.array
    log_tau: mx.array
    inverse_tau: mx.array


class CTGRUCell(DenseWiredCell, nn.Module):
    r"""A `continuous-time GRU <https://arxiv.org/abs/1710.04110>`_ cell ("Discrete event,
    continuous time RNNs", Mozer, Kazakov & Lindsey 2017).

    Each neuron :math:`j` keeps ``M`` memory traces :math:`\hat h_{j,1..M}` with time constants
    :math:`\tau_k = 10^{(k-1)/2}` (log-spaced from 1); its activity is their sum
    :math:`h_j = \sum_k \hat h_{j,k}`. With :math:`u = [x_t, h]` and elapsed time
    :math:`\Delta t`:

    .. math::

        r_{j,\cdot} &= \text{softmax}_k\bigl(-(W_r u + b_r - \ln\tau_k)_{j,k}^2\bigr)
            \qquad \text{(retrieval scale)} \\
        q_j &= \tanh\Bigl(W_q \bigl[x_t, \textstyle\sum_k r_{\cdot,k} \hat h_{\cdot,k}\bigr]
            + b_q\Bigr)_j \qquad \text{(detected event)} \\
        s_{j,\cdot} &= \text{softmax}_k\bigl(-(W_s u + b_s - \ln\tau_k)_{j,k}^2\bigr)
            \qquad \text{(storage scale)} \\
        \hat h_{j,k} &\leftarrow \bigl((1 - s_{j,k}) \hat h_{j,k} + s_{j,k} q_j\bigr)
            e^{-\Delta t / \tau_k}, \qquad h_j = \textstyle\sum_k \hat h_{j,k}

    Everything but the recurrent terms (``W_r``, ``W_s``, ``W_q`` applied to ``x_t``, with the
    biases) is computed for all time steps before the loop; a step costs two matmuls, ``(B, N)``
    by ``(N, 2NM)`` and ``(N, N)``, and ``3NM`` exponentials.

    The equations follow ``CTGRU`` in ``ctrnn_model.py`` of raminmh/liquid_time_constant_networks
    (the baseline of the LTC paper), with one deliberate difference: the traces decay by
    :math:`e^{-\Delta t/\tau_k}` as in the paper, where that code multiplies by
    :math:`e^{-1/\ln\tau_k}` (zero for :math:`\tau_1 = 1`, and blind to the elapsed time).

    Shapes: inputs ``(B, F)`` per step; state ``(B, N * M)``, neuron ``j``'s traces at
    ``j*M .. j*M+M-1`` (``state_size = N * M``); outputs: the motor neurons' activities
    ``(B, M_out)``. Parameters: ``tau_r``, ``tau_s`` (``weight`` ``(N*M, F+N)``) and ``detect``
    (``weight`` ``(N, F+N)``), each with a bias; their input columns are masked by
    ``|sensory_adjacency_matrix|`` and their recurrent columns by ``|adjacency_matrix|``
    (repeated over the ``M`` rows of a neuron).

    Args:
        input_size (int): Input features ``F``.
        units (int | Wiring): Neuron count ``N`` (fully connected) or a wiring.
        time_scales (int): Number ``M`` of time scales per neuron. Default: ``8``.
    """

    def __init__(self, input_size: int, units, time_scales: int = 8):
        super().__init__()
        self._attach_units(units, input_size)
        self.time_scales = check_int(time_scales, "time_scales", minimum=1)
        n, f, m = self.num_neurons, self.sensory_size, self.time_scales
        for name, rows in (("tau_r", n * m), ("tau_s", n * m), ("detect", n)):
            layer = nn.Linear(f + n, rows)
            layer.weight = xavier_uniform(rows, f + n)
            layer.bias = mx.zeros((rows,))
            setattr(self, name, layer)
        log_tau = 0.5 * np.log(10.0) * np.arange(m, dtype=np.float32)
        self._log_tau = mx.array(log_tau)
        self._inv_tau = mx.array(np.exp(-log_tau))
        self.refresh_wiring()

    @property
    def state_size(self) -> int:
        """``N * M``: ``M`` traces per neuron."""
        return self.num_neurons * self.time_scales

    def refresh_wiring(self) -> None:
        """Re-read the wiring's synapses into the masks (after they changed; shapes kept)."""
        masks = {}
        for name, repeat in (("scales", self.time_scales), ("detect", 1)):
            sensory, recurrent = wiring_masks(self.wiring, repeat)
            masks[name] = mx.array(np.concatenate([sensory, recurrent], axis=1))
        self._scale_sparsity_mask = masks["scales"]
        self._detect_sparsity_mask = masks["detect"]

    def prepare(self, x: mx.array) -> Prepared:
        """Input terms of all steps: ``x`` ``(T, B, F)`` -> ``((T, B, 2NM + N),)`` (retrieval,
        storage, detection); the step's :class:`CTGRUParams`."""
        f = self.sensory_size
        w_r = masked_weight(self.tau_r, self._scale_sparsity_mask)
        w_s = masked_weight(self.tau_s, self._scale_sparsity_mask)
        w_q = masked_weight(self.detect, self._detect_sparsity_mask)
        w_x = mx.concatenate([w_r[:, :f], w_s[:, :f], w_q[:, :f]], axis=0)
        bias = mx.concatenate([self.tau_r.bias, self.tau_s.bias, self.detect.bias])
        projected = mx.addmm(bias, x, w_x.T)
        w_h = mx.concatenate([w_r[:, f:], w_s[:, f:]], axis=0)
        params = CTGRUParams(in_out(w_h), in_out(w_q[:, f:]), self._log_tau, self._inv_tau)
        return Prepared((projected,), params)

    def _traces(self, state: mx.array) -> mx.array:
        return state.reshape(*state.shape[:-1], self.num_neurons, self.time_scales)

    def step(self, inputs_t, params: CTGRUParams, state, timespans=1.0):
        """Advance the traces ``state`` ``(B, N*M)`` by ``timespans`` (float or ``(B, 1)``);
        returns ``(motor outputs, state_new)``."""
        (projected,) = inputs_t
        n, nm = self.num_neurons, self.num_neurons * self.time_scales
        traces = self._traces(state)
        h = traces.sum(axis=-1)
        scales = mx.addmm(projected[..., : 2 * nm], h, params.scale_weight)
        retrieval, storage = (
            mx.softmax(-mx.square(self._traces(z) - params.log_tau), axis=-1)
            for z in mx.split(scales, 2, axis=-1)
        )
        retrieved = (retrieval * traces).sum(axis=-1)
        detected = mx.addmm(projected[..., 2 * nm : 2 * nm + n], retrieved, params.detect_weight)
        event = tanh(detected)
        if isinstance(timespans, mx.array) and timespans.ndim:
            timespans = timespans[..., None]
        decay = mx.exp(-timespans * params.inverse_tau)
        traces = ((1.0 - storage) * traces + storage * event[..., None]) * decay
        h = traces.sum(axis=-1)
        return h[..., : self.motor_size], traces.reshape(*state.shape[:-1], nm)

    def output_of_state(self, state: mx.array) -> mx.array:
        """The step output a state stands for: the motor neurons' summed traces."""
        return self._traces(state).sum(axis=-1)[..., : self.motor_size]

    def _extra_repr(self) -> str:
        return f"{super()._extra_repr()}, time_scales={self.time_scales}"
