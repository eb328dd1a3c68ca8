"""``WiredLinear``: a linear layer whose weight is masked by a wiring's synapse structure."""

from __future__ import annotations

import math
import os
import sys
import warnings

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..._validation import check_int
from ...cells.common import dense_weight
from ...wirings import Wiring

__all__ = ["WiredLinear", "QuantizedWiredLinear", "WiringResampledWarning", "wiring_mask"]


class WiringResampledWarning(UserWarning):
    """A wiring's synapse pattern was stretched to a projection of another size.

    Raised as a warning by :func:`wiring_mask` when the wiring's ``units`` are neither the
    projection's input nor its output size (so it is not the wiring of that width), and once
    per build by :class:`~ncps_mlx.hybrid.HybridBuilder` (``"from N to M units"``).

    Attributes:
        units (int): The wiring's neurons ``N``.
        shape (tuple[int, int]): The projection's ``(in_features, out_features)``.
    """

    def __init__(self, message: str, units: int = 0, shape: tuple[int, int] = (0, 0)):
        super().__init__(message)
        self.units, self.shape = units, tuple(shape)


def user_stacklevel() -> int:
    """The ``stacklevel`` of the first caller outside :mod:`ncps_mlx.hybrid`, for a warning
    raised by the function that calls this (so it points at the user's line)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def wiring_mask(wiring: Wiring, in_features: int, out_features: int) -> np.ndarray:
    """The ``(out_features, in_features)`` 0/1 mask a wiring gives a projection.

    * A built wiring with ``input_dim == in_features`` and ``units == out_features``: its
      sensory synapses (input ``i`` -> neuron ``o``).
    * ``units == in_features == out_features``: its internal synapses (``i -> o``).
    * Any other shape: the internal synapses resampled to the shape, ``mask[o, i] =
      |A[i * N // in_features, o * N // out_features]|`` (``N = units``), so block and
      fan-in structure (e.g. per-head blocks, NCP layers) carries over to wider projections.
      If ``units`` is neither ``in_features`` nor ``out_features`` (a wiring of another width),
      this warns with :class:`WiringResampledWarning`.

    Only the synapse list is read; the mask is the one dense array (it has the weight's shape).
    """
    check_int(in_features, "in_features", minimum=1)
    check_int(out_features, "out_features", minimum=1)
    sensory = wiring.is_built() and (wiring.input_dim, wiring.units) == (in_features, out_features)
    if sensory or wiring.units == in_features == out_features:
        src, dst, _ = wiring.sensory_synapses() if sensory else wiring.synapses()
        mask = np.zeros((out_features, in_features), np.float32)
        mask[dst, src] = 1.0
        return mask
    src, dst, _ = wiring.synapses()
    n = wiring.units
    # The neuron each input (row) and each output (column) stands for, and the distinct ones.
    inputs = np.arange(in_features) * n // in_features
    outputs = np.arange(out_features) * n // out_features
    sources, source_of_input = np.unique(inputs, return_inverse=True)
    targets, target_of_output = np.unique(outputs, return_inverse=True)
    # The adjacency restricted to those neurons (at most the mask's size, never N x N) ...
    source_slot, target_slot = np.full(n, -1), np.full(n, -1)
    source_slot[sources], target_slot[targets] = np.arange(sources.size), np.arange(targets.size)
    kept = (source_slot[src] >= 0) & (target_slot[dst] >= 0)
    compact = np.zeros((targets.size, sources.size), np.float32)
    compact[target_slot[dst[kept]], source_slot[src[kept]]] = 1.0
    # ... spread over the projection: mask[o, i] = |A[source of i, target of o]|.
    mask = compact[target_of_output][:, source_of_input]
    if not mask.any():
        raise ValueError(
            "the wiring has no synapses to map onto the projection (NCP-style wirings draw "
            "theirs in build(input_dim): build it first)"
        )
    if n not in (in_features, out_features):
        warnings.warn(
            WiringResampledWarning(
                f"wiring resampled from {n} to {in_features} -> {out_features} units: its "
                f"synapse pattern is stretched over the projection",
                n,
                (in_features, out_features),
            ),
            stacklevel=user_stacklevel(),
        )
    return mask


class WiredLinear(nn.Module):
    r"""A linear layer :math:`y = x (W \odot M)^T + b` with a constant wiring mask :math:`M`.

    With ``wiring=None`` the mask is all ones (a standard :class:`mlx.nn.Linear`, and no mask is
    stored). Masked weights are zero from the start, receive zero gradient and stay zero.
    :func:`mlx.nn.quantize` turns it into a :class:`QuantizedWiredLinear`.

    Args:
        in_features (int): Input size.
        out_features (int): Output size.
        wiring (Wiring, optional): Synapse structure, mapped to the weight's shape by
            :func:`wiring_mask`.
        bias (bool): Whether to add a bias.
    """

    def __init__(
        self, in_features: int, out_features: int, wiring: Wiring | None = None, bias=True
    ):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.out_features = check_int(out_features, "out_features", minimum=1)
        scale = math.sqrt(1.0 / self.in_features)
        self._mask = (
            None if wiring is None else mx.array(wiring_mask(wiring, in_features, out_features))
        )
        weight = mx.random.uniform(-scale, scale, (self.out_features, self.in_features))
        self.weight = weight if self._mask is None else weight * self._mask
        if bias:
            self.bias = mx.random.uniform(-scale, scale, (self.out_features,))

    @property
    def density(self) -> float:
        """Fraction of weights the wiring keeps (1.0 without a wiring)."""
        return 1.0 if self._mask is None else float(self._mask.mean().item())

    def effective_weight(self) -> mx.array:
        return self.weight if self._mask is None else self.weight * self._mask

    def __call__(self, x: mx.array) -> mx.array:
        if "bias" in self:
            return mx.addmm(self.bias, x, self.effective_weight().T)
        return x @ self.effective_weight().T

    def to_quantized(
        self, group_size: int | None = None, bits: int | None = None, mode="affine", **kwargs
    ):
        """The quantized layer ``nn.quantize`` asks for (the mask goes with it)."""
        return QuantizedWiredLinear.from_wired_linear(self, group_size, bits, mode)

    def _extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={'bias' in self}, density={self.density:.3f}"
        )


class QuantizedWiredLinear(nn.QuantizedLinear):
    """A quantized :class:`WiredLinear`: the masked weight, quantized; the mask is kept as a
    boolean ``_mask`` (1 byte a weight), so ``dequantized_weight()`` is exactly zero where the
    wiring has no synapse. The quantized matmul sees those weights as zero up to float rounding
    (affine quantization stores a group's zero to within about 1e-7 of its scale)."""

    @classmethod
    def from_wired_linear(cls, layer: WiredLinear, group_size=None, bits=None, mode="affine"):
        dense = nn.Linear(layer.in_features, layer.out_features, bias="bias" in layer)
        dense.weight = layer.effective_weight()
        if "bias" in layer:
            dense.bias = layer.bias
        quantized = cls.from_linear(dense, group_size, bits, mode)
        quantized._mask = None if layer._mask is None else layer._mask.astype(mx.bool_)
        return quantized

    def dequantized_weight(self) -> mx.array:
        weight = dense_weight(self)
        return weight if self._mask is None else weight * self._mask
