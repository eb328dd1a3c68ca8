"""The fused CfC and LTC kernels against the reference loop, in one run on the default device.

    python benchmarks/fused_kernels.py [--repeats N]

For each workload: forward and train step (MSE loss, gradients, one Adam update) with
``kernel="reference"`` (one compiled step per time step) and ``kernel="fused"`` (one launch
forward, one backward), the same weights and inputs; the ratio is fused / reference (below 1:
the fused kernel is faster), and the largest output difference between the two. Needs a GPU.
"""

import argparse
import os

os.environ.setdefault("MLX_ENABLE_TF32", "0")

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from ncps_mlx import LTC, CfC, kernels  # noqa: E402
from ncps_mlx.apps.bench.cells import mlx_timers  # noqa: E402
from ncps_mlx.apps.bench.timing import best_of, mlx_peak_mb  # noqa: E402
from ncps_mlx.wirings import AutoNCP, FullyConnected, Random  # noqa: E402

#: (label, batch, steps, features, the model given ``features``)
WORKLOADS = [
    ("CfC(16, 64) default", 32, 256, 16, lambda f: CfC(f, 64)),
    ("CfC(16, 64) no_gate", 32, 256, 16, lambda f: CfC(f, 64, mode="no_gate")),
    ("CfC(16, 64) pure", 32, 256, 16, lambda f: CfC(f, 64, mode="pure")),
    ("CfC(16, 64) no backbone", 32, 256, 16, lambda f: CfC(f, 64, backbone_layers=0)),
    ("CfC AutoNCP(64, 8) wired", 32, 256, 16, lambda f: CfC(f, AutoNCP(64, 8))),
    ("CfC(16, 256) B=256 T=1024", 256, 1024, 16, lambda f: CfC(f, 256)),
    ("LTC AutoNCP(64, 8) sparse", 32, 256, 16, lambda f: LTC(f, AutoNCP(64, 8), sparse=True)),
    ("LTC FullyConnected(64) dense", 32, 256, 16, lambda f: LTC(f, FullyConnected(64))),
    (
        "LTC Random N=256 fan-in 16",
        32,
        256,
        16,
        lambda f: LTC(f, Random(256, 8, sparsity_level=1 - 16 / 256, random_seed=1), sparse=True),
    ),
    (
        "LTC Random N=1024 fan-in 16 B=32 T=64",
        32,
        64,
        16,
        lambda f: LTC(f, Random(1024, 8, sparsity_level=1 - 16 / 1024, random_seed=1), sparse=True),
    ),
    (
        "LTC Random N=4096 fan-in 16",
        8,
        64,
        16,
        lambda f: LTC(f, Random(4096, 8, sparsity_level=1 - 16 / 4096, random_seed=1), sparse=True),
    ),
]


def measure(label, batch, steps, features, build, repeats) -> list[str]:
    rng = np.random.default_rng(0)
    mx.random.seed(0)
    model = build(features)
    mx.eval(model.parameters())
    x = mx.array(rng.standard_normal((batch, steps, features)).astype(np.float32))
    target = mx.array(rng.standard_normal((batch, steps, model.output_size)).astype(np.float32))
    outputs = {}
    for kernel in ("reference", "fused"):  # before any training step changes the weights
        model.kernel = kernel
        outputs[kernel] = np.array(model(x)[0])
    times, peaks = {}, {}
    for kernel in ("reference", "fused"):
        model.kernel = kernel
        forward, train = mlx_timers(model, x, target)
        mlx_peak_mb(reset=True)
        times[kernel] = (best_of(forward, repeats).seconds, best_of(train, repeats).seconds)
        peaks[kernel] = mlx_peak_mb(reset=True)
    diff = np.abs(outputs["fused"] - outputs["reference"]).max()
    (ref_f, ref_t), (fus_f, fus_t) = times["reference"], times["fused"]
    return [
        f"| {label} forward | {ref_f * 1e3:.2f} | {fus_f * 1e3:.3f} | {fus_f / ref_f:.3f} "
        f"| {diff:.1e} | |",
        f"| {label} train step | {ref_t * 1e3:.2f} | {fus_t * 1e3:.3f} | {fus_t / ref_t:.3f} "
        f"| | {peaks['reference']:.0f} / {peaks['fused']:.0f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if kernels.gpu_backend() is None:
        raise SystemExit("fused_kernels.py needs a GPU (Metal or CUDA); the default device is CPU")
    print(
        f"device: {mx.default_device()}, backend {kernels.gpu_backend()}, "
        f"MLX {mx.__version__}, MLX_ENABLE_TF32={os.environ['MLX_ENABLE_TF32']}"
    )
    print(
        "| workload | reference ms | fused ms | fused / reference | max abs diff "
        "| peak MiB (ref / fused) |"
    )
    print("|---|---|---|---|---|---|")
    for workload in WORKLOADS:
        for line in measure(*workload, args.repeats):
            print(line, flush=True)


if __name__ == "__main__":
    main()
