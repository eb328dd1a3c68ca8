"""A CfC whose neurons and synapses follow a wiring, layer by layer (ncps's ``WiredCfCCell``)."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._validation import keyword_aliases
from ..wirings import Wiring
from .cfc import CfCCell, CfCParams
from .common import DenseParams, Prepared, WiredCell, in_out

__all__ = ["WiredCfCCell", "WiredCfCParams", "WiredCfCLayerParams"]


class WiredCfCLayerParams(NamedTuple):
    """Per-call constants of one layer ``l`` of a :class:`WiredCfCCell` (``N_l`` neurons).

    Attributes:
        input_map: Maps the previous layer's new state into this layer's heads at every step:
            ``(N_{l-1}, K * N_l)`` weight (masked by the wiring) and ``(K * N_l,)`` bias, with
            ``K`` heads (4, or 1 in mode ``"pure"``). None for layer 0, whose input map
            ``prepare`` applies to the sensory inputs of all steps at once.
        cell: The layer's backbone-free :class:`~ncps_mlx.cells.cfc.CfCParams`.
        timespan_scale: ``(N_l,)`` factor on the elapsed time of each neuron, the reciprocal
            of its wiring time scale; None when all time scales are 1.
    """

    input_map: DenseParams | None
    cell: CfCParams
    timespan_scale: mx.array | None


class WiredCfCParams(NamedTuple):
    """Per-call constants of a :class:`WiredCfCCell` step.

    Attributes:
        layers: One :class:`WiredCfCLayerParams` per wiring layer, in layer order.
    """

    layers: tuple[WiredCfCLayerParams, ...]


class WiredCfCCell(WiredCell, nn.Module):
    r"""A stack of backbone-free :class:`CfCCell`\ s, one per wiring layer, masked by the wiring.

    Layer ``l`` holds the neurons ``wiring.get_neurons_of_layer(l)`` (for an NCP: inter, command,
    motor). Its ``ff1``/``ff2`` inputs are the previous layer's new state (the sensory inputs
    for layer 0), masked by the wiring's synapses between the two layers, plus its own state
    (dense, as in ncps). The state is the layers' states concatenated **in layer order** (ncps's
    layout, which for an NCP differs from neuron-id order); the output is the state of the
    motor neurons ``0..output_dim-1`` (for an NCP: the last layer).

    Difference from ncps 1.0.1: ncps outputs the whole last layer, which is wrong when it holds
    more than the motor neurons (e.g. ``FullyConnected(units, output_dim < units)``, where
    ncps's ``proj_size`` layer then fails on the size mismatch).

    Parameters: ``layer_{l}.ff1`` ... as in ncps, so ncps weights load by name. Each neuron
    sees the elapsed time divided by its wiring time scale
    (:meth:`~ncps_mlx.wirings.Wiring.neuron_time_scales`, all ones for the classic wirings),
    so slow groups integrate more slowly.

    Args:
        input_size (int, optional): Input features; builds the wiring if given.
        wiring (Wiring): The circuit.
        mode (str): CfC mode of every layer (``"default"``, ``"pure"``, ``"no_gate"``).
    """

    def __init__(self, input_size: int | None, wiring: Wiring, mode: str = "default"):
        super().__init__()
        self._attach_wiring(wiring, input_size, "input_size")
        self.mode = mode
        self.layer_sizes = [len(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]
        in_features = wiring.input_dim
        for index in range(wiring.num_layers):
            mask = self._layer_mask(index)
            cell = CfCCell(in_features, mask.shape[1], mode, backbone_layers=0, sparsity_mask=mask)
            setattr(self, f"layer_{index}", cell)
            in_features = mask.shape[1]
        self._split_points = np.cumsum(self.layer_sizes)[:-1].tolist()
        # Neurons of slow groups see proportionally less elapsed time (None: all scales 1).
        scales = wiring.neuron_time_scales()
        self._slowdowns = [
            None if np.all(scales[n] == 1) else mx.array(1.0 / scales[n])
            for n in (wiring.get_neurons_of_layer(i) for i in range(wiring.num_layers))
        ]
        order = np.concatenate([wiring.get_neurons_of_layer(i) for i in range(wiring.num_layers)])
        position = np.empty(wiring.units, np.int64)
        position[order] = np.arange(wiring.units)
        motor = position[: wiring.output_dim]
        contiguous = np.array_equal(motor, np.arange(motor[0], motor[0] + motor.size))
        self._motor = (
            slice(int(motor[0]), int(motor[0]) + motor.size) if contiguous else mx.array(motor)
        )

    def _layer_mask(self, index: int) -> np.ndarray:
        """``(inputs + H, H)`` mask of layer ``index``: synapses from the previous layer (the
        sensory inputs for layer 0) stacked on a dense block for the layer's own state."""
        wiring = self._wiring
        neurons = np.asarray(wiring.get_neurons_of_layer(index))
        if index == 0:
            sources = np.arange(wiring.input_dim)
            src, dst, _ = wiring.sensory_synapses()
        else:
            sources = np.asarray(wiring.get_neurons_of_layer(index - 1))
            src, dst, _ = wiring.synapses()
        row = np.full(wiring.input_dim if index == 0 else wiring.units, -1)
        row[sources] = np.arange(sources.size)
        column = np.full(wiring.units, -1)
        column[neurons] = np.arange(neurons.size)
        inside = (row[src] >= 0) & (column[dst] >= 0)
        mask = np.zeros((sources.size + neurons.size, neurons.size), np.float32)
        mask[row[src[inside]], column[dst[inside]]] = 1.0
        mask[sources.size :] = 1.0
        return mask

    def refresh_wiring(self) -> None:
        """Re-read the wiring's synapses into every layer's mask after they changed (in place;
        shapes are unchanged, so training continues)."""
        for index, layer in enumerate(self.layers):
            layer._sparsity_mask = mx.array(self._layer_mask(index).T)

    @property
    def num_layers(self) -> int:
        """Number of layers (the wiring's ``num_layers``)."""
        return len(self.layer_sizes)

    @property
    def layers(self) -> list[CfCCell]:
        return [getattr(self, f"layer_{i}") for i in range(self.num_layers)]

    def prepare(self, x: mx.array) -> Prepared:
        """``x`` ``(T, B, F)`` -> layer 0's input projection ``((T, B, K * N_0),)`` and the
        step's :class:`WiredCfCParams`."""
        first = self.layers[0].prepare(x)
        layers = [WiredCfCLayerParams(None, first.params, self._slowdowns[0])]
        for layer, slowdown in zip(self.layers[1:], self._slowdowns[1:], strict=True):
            input_weight, input_bias, params = layer.split_params()
            input_map = DenseParams(in_out(input_weight), input_bias)
            layers.append(WiredCfCLayerParams(input_map, params, slowdown))
        return Prepared(first.inputs, WiredCfCParams(tuple(layers)))

    def step(self, inputs_t, params: WiredCfCParams, h, timespans=1.0):
        """One step of every layer in order on ``h`` ``(B, N)`` (layer order), elapsed time
        ``timespans`` (float or ``(B, 1)``); returns ``(motor outputs (B, M), h_new (B, N))``."""
        states = mx.split(h, self._split_points, axis=-1)
        projected = inputs_t[0]
        new_states = []
        for layer, layer_params, state in zip(self.layers, params.layers, states, strict=True):
            if layer_params.input_map is not None:
                input_map = layer_params.input_map
                projected = mx.addmm(input_map.bias, new_states[-1], input_map.weight)
            scale = layer_params.timespan_scale
            layer_timespans = timespans if scale is None else timespans * scale
            new_states.append(layer.advance(projected, layer_params.cell, state, layer_timespans))
        h = mx.concatenate(new_states, axis=-1)
        return h[..., self._motor], h

    def output_of_state(self, h: mx.array) -> mx.array:
        """The step output a state stands for: its motor neurons."""
        return h[..., self._motor]

    @keyword_aliases(input="x", hx="h", ts="timespans")
    def __call__(self, x: mx.array, h: mx.array, timespans=1.0):
        """One step on ``x`` ``(B, F)``: returns ``(output (B, M), h_new (B, N))``.

        ``timespans`` (float or ``(B, 1)``) is the elapsed time (ncps's name here). ncps's
        ``input`` and ``hx`` work too, and ``ts``, :class:`~ncps_mlx.cells.CfCCell`'s name for
        the elapsed time; passing an argument under both names is a TypeError.
        """
        prepared = self.prepare(x[None])
        return self.step(tuple(a[0] for a in prepared.inputs), prepared.params, h, timespans)

    def _extra_repr(self) -> str:
        return (
            f"layers={self.layer_sizes}, in_features={self._wiring.input_dim}, mode={self.mode!r}"
        )
