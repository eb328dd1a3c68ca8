"""Wiring construction speed and memory: ncps_mlx vs ncps 1.0.1, measured in one run.

    python benchmarks/wiring_build.py            # full sizes (Random 100k neurons, NCP 50k)
    python benchmarks/wiring_build.py --quick    # small sizes, a few seconds

For each workload it prints build time, synapses per second and peak traced memory (numpy
allocations are traced by tracemalloc) for ncps_mlx and, where ncps can build it in reasonable
time and memory, for ncps itself, with the time ratio. ncps is optional (extra ``parity``).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import ncps_mlx.wirings as ours

try:
    import ncps.wirings as reference
except ImportError:  # the comparison columns stay empty
    reference = None


def measure(module, name, args, kwargs, input_dim):
    """Build ``module.name(*args, **kwargs)`` and ``build(input_dim)``: (seconds, synapses, MB)."""
    tracemalloc.start()
    start = time.perf_counter()
    wiring = getattr(module, name)(*args, **kwargs)
    wiring.build(input_dim)
    count = int(wiring.synapse_count) + int(wiring.sensory_synapse_count)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, count, peak


def workloads(quick: bool):
    """(label, class, args, kwargs, input_dim, run ncps too?); ``quick`` divides sizes by 10."""
    n = 1 if quick else 10
    large_with_ncps = quick  # at full size ncps needs minutes (NCP) or ~100 GB (Random)
    ncp = (3000 * n, 1500 * n, 500 * n, 16, 8, 3000 * n, 8)
    return [
        (f"FullyConnected {n * 100}", "FullyConnected", (n * 100,), {}, 32, True),
        (
            f"Random {n * 300}, sparsity 0.9",
            "Random",
            (n * 300,),
            {"sparsity_level": 0.9},
            64,
            True,
        ),
        (f"AutoNCP {n * 200}, sparsity 0.5", "AutoNCP", (n * 200, n * 10), {}, 64, True),
        (f"NCP {sum(ncp[:3])}, fan-out 16/8/8", "NCP", ncp, {}, 64, large_with_ncps),
        (
            f"AutoNCP {n * 5000}, sp. 0.999",
            "AutoNCP",
            (n * 5000, n * 50),
            {"sparsity_level": 0.999},
            64,
            large_with_ncps,
        ),
        (
            f"Random {n * 10000}, sp. 0.999",
            "Random",
            (n * 10000,),
            {"sparsity_level": 0.999},
            32,
            False,
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes divided by 10")
    args = parser.parse_args()
    columns = [
        "workload",
        "synapses",
        "ncps_mlx s",
        "syn/s",
        "peak MB",
        "ncps s",
        "ncps MB",
        "speed-up",
    ]
    print(_row(columns))
    print(_row(["---"] * len(columns)))
    for label, name, wargs, kwargs, input_dim, compare in workloads(args.quick):
        seconds, count, peak = measure(ours, name, wargs, kwargs, input_dim)
        cells = [label, count, f"{seconds:.3f}", f"{count / seconds:.2e}", f"{peak:.0f}"]
        if compare and reference is not None:
            ref_seconds, _, ref_peak = measure(reference, name, wargs, kwargs, input_dim)
            cells += [f"{ref_seconds:.3f}", f"{ref_peak:.0f}", f"{ref_seconds / seconds:.1f}x"]
        else:
            cells += ["-", "-", "-"]
        print(_row(cells))


def _row(cells) -> str:
    return (
        "| "
        + " | ".join(f"{cell:>10}" if i else f"{cell:30}" for i, cell in enumerate(cells))
        + " |"
    )


if __name__ == "__main__":
    main()
