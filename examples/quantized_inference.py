"""Weight memory, error and speed of quantized and half-precision models.

Builds a dense CfC and a wiring-masked hybrid stack (Mamba, attention, feed-forward) with random
weights and runs each in six variants: float32, float16, bfloat16 (``astype``), 8-bit and 4-bit
affine quantization (``quantize``, groups of 64) and 4-bit weights with float16 compute. For
each variant it prints the weight memory (``weight_bytes``) and its ratio to float32, the
dtype of the outputs, their relative error ``||y - y_32|| / ||y_32||`` against float32, the
median time of a forward pass and its ratio to float32's; then, on a CPU, why some variants are
slower there.

Commands:

    python examples/quantized_inference.py            # width 128, 64 steps (~40 s on 2 cores)
    python examples/quantized_inference.py --long     # width 256, 128 steps (~80 s)

Speed on a CPU is not what these formats buy: MLX's float16 is a software type on CPUs without
native half arithmetic (x86), converted value by value, so float16 compute is slower than
float32 there and quantized matmuls that read float16 inputs (``4-bit + float16``) are many
times slower; bfloat16 converts with a bit shift, and quantized weights with float32 inputs use
float32 kernels. The memory shrinks on every device, and on Apple GPUs (Metal) MLX's quantized
and half-precision kernels are the fast path. Recurrent models feed each step's error into the
next, so check the error on your own model before choosing 4 bits.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import textwrap
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


def median_seconds(model, x, repeats: int, budget: float = 2.0) -> float:
    """Median time of ``repeats`` forward passes (the caller ran the warm-up); stops early,
    after at least one pass, once the passes took ``budget`` seconds."""
    times = []
    while len(times) < repeats and sum(times) < budget:
        start = time.perf_counter()
        forward(model, x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name: str, build, settings: dict) -> dict:
    """Print the table of ``build``'s model; return ``{variant: time / float32 time}``."""
    width = settings["width"]
    x = mx.random.normal((settings["batch"], settings["length"], width), key=mx.random.key(1))
    reference_model = build(width)
    reference = forward(reference_model, x)
    float_bytes = weight_bytes(reference_model)
    print(f"\n{name}: {float_bytes / 2**20:.2f} MB of float32 weights, input {tuple(x.shape)}")
    columns = "| weight MB | ratio | output   | rel. error | ms/forward | time ratio |"
    print(f"| {'variant':<16}{columns}")
    print(f"|{'-' * 17}|-----------|-------|----------|------------|------------|------------|")
    slowdown, float32_seconds = {}, None
    for variant, (bits, dtype) in VARIANTS.items():
        model = build(width)
        if bits is not None:
            quantize(model, bits=bits)
        astype(model, dtype)
        y = forward(model, x.astype(dtype))  # also the warm-up: compiles the liquid step
        error = mx.linalg.norm(y.astype(mx.float32) - reference) / mx.linalg.norm(reference)
        seconds = median_seconds(model, x.astype(dtype), settings["repeats"])
        float32_seconds = seconds if variant == "float32" else float32_seconds
        slowdown[variant] = seconds / float32_seconds  # float32 is the first variant
        size = weight_bytes(model)
        print(
            f"| {variant:<16}| {size / 2**20:9.3f} | {size / float_bytes:.3f} "
            f"| {str(y.dtype).split('.')[-1]:<8} | {error.item():10.1e} | {1e3 * seconds:10.1f} "
            f"| {slowdown[variant]:9.1f}x |"
        )
    return slowdown


def explain_cpu_speed(slowdowns: dict) -> None:
    """On a CPU, say why variants are slower than float32 there, with the measured ratios
    (``slowdowns``: ``{model name: compare's result}``)."""
    if mx.default_device().type != mx.DeviceType.cpu:
        return

    def ratios(variant):
        return ", ".join(f"{name} {table[variant]:.1f}x" for name, table in slowdowns.items())

    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        cause = (
            "MLX's float16 is a software type on this CPU (no native half arithmetic): every "
            "float16 value is converted to and from float32 in code. That slows float16 "
            f"compute ({ratios('float16')} the float32 time) and dominates quantized matmuls "
            "with float16 inputs, scales and biases (4-bit + float16: "
            f"{ratios('4-bit + float16')}). bfloat16 converts with a bit shift, and quantized "
            "weights with float32 inputs use float32 kernels."
        )
    else:
        cause = (
            "MLX's CPU kernels for half precision and for quantized matmuls with half inputs "
            f"are not as optimised as its float32 ones (float16: {ratios('float16')}, "
            f"4-bit + float16: {ratios('4-bit + float16')} the float32 time)."
        )
    advice = (
        "The memory saving holds on every device; on an Apple GPU (Metal), MLX's quantized "
        "and half-precision kernels are the fast path. For speed on this CPU, keep float32 "
        "compute (quantized weights with float32 inputs keep most of the memory saving)."
    )
    print(f"\nWhy some rows are slower than float32 (MLX on the CPU, {platform.machine()}):")
    for paragraph in (cause, advice):
        print(
            textwrap.fill(
                paragraph, 96, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False
            )
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
    slowdowns = {
        "CfC": compare("Dense CfC (two backbone layers)", build_cfc, settings),
        "hybrid": compare(
            "Hybrid stack mamba, attention, ffn (AutoNCP-masked)", build_hybrid, settings
        ),
    }
    explain_cpu_speed(slowdowns)


if __name__ == "__main__":
    main()
