"""A CfC whose neurons and synapses follow a wiring, layer by layer (ncps's ``WiredCfCCell``)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..wirings import Wiring
from .cfc import CfCCell
from .common import Prepared, WiredCell

__all__ = ["WiredCfCCell"]


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
    def layers(self) -> list[CfCCell]:
        return [getattr(self, f"layer_{i}") for i in range(len(self.layer_sizes))]

    def prepare(self, x: mx.array) -> Prepared:
        """Layer 0's input projection for all steps; every layer's constants."""
        first = self.layers[0].prepare(x)
        later = tuple(layer.step_params(input_per_step=True) for layer in self.layers[1:])
        params = (first.params, *later)
        return Prepared(first.inputs, params)

    def step(self, inputs_t, params, h, ts=1.0):
        """One step of every layer in order; ``h`` ``(B, N)`` in layer order."""
        states = mx.split(h, self._split_points, axis=-1)
        projected = inputs_t[0]
        new_states = []
        for index, (layer, layer_params, state, slowdown) in enumerate(
            zip(self.layers, params, states, self._slowdowns, strict=True)
        ):
            if index:
                w_x, b_x = layer_params[0], layer_params[1]
                projected = mx.addmm(b_x, new_states[-1], w_x)
            layer_ts = ts if slowdown is None else ts * slowdown
            new_states.append(layer.advance(projected, layer_params, state, layer_ts))
        h = mx.concatenate(new_states, axis=-1)
        return h[..., self._motor], h

    def output_of_state(self, h: mx.array) -> mx.array:
        """The step output a state stands for: its motor neurons."""
        return h[..., self._motor]

    def __call__(self, x: mx.array, h: mx.array, ts=1.0):
        """One step on ``x`` ``(B, F)``: returns ``(output (B, M), h_new (B, N))``."""
        prepared = self.prepare(x[None])
        return self.step(tuple(a[0] for a in prepared.inputs), prepared.params, h, ts)

    def _extra_repr(self) -> str:
        return (
            f"layers={self.layer_sizes}, in_features={self._wiring.input_dim}, mode={self.mode!r}"
        )
