"""LTC/CfC forward and train-step time: ncps_mlx against ncps 1.0.1 eager, ``torch.compile``
of ncps and the same cells in JAX, with the same weights; and a scale table.

    python -m ncps_mlx.apps.bench.cells [--quick] [--repeats N] [--json PATH]
        [--torch-compile {model,cell,off}] [--jax | --no-jax] [--scale | --no-scale]

Inputs ``x`` are ``(B, T, F)`` = (32, 256, 16) (``--quick``: T = 32), targets ``(B, T, O)``.
Every implementation gets the same weights (ncps's initial weights copied into ours with
:func:`ncps_mlx.io.load_ncps_state_dict`, and ours into JAX's) and the same inputs. A forward
pass of ncps runs under ``torch.no_grad()``; a train step is the MSE loss, its gradients and one
Adam update. The references, each a time and a ratio column:

* ncps 1.0.1's PyTorch module, eager (``os.cpu_count()`` threads, on ``--torch-device``);
* ``torch.compile`` of it: its cell, compiled once and called at every step (``--torch-compile
  cell``, the default without ``--quick``), or the whole module (``model``: dynamo unrolls the
  time loop, so compiling takes minutes per workload at T = 256, tens of minutes for the LTC's
  256 x 6 solver steps on a 2-core CPU); ``off`` is the default under ``--quick``. A
  compilation that fails (no C++ compiler, ...) leaves its first line as the note;
* the same cell maths in JAX, one jitted ``lax.scan``
  (``ncps_mlx.apps.bench.jax_reference``), where jax is installed (``--jax``, the default
  without ``--quick``).

ncps_mlx runs in its default configuration (``kernel="auto"``: the fused kernels on a GPU where
supported, else compiled steps); the notes say which path each workload took, and the settings
the value of ``MLX_ENABLE_TF32``. The scale table (``--scale``, the default without
``--quick``) times ncps_mlx alone on a CfC of 256 units (B = 256, T = 1,024) and a sparse LTC
of 4,096 neurons with fan-in 16 (B = 8, T = 64), with ``kernel="fused"`` and
``kernel="reference"``, and MLX's peak memory of the train step.
"""

from __future__ import annotations

import argparse
import copy
import os

import numpy as np

from . import jax_reference
from .report import family_main, family_record, reference_entry, row, scale_row
from .timing import (
    Timing,
    best_of,
    installed,
    mlx_peak_mb,
    ops_per_step,
    torch_device,
    torch_synchronized,
)

BATCH, FEATURES = 32, 16

#: (label, class name, units: an int (dense CfC) or (wiring class, its arguments)).
WORKLOADS = [
    ("CfC(16, 64) dense", "CfC", 64),
    ("CfC AutoNCP(64, 8)", "CfC", ("AutoNCP", (64, 8))),
    ("LTC AutoNCP(64, 8)", "LTC", ("AutoNCP", (64, 8))),
    ("LTC FullyConnected(64)", "LTC", ("FullyConnected", (64,))),
]

#: ``--torch-compile`` choices: what ``torch.compile`` wraps.
COMPILE_MODES = ("model", "cell", "off")
JAX = "JAX lax.scan"
COMPILED = {"model": "torch.compile(ncps)", "cell": "ncps, torch.compile(cell)"}

#: (label, class name, units (as in :data:`WORKLOADS`), more keywords of the class,
#: (batch, steps), (batch, steps) with ``--quick``).
SCALE_WORKLOADS = [
    ("CfC(16, 256)", "CfC", 256, {}, (256, 1024), (8, 16)),
    (
        "LTC Random(4096, 8), fan-in 16, sparse",
        "LTC",
        ("Random", (4096, 8), {"sparsity_level": 1 - 16 / 4096, "random_seed": 1}),
        {"sparse": True},
        (8, 64),
        (2, 8),
    ),
]
SCALE_KERNELS = ("fused", "reference")


def import_reference():
    """``(torch, ncps.torch, ncps.wirings)``, or None when ncps or torch is not installed."""
    try:
        import ncps.torch
        import ncps.wirings
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch, ncps.torch, ncps.wirings


def build(models, wirings, name: str, units, **keywords):
    """``models.<name>(FEATURES, units)``, with ``units`` made a wiring from ``wirings``
    (``(class name, arguments[, keywords])``)."""
    if isinstance(units, tuple):
        units = getattr(wirings, units[0])(*units[1], **(units[2] if len(units) > 2 else {}))
    return getattr(models, name)(FEATURES, units, **keywords)


def mlx_timers(model, x, target):
    """``(forward, train_step)`` closures for an ncps_mlx model on ``x`` ``(B, T, F)``."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    optimizer = optim.Adam(learning_rate=1e-3)
    value_and_grad = nn.value_and_grad(model, lambda m, x, y: nn.losses.mse_loss(m(x)[0], y))

    def forward():
        mx.eval(model(x)[0])

    def train_step():
        loss, grads = value_and_grad(model, x, target)
        optimizer.update(model, grads)
        mx.eval(loss, model.parameters(), optimizer.state)

    return forward, train_step


def torch_timers(torch, model, x, target):
    """``(forward, train_step)`` closures for an ncps PyTorch model (or its ``torch.compile``)
    on ``x`` ``(B, T, F)``."""
    model, x, target = (a.to(torch_device()) for a in (model, x, target))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def forward():
        with torch.no_grad():
            model(x)

    def train_step():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x)[0], target).backward()
        optimizer.step()

    return torch_synchronized(torch, forward), torch_synchronized(torch, train_step)


def _fused_states(model, kernel: str | None):
    """:func:`ncps_mlx.kernels.fused_states` of ``model`` with ``kernel`` on two steps of
    zeros: the states if the fused kernels ran, None if the reference path would."""
    import mlx.core as mx

    from ncps_mlx import kernels

    saved, model.kernel = model.kernel, kernel
    try:
        prepared = model.rnn_cell.prepare(mx.zeros((2, 2, model.input_size)))
        state = model.make_cache(2)
        state = state[0] if model.use_mixed else state  # (h, c): the cell's is h
        return kernels.fused_states(model, prepared, state, 1.0, None)
    finally:
        model.kernel = saved


def kernel_path(model) -> str:
    """The path ``model`` (a CfC or LTC sequence module) takes on this device, as
    :func:`ncps_mlx.kernels.fused_states` decides it: ``"fused kernel (cuda)"`` or
    ``"reference path (why)"``.

    Raises:
        ValueError: ``kernel="fused"`` where the fused kernels cannot run (the CPU).
    """
    from ncps_mlx import kernels

    backend = kernels.gpu_backend()
    if _fused_states(model, model.kernel) is not None:
        return f"fused kernel ({backend})"
    if (model.kernel or kernels.default_kernel()) == "reference":
        return "reference path (kernel='reference')"
    if backend is None:
        return "reference path (no GPU)"
    try:  # would it run if forced? (auto keeps the loop where the kernel is slower)
        forced = _fused_states(model, "fused")
    except ValueError as error:
        return f"reference path ({str(error).partition(': ')[2] or error})"
    why = "kernel='auto': the loop is faster here" if forced is not None else "failed its check"
    return f"reference path ({why})"


def _graph_of(model):
    """``T -> model's lazy outputs on (B, T, F) zeros`` for :func:`ops_per_step`."""
    import mlx.core as mx

    return lambda steps: model(mx.zeros((BATCH, steps, FEATURES)))


def _times(timers, repeats, budget_s) -> tuple[Timing, Timing]:
    return tuple(best_of(timer, repeats, budget_s) for timer in timers)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def time_torch(options, name, units, model, x, target, repeats, budget_s):
    """ncps eager and compiled on ``model``'s workload: ``(eager (forward, train) times or
    None, a note if None, compiled (forward, train) entries, ncps's outputs or None)``, each
    entry a Timing or a note. ncps's initial weights are copied into ``model`` first."""
    from ncps_mlx.serialization import load_ncps_state_dict

    mode = options["torch_compile"]
    label = COMPILED.get(mode, COMPILED["model"])
    if options["reference"] is None:
        return None, "not installed", [(label, "not installed")] * 2, None
    torch, ref_models, ref_wirings = options["reference"]
    torch.manual_seed(0)
    ref_model = build(ref_models, ref_wirings, name, units)
    load_ncps_state_dict(model, ref_model.state_dict())
    x_t, target_t = torch.tensor(x), torch.tensor(target)
    timers = torch_timers(torch, ref_model, x_t, target_t)  # moves ref_model to its device
    with torch.no_grad():  # before any train step changes the weights
        expected = ref_model(x_t.to(torch_device()))[0].cpu().numpy()
    eager = _times(timers, repeats, budget_s)
    if mode == "off":
        return eager, None, [(label, "off")] * 2, expected
    compiled = copy.deepcopy(ref_model)
    try:
        if mode == "model":
            compiled = torch.compile(compiled)
        else:
            compiled.rnn_cell = torch.compile(compiled.rnn_cell)
        times = _times(torch_timers(torch, compiled, x_t, target_t), repeats, budget_s)
    except Exception as error:  # a compiler missing or failing: a note, not a crash
        return eager, None, [(label, f"torch.compile failed: {_first_line(error)}")] * 2, expected
    return eager, None, [(label, times[0]), (label, times[1])], expected


def time_jax(model, x, target, use_jax, repeats, budget_s):
    """JAX's ``(entries (forward, train), its outputs or None)`` for ``model``'s weights."""
    if not use_jax or not installed("jax"):
        return [(JAX, "off" if not use_jax else "not installed")] * 2, None
    reason = jax_reference.unsupported(model)
    if reason is not None:
        return [(JAX, f"unsupported: {reason}")] * 2, None
    forward, train = jax_reference.jax_timers(model, x, target)
    outputs = np.asarray(forward())  # before any train step changes its weights
    times = _times((forward, train), repeats, budget_s)
    return [(JAX, times[0]), (JAX, times[1])], outputs


def _entries(ours: Timing, found: list) -> list[dict]:
    """:func:`reference_entry` of each ``(name, Timing or note)``."""
    return [
        reference_entry(name, ours, value, None)
        if isinstance(value, Timing)
        else reference_entry(name, ours, None, value)
        for name, value in found
    ]


def _difference(ours: np.ndarray, theirs: np.ndarray | None, name: str) -> list[str]:
    return [] if theirs is None else [f"{name} {np.abs(ours - theirs).max():.1e}"]


def run_workload(label, name, units, x, options, repeats, budget_s) -> list[dict]:
    """The forward and train-step rows of one workload; x is ``(B, T, F)`` numpy."""
    import mlx.core as mx

    from ncps_mlx import sequence, wirings

    model = build(sequence, wirings, name, units)
    rng = np.random.default_rng(1)
    target = rng.standard_normal((*x.shape[:2], model.output_size)).astype(np.float32)
    eager, note, compiled, expected = time_torch(
        options, name, units, model, x, target, repeats, budget_s
    )
    jax_found, jax_outputs = time_jax(model, x, target, options["use_jax"], repeats, budget_s)
    outputs, path = np.array(model(mx.array(x))[0]), kernel_path(model)
    diffs = _difference(outputs, expected, "ncps") + _difference(outputs, jax_outputs, "JAX")
    notes = path + ("; max abs output diff vs " + ", ".join(diffs) if diffs else "")
    mx.eval(model.parameters())
    ops = ops_per_step(_graph_of(model))
    forward, train = mlx_timers(model, mx.array(x), mx.array(target))
    mlx_peak_mb(reset=True)
    ours = [best_of(forward, repeats, budget_s)]
    forward_mb = mlx_peak_mb(reset=True)
    ours.append(best_of(train, repeats, budget_s))
    columns = [(f"{label} forward", ops, forward_mb, notes)]
    columns.append((f"{label} train step (Adam)", None, mlx_peak_mb(), ""))
    eager = eager or (None, None)
    return [
        row(
            text,
            ours[i],
            eager[i],
            note,
            count,
            mb,
            remark,
            _entries(ours[i], [compiled[i], jax_found[i]]),
        )
        for i, (text, count, mb, remark) in enumerate(columns)
    ]


def run_scale(quick: bool, repeats: int) -> dict:
    """The scale table: ncps_mlx alone on :data:`SCALE_WORKLOADS`, per kernel choice."""
    import mlx.core as mx

    from ncps_mlx import sequence, wirings

    rows = []
    for label, name, units, keywords, full, small in SCALE_WORKLOADS:
        batch, steps = small if quick else full
        rng = np.random.default_rng(0)
        x = mx.array(rng.standard_normal((batch, steps, FEATURES)).astype(np.float32))
        for kernel in SCALE_KERNELS:
            mx.random.seed(0)
            model = build(sequence, wirings, name, units, kernel=kernel, **keywords)
            target = rng.standard_normal((batch, steps, model.output_size)).astype(np.float32)
            workload = f"{label} B={batch} T={steps}"
            try:
                path = kernel_path(model)
            except ValueError as error:  # kernel="fused" where it cannot run (the CPU)
                reason = "needs a GPU" if "not a GPU" in str(error) else _first_line(error)
                rows.append(scale_row(workload, kernel, None, None, None, f"{kernel}: {reason}"))
                continue
            forward, train = mlx_timers(model, x, mx.array(target))
            budget_s = 5.0 if quick else 60.0
            forward_time = best_of(forward, repeats, budget_s)
            mlx_peak_mb(reset=True)
            train_time = best_of(train, repeats, budget_s)
            rows.append(scale_row(workload, kernel, forward_time, train_time, mlx_peak_mb(), path))
            del model, forward, train
            mx.clear_cache()
    return {"settings": f"ncps_mlx alone, F={FEATURES}, float32", "rows": rows}


def run(
    quick: bool = False,
    repeats: int = 3,
    torch_compile: str | None = None,
    use_jax: bool | None = None,
    scale: bool | None = None,
) -> dict:
    """Time every workload of :data:`WORKLOADS` (and the scale table); the family's record.

    Args:
        quick (bool): T = 32 instead of 256, shorter time budgets, small scale workloads.
        repeats (int): Timed runs per measurement (best of).
        torch_compile (str | None): One of :data:`COMPILE_MODES`; None: ``"off"`` if
            ``quick``, else ``"cell"``.
        use_jax (bool | None): Time the JAX reference (where jax is installed); None: unless
            ``quick``.
        scale (bool | None): Add the scale table; None: unless ``quick``.
    """
    from ncps_mlx import kernels

    mode = torch_compile or ("off" if quick else "cell")
    use_jax = not quick if use_jax is None else use_jax
    scale = not quick if scale is None else scale
    if mode not in COMPILE_MODES:
        raise ValueError(f"torch_compile must be one of {COMPILE_MODES}, got {mode!r}")
    steps = 32 if quick else 256
    x = np.random.default_rng(0).standard_normal((BATCH, steps, FEATURES)).astype(np.float32)
    options = {"reference": import_reference(), "torch_compile": mode, "use_jax": use_jax}
    budget_s = 5.0 if quick else 60.0
    rows = []
    for label, name, units in WORKLOADS:
        rows += run_workload(label, name, units, x, options, repeats, budget_s)
    environment = {
        "MLX_ENABLE_TF32": os.environ.get("MLX_ENABLE_TF32", "1"),
        "gpu_backend": kernels.gpu_backend(),
        "default_kernel": kernels.default_kernel(),
        "torch_compile": mode,
        "jax": jax_reference.describe() if use_jax and installed("jax") else None,
    }
    return family_record(
        "cells",
        "LTC/CfC forward and train step vs ncps (eager, torch.compile) and JAX, same weights",
        f"B={BATCH}, T={steps}, F={FEATURES}, 64 units; torch on {torch_device()}, "
        f"threads {os.cpu_count()}; MLX_ENABLE_TF32={environment['MLX_ENABLE_TF32']}; "
        f"ncps_mlx kernel={environment['default_kernel']!r}; "
        f"{environment['jax'] or 'JAX not run'}; "
        "ops/step: MLX primitives one step adds to the forward graph (compiled step)",
        "ncps 1.0.1 (PyTorch), eager",
        rows,
        more_references=[COMPILED.get(mode, COMPILED["model"]), JAX],
        scale=run_scale(quick, repeats) if scale else None,
        environment=environment,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The family's own options (see the module's docstring)."""
    parser.add_argument(
        "--torch-compile",
        choices=COMPILE_MODES,
        help="what torch.compile wraps: ncps's cell (default), the whole module (minutes to "
        "compile at T = 256), or nothing (default with --quick)",
    )
    parser.add_argument(
        "--jax",
        dest="use_jax",
        action=argparse.BooleanOptionalAction,
        help="time the JAX lax.scan reference where jax is installed (default: on, off with "
        "--quick)",
    )
    parser.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        help="add the scale table (default: on, off with --quick)",
    )


def main(argv: list[str] | None = None) -> dict:
    """Command line: ``python -m ncps_mlx.apps.bench.cells [--quick] [--repeats N]
    [--json PATH] [--torch-compile {model,cell,off}] [--[no-]jax] [--[no-]scale]``."""
    return family_main(run, argv, add_arguments)


if __name__ == "__main__":
    main()
