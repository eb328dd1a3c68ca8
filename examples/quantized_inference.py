"""Weight memory, error and speed of quantized and half-precision models.

Builds a dense CfC and a wiring-masked hybrid stack (Mamba, attention, feed-forward) with random
weights and runs each in six variants: float32, float16, bfloat16 (``astype``), 8-bit and 4-bit
affine quantization (``quantize``, groups of 64) and 4-bit weights with float16 compute. For
each variant it prints the weight memory (``weight_bytes``) and its ratio to float32, the
dtype of the outputs, their relative error ``||y - y_32|| / ||y_32||`` against float32, and
the median time of a forward pass.

Commands:

    python examples/quantized_inference.py            # width 128, 64 steps (~30 s on 2 cores)
    python examples/quantized_inference.py --long     # width 256, 128 steps (a few minutes)

On a CPU, quantized and float16 matmuls are not faster than float32 ones, and quantized
weights with float16 inputs are much slower (MLX's CPU kernels for them are not optimised); the
memory shrinks regardless. MLX optimises its quantized kernels for Apple GPUs. Recurrent models
feed each step's error into the next, so check the error on your own model before choosing 4
bits.
"""

from __future__ import annotations

import argparse
import statistics
import time

import mlx.core as mx

from ncps_mlx import CfC
from ncps_mlx.hybrid import HybridBuilder
from ncps_mlx.quantization import astype, quantize, weight_bytes
from ncps_mlx.wirings import AutoNCP

SETTINGS = {
    "fast": {"width": 128, "batch": 8, "length": 64, "repeats": 5},
    "long": {"width": 256, "batch": 4, "length": 128, "repeats": 2},
}
#: Variant -> (quantization bits or None, compute dtype).
VARIANTS = {
    "float32": (None, mx.float32),
    "float16": (None, mx.float16),
    "bfloat16": (None, mx.bfloat16),
    "8-bit": (8, mx.float32),
    "4-bit": (4, mx.float32),
    "4-bit + float16": (4, mx.float16),
}


def build_cfc(width: int):
    mx.random.seed(0)
    return CfC(width, width, proj_size=width, backbone_units=2 * width, backbone_layers=2)


def build_hybrid(width: int):
    mx.random.seed(0)
    wiring = AutoNCP(width, width // 4, seed=1)
    wiring.build(width)
    return HybridBuilder.build(
        ["mamba", "attention", "ffn"], embed_size=width, hidden_size=width, wiring=wiring
    )


def forward(model, x):
    """The model's output sequence, evaluated (its state is left aside)."""
    y, _ = model(x)
    mx.eval(y)
    return y


def median_seconds(model, x, repeats: int) -> float:
    forward(model, x)  # warm-up: compiles the liquid step function
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(model, x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name: str, build, settings: dict) -> None:
    width = settings["width"]
    x = mx.random.normal((settings["batch"], settings["length"], width), key=mx.random.key(1))
    reference_model = build(width)
    reference = forward(reference_model, x)
    float_bytes = weight_bytes(reference_model)
    print(f"\n{name}: {float_bytes / 2**20:.2f} MB of float32 weights, input {tuple(x.shape)}")
    print(f"| {'variant':<16}| weight MB | ratio | output   | rel. error | ms/forward |")
    print(f"|{'-' * 17}|-----------|-------|----------|------------|------------|")
    for variant, (bits, dtype) in VARIANTS.items():
        model = build(width)
        if bits is not None:
            quantize(model, bits=bits)
        astype(model, dtype)
        y = forward(model, x.astype(dtype))
        error = mx.linalg.norm(y.astype(mx.float32) - reference) / mx.linalg.norm(reference)
        seconds = median_seconds(model, x.astype(dtype), settings["repeats"])
        size = weight_bytes(model)
        print(
            f"| {variant:<16}| {size / 2**20:9.3f} | {size / float_bytes:.3f} "
            f"| {str(y.dtype).split('.')[-1]:<8} | {error.item():10.1e} | {1e3 * seconds:10.1f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="wider models, longer sequences")
    parser.add_argument("--length", type=int, help="override the sequence length")
    parser.add_argument("--repeats", type=int, help="override the timed repeats per variant")
    args = parser.parse_args()
    settings = dict(SETTINGS["long" if args.long else "fast"])
    for key in ("length", "repeats"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    compare("Dense CfC (two backbone layers)", build_cfc, settings)
    compare("Hybrid stack mamba, attention, ffn (AutoNCP-masked)", build_hybrid, settings)


if __name__ == "__main__":
    main()
