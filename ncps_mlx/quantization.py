"""Quantised inference and dtype casting for any ncps-mlx model (liquid, hybrid, seq2seq).

* :func:`quantize` replaces, in place, every quantizable layer (:class:`mlx.nn.Linear`,
  :class:`~ncps_mlx.hybrid.WiredLinear` with its mask, :class:`mlx.nn.Embedding`, and any layer
  with a ``to_quantized`` method) whose input dimension is a multiple of ``group_size`` by its
  quantized form, and returns a :class:`QuantizationReport`. Everything else stays in floating
  point: LTC's elementwise synapse parameters, norms, convolution kernels, small vectors.
* :func:`astype` casts a model's floating parameters and constants (wiring masks, fan-in
  tables) to ``float32``, ``float16`` or ``bfloat16``; liquid sequence modules then compute
  in that dtype and return outputs in it.
* :func:`weight_bytes` counts the bytes of a model's parameters (quantized weights, scales and
  biases included), to show the memory a model needs.

The two compose: ``quantize(model, bits=4); astype(model, mx.float16)`` stores 4-bit weights
with float16 scales and computes in float16.

Save quantized weights as ``.safetensors`` rather than ``.npz`` to run them on CUDA: MLX 0.32
loads an ``(N, 1)`` array (the scales of a layer whose input is one group wide) back from
``.npz`` with strides ``(1, N)``, and on an H200 a model reloaded from ``.npz`` failed in CUDA's
``quantized_matmul`` ("No implementation for problem shape"); ``.safetensors`` worked there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlx.nn as nn
from mlx.utils import tree_flatten

from ._dtypes import FLOAT_DTYPES, astype

__all__ = ["QuantizationReport", "quantize", "astype", "weight_bytes", "FLOAT_DTYPES"]

#: Per mode of :func:`mlx.core.quantize`: the allowed bits, the allowed group sizes, and the
#: defaults used here (8-bit affine, where MLX defaults to 4: liquid cells are small and 8 bits
#: keep them within 1% of float32).
_MODES = {
    "affine": ((1, 2, 3, 4, 5, 6, 8), (32, 64, 128), 8, 64),
    "mxfp4": ((4,), (32,), 4, 32),
    "mxfp8": ((8,), (32,), 8, 32),
    "nvfp4": ((4,), (16,), 4, 16),
}


@dataclass(frozen=True)
class QuantizationReport:
    """What :func:`quantize` did to a model.

    Attributes:
        bits: Bits per quantized weight.
        group_size: Weights sharing one scale (and, in affine mode, one bias).
        mode: Quantization mode (``"affine"``, ``"mxfp4"``, ``"mxfp8"``, ``"nvfp4"``).
        quantized: Paths of the layers quantized by this call (``"rnn_cell.ff1"``).
        skipped: Path -> reason for each quantizable layer left as it was (an input dimension
            that is not a multiple of ``group_size``, or a layer already quantized).
        bytes_before: :func:`weight_bytes` of the model before the call.
        bytes_after: :func:`weight_bytes` of the model after the call.
    """

    bits: int
    group_size: int
    mode: str
    quantized: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    bytes_before: int = 0
    bytes_after: int = 0

    @property
    def ratio(self) -> float:
        """``bytes_after / bytes_before`` (1.0 for a model without parameters)."""
        return self.bytes_after / self.bytes_before if self.bytes_before else 1.0

    def __str__(self) -> str:
        lines = [
            f"{self.mode} {self.bits}-bit, group size {self.group_size}: "
            f"{len(self.quantized)} layers quantized, {len(self.skipped)} skipped",
            f"weights: {self.bytes_before:,} -> {self.bytes_after:,} bytes ({self.ratio:.3f}x)",
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped.items()]
        return "\n".join(lines)


def quantize(
    model: nn.Module, bits: int | None = None, group_size: int | None = None, mode="affine"
) -> QuantizationReport:
    """Quantize a model's linear and embedding layers in place.

    Walks the module tree (so it works for any model built from MLX modules) and replaces
    each leaf layer that has a ``to_quantized`` method (``nn.Linear``, ``nn.Embedding``,
    :class:`~ncps_mlx.hybrid.WiredLinear`, which becomes a
    :class:`~ncps_mlx.hybrid.QuantizedWiredLinear` that keeps its wiring mask) and whose
    weight's last (input) dimension is a multiple of ``group_size``. Cells that fuse their
    layers' weights (CfC heads, the LSTM's recurrent map) dequantize them once per call.

    Quantizing again is idempotent: quantized layers are left as they are (reported as
    skipped), and only float layers are quantized, with the new arguments.

    Args:
        model (nn.Module): The model, changed in place.
        bits (int, optional): Bits per weight; affine mode: 1, 2, 3, 4, 5, 6 or 8 (default
            8); the floating-point modes have one value each (4 for ``mxfp4``/``nvfp4``, 8
            for ``mxfp8``, the default).
        group_size (int, optional): Weights per scale; affine mode: 32, 64 (default) or
            128; ``mxfp4``/``mxfp8``: 32; ``nvfp4``: 16.
        mode (str): ``"affine"`` (default), ``"mxfp4"``, ``"mxfp8"`` or ``"nvfp4"`` (see
            :func:`mlx.core.quantize`).

    Returns:
        QuantizationReport: The quantized and skipped layers and the weight bytes before and
        after (``print`` it for a summary).

    Raises:
        ValueError: If ``mode``, ``bits`` or ``group_size`` is not supported (the message
            names the argument and lists the allowed values).
        TypeError: If ``model`` is not an ``mlx.nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an mlx.nn.Module, got {type(model).__name__}")
    bits, group_size = _check_quantization(bits, group_size, mode)
    quantized, skipped = [], {}

    def accept(path: str, module: nn.Module) -> bool:
        if "scales" in module:
            skipped[path] = (
                f"already quantized ({module.bits} bits, group size {module.group_size})"
            )
        elif hasattr(module, "to_quantized"):
            in_features = module.weight.shape[-1]
            if in_features % group_size == 0:
                quantized.append(path)
                return True
            skipped[path] = f"input dimension {in_features} is not a multiple of {group_size}"
        return False

    bytes_before = weight_bytes(model)
    nn.quantize(model, group_size, bits, mode=mode, class_predicate=accept)
    return QuantizationReport(
        bits, group_size, mode, tuple(quantized), skipped, bytes_before, weight_bytes(model)
    )


def _check_quantization(bits, group_size, mode) -> tuple[int, int]:
    """Validate the arguments of :func:`quantize`; returns ``(bits, group_size)`` with the
    mode's defaults filled in."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
    allowed_bits, allowed_groups, default_bits, default_group = _MODES[mode]
    bits = default_bits if bits is None else bits
    group_size = default_group if group_size is None else group_size
    for name, value, allowed in (
        ("bits", bits, allowed_bits),
        ("group_size", group_size, allowed_groups),
    ):
        if isinstance(value, bool) or value not in allowed:
            raise ValueError(
                f"{name} must be one of {list(allowed)} in {mode!r} mode, got {value!r}"
            )
    return int(bits), int(group_size)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of a model's parameters: float weights, quantized weights with their scales and
    biases (frozen ones included). Constants such as wiring masks are not counted."""
    return sum(array.nbytes for _, array in tree_flatten(model.parameters()))
