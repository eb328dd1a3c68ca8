"""LTC forward+backward at fixed fan-in, N = 1k/4k/16k: sparse vs dense layout vs ncps 1.0.1.

    python -m ncps_mlx.apps.bench.sparse [--quick] [--repeats N] [--json PATH]

Every size uses a ``Random(N, 8, sparsity_level=1 - fan_in / N, seed=1)`` wiring (about
``fan_in`` = 16 synapses per neuron) and inputs ``x`` ``(B, T, F)`` = (4, 16, 16); a pass is
the forward, the loss ``mean(y ** 2)`` and its gradients. ncps_mlx runs its fan-in ("sparse")
layout and its dense layout; ncps's PyTorch LTC (dense, the reference) gets the same wiring.
Dense passes cost O(N²) per step, so they (ours and ncps's) run only up to ``DENSE_MAX_UNITS``;
the skipped cells give the time the N² growth from the largest measured size predicts.
"""

from __future__ import annotations

import os

import numpy as np

from .report import family_main, family_record, row
from .timing import best_of, installed, mlx_peak_mb, ops_per_step, torch_device, torch_synchronized

BATCH, STEPS, FEATURES, OUTPUTS, FAN_IN = 4, 16, 16, 8, 16
SIZES, QUICK_SIZES = (1024, 4096, 16384), (64, 256)
#: Largest N whose dense passes of ours run: 1,024 takes ~15 s here, 4,096 would take ~4 min.
DENSE_MAX_UNITS, QUICK_DENSE_MAX_UNITS = 1024, 256
#: Largest N whose ncps passes run: 4,096 takes about a minute here (measured once, after one
#: warm-up), so the sparse layout's speed-up at 4k neurons is a measurement, not a prediction.
NCPS_MAX_UNITS, QUICK_NCPS_MAX_UNITS = 4096, 256


def ours_pass(units: int, sparse: bool):
    """``(pass, graph_of)`` for ncps_mlx's LTC in the sparse or dense layout."""
    import mlx.core as mx
    import mlx.nn as nn

    from ncps_mlx.sequence import LTC
    from ncps_mlx.wirings import Random

    wiring = Random(units, OUTPUTS, sparsity_level=1.0 - FAN_IN / units, random_seed=1)
    model = LTC(FEATURES, wiring, sparse=sparse)
    mx.eval(model.parameters())
    x = mx.array(_inputs())
    value_and_grad = nn.value_and_grad(model, lambda m, x: m(x)[0].square().mean())
    return (
        lambda: mx.eval(value_and_grad(model, x)),
        lambda steps: model(mx.zeros((BATCH, steps, FEATURES))),
    )


def ncps_pass(units: int):
    """One forward+backward pass of ncps's PyTorch LTC; None when ncps is not installed."""
    try:
        import ncps.torch
        import ncps.wirings
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    wiring = ncps.wirings.Random(units, OUTPUTS, 1.0 - FAN_IN / units, 1)
    model = ncps.torch.LTC(FEATURES, wiring).to(torch_device())
    x = torch.tensor(_inputs()).to(torch_device())

    def run():
        model.zero_grad()
        model(x)[0].square().mean().backward()

    return torch_synchronized(torch, run)


def _inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)


def _skip(kind: str, units: int, measured: tuple[int, float] | None) -> str:
    """The note of a skipped dense cell, with the time N² growth predicts from ``measured``."""
    if measured is None:
        return f"skipped: {kind} O(N²) pass at N={units:,}"
    size, seconds = measured
    return f"skipped: {kind} O(N²), ~{seconds * (units / size) ** 2:.0f} s/pass predicted"


#: Bytes ncps's dense LTC keeps per ``(B, N, N)`` activation element for its backward pass,
#: per step and unfold (measured: N=4,096 peaked near 65 GB on an 80 GB GPU).
NCPS_BYTES_PER_ELEMENT = 4 * 2.5


def _ncps_memory_shortfall(units: int) -> str | None:
    """A skip note when ncps's pass at ``units`` neurons needs more memory than the device
    has (so it would be killed, not timed), else None."""
    needed = NCPS_BYTES_PER_ELEMENT * BATCH * units**2 * STEPS * 6  # 6 ODE unfolds
    available = _reference_memory_bytes()
    if needed <= 0.85 * available:
        return None
    gigabytes = needed / 2**30, available / 2**30
    return "skipped: ncps needs ~{:.0f} GB, the device has {:.0f} GB".format(*gigabytes)


def _reference_memory_bytes() -> float:
    """Memory of the PyTorch references' device: the GPU's, or the machine's RAM."""
    import torch

    if torch_device() == "cuda":
        return float(torch.cuda.mem_get_info()[1])
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _reference_timing(run_pass, repeats, budget_s):
    """``(timing, None)``, or ``(None, note)`` when ncps's pass fails (e.g. out of GPU memory:
    its dense ``(B, N, N)`` activations of every step and unfold are kept for the backward)."""
    try:
        return best_of(run_pass, repeats, budget_s), None
    except (RuntimeError, MemoryError) as error:  # torch.OutOfMemoryError is a RuntimeError
        message = str(error).splitlines()[0] if str(error) else ""
        return None, f"failed: {type(error).__name__}: {message[:60]}"
    finally:
        _release_torch_memory()  # give the GPU memory PyTorch cached back, for MLX's runs


def _release_mlx_memory() -> None:
    import gc

    import mlx.core as mx

    gc.collect()
    mx.clear_cache()


def _release_torch_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def size_rows(units, fits, reference, measured, repeats, budget_s) -> list[dict]:
    """The sparse and dense rows of one size. ``fits``: whether the dense layout and ncps run
    at this size; ``measured`` holds the last dense and ncps times (for the predictions)."""
    (dense_fits, ncps_fits), timings, notes, ops, memory = fits, {}, {}, {}, {}
    for layout in ("sparse", "dense"):
        if layout == "dense" and not dense_fits:
            notes[layout] = _skip("dense", units, measured.get("dense"))
            continue
        run_pass, graph_of = ours_pass(units, sparse=layout == "sparse")
        ops[layout] = ops_per_step(graph_of)
        mlx_peak_mb(reset=True)
        timings[layout] = best_of(run_pass, repeats, budget_s)
        memory[layout] = mlx_peak_mb(reset=True)
        del run_pass, graph_of
        _release_mlx_memory()  # on a GPU, PyTorch's runs need the memory MLX cached
    ref, ref_note = None, "not installed"
    if reference is None:
        pass
    elif not ncps_fits:
        ref_note = _skip("ncps", units, measured.get("ncps"))
    elif (short := _ncps_memory_shortfall(units)) is not None:
        ref_note = short
    elif (ncps_run := reference(units)) is not None:
        ref, ref_note = _reference_timing(ncps_run, repeats, budget_s)
    for kind, timing in (("dense", timings.get("dense")), ("ncps", ref)):
        if timing is not None:
            measured[kind] = (units, timing.seconds)
    rows = []
    for layout in ("sparse", "dense"):
        label = f"LTC Random N={units:,} (fan-in {FAN_IN}), {layout} layout, fwd+bwd"
        timing = timings.get(layout)
        note = notes.get(layout, "")
        if layout == "sparse" and "dense" in timings:
            note = f"dense/sparse {timings['dense'].seconds / timing.seconds:.3g}"
        r = row(label, timing, ref, ref_note, ops.get(layout), memory.get(layout), note)
        rows.append(r)
    return rows


def run(quick: bool = False, repeats: int = 3) -> dict:
    """Time every size; returns the family's record."""
    sizes, dense_max, ncps_max = (
        (QUICK_SIZES, QUICK_DENSE_MAX_UNITS, QUICK_NCPS_MAX_UNITS)
        if quick
        else (SIZES, DENSE_MAX_UNITS, NCPS_MAX_UNITS)
    )
    reference = ncps_pass if installed("ncps", "torch") else None
    budget_s = 5.0 if quick else 30.0
    rows, measured = [], {}
    for units in sizes:
        fits = (units <= dense_max, units <= ncps_max)
        rows += size_rows(units, fits, reference, measured, repeats, budget_s)
    return family_record(
        "sparse",
        "LTC at fixed fan-in: sparse layout vs dense layout vs ncps (PyTorch, dense)",
        f"B={BATCH}, T={STEPS}, F={FEATURES}, {OUTPUTS} motor neurons, fan-in {FAN_IN}; "
        f"dense passes up to N={dense_max:,}, ncps up to N={ncps_max:,}, torch on "
        f"{torch_device()}; notes give dense/sparse (time ratio)",
        "ncps 1.0.1 PyTorch LTC with the same wiring",
        rows,
    )


def main(argv: list[str] | None = None) -> dict:
    """Command line:
    ``python -m ncps_mlx.apps.bench.sparse [--quick] [--repeats N] [--json PATH]``."""
    return family_main(run, argv)


if __name__ == "__main__":
    main()
