"""LTC forward+backward time and peak memory vs size at fixed fan-in: sparse vs dense vs ncps.

    python benchmarks/sparse_scaling.py            # N = 32 ... 16,384, fan-in 16
    python benchmarks/sparse_scaling.py --quick    # N = 64, 256, 1,024

Every case runs in its own subprocess (so peak memory is that case's: the process's maximum
resident set size) on a ``Random`` wiring with ``sparsity_level = 1 - fan_in / N`` (about
``fan_in`` synapses per neuron): ncps_mlx's fan-in ("sparse") layout, its dense layout, and
ncps 1.0.1's PyTorch LTC (dense, the reference) with the same wiring. Dense cases (ours and
ncps's) run up to ``DENSE_MAX_UNITS`` neurons: their cost grows as N^2 (at 1,024 neurons a
pass already takes about 25 s here), so larger ones would take many minutes each. The last
line names the crossover: the smallest N from which the sparse layout is faster than dense.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

BATCH, STEPS, FEATURES, OUTPUTS = 4, 16, 16, 8
DENSE_MAX_UNITS = 2048


def run_case(library: str, units: int, fan_in: int) -> dict:
    """One forward+backward pass; returns seconds (best of 2 after a warm-up) and peak RSS."""
    import numpy as np

    sparsity = 1.0 - fan_in / units
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    if library == "ncps":
        import ncps.torch
        import ncps.wirings
        import torch

        torch.set_num_threads(2)
        model = ncps.torch.LTC(FEATURES, ncps.wirings.Random(units, OUTPUTS, sparsity, 1))
        inputs = torch.tensor(x)

        def step():
            model.zero_grad()
            model(inputs)[0].square().mean().backward()

    else:
        import mlx.core as mx
        import mlx.nn as nn

        from ncps_mlx import LTC
        from ncps_mlx.wirings import Random

        model = LTC(FEATURES, Random(units, OUTPUTS, sparsity, 1), sparse=library == "sparse")
        inputs = mx.array(x)
        value_and_grad = nn.value_and_grad(model, lambda m, x: m(x)[0].square().mean())

        def step():
            mx.eval(value_and_grad(model, inputs))

    step()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": min(times), "peak_mb": peak}


def measure(library: str, units: int, fan_in: int) -> dict | None:
    """Run :func:`run_case` in a fresh process; None if it failed (e.g. ncps not installed)."""
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); import sparse_scaling as s; "
        f"print(json.dumps(s.run_case({library!r}, {units}, {fan_in})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 64, 256, 1,024 only")
    parser.add_argument("--fan-in", type=int, default=16)
    args = parser.parse_args()
    sizes = [64, 256, 1024] if args.quick else [32, 64, 128, 256, 1024, 4096, 16384]
    print(f"B={BATCH}, T={STEPS}, F={FEATURES}, fan-in {args.fan_in}; forward+backward")
    print("| N | sparse s | sparse MB | dense s | dense MB | ncps s | ncps MB | dense/sparse |")
    print("|---|---|---|---|---|---|---|---|")
    crossover = None
    for units in sizes:
        dense_fits = units <= DENSE_MAX_UNITS
        results = {
            library: measure(library, units, args.fan_in)
            if library == "sparse" or dense_fits
            else None
            for library in ("sparse", "dense", "ncps")
        }
        cells = [str(units)]
        for library in ("sparse", "dense", "ncps"):
            r = results[library]
            cells += ["-", "-"] if r is None else [f"{r['seconds']:.3f}", f"{r['peak_mb']:.0f}"]
        sparse, dense = results["sparse"], results["dense"]
        ratio = dense["seconds"] / sparse["seconds"] if sparse and dense else None
        cells.append("-" if ratio is None else f"{ratio:.1f}x")
        if ratio is not None and ratio > 1 and crossover is None:
            crossover = units
        print("| " + " | ".join(cells) + " |")
    print(f"crossover: sparse faster than dense from N = {crossover} (fan-in {args.fan_in})")


if __name__ == "__main__":
    main()
