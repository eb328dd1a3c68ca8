"""LTC/CfC forward and train-step time: ncps_mlx vs ncps 1.0.1 (PyTorch), same weights.

    python -m ncps_mlx.apps.bench.cells [--quick] [--repeats N] [--json PATH]

Inputs ``x`` are ``(B, T, F)`` = (32, 256, 16) (``--quick``: T = 32), targets ``(B, T, O)``.
Both libraries get the same weights (ncps's initial weights copied into ours with
:func:`ncps_mlx.io.load_ncps_state_dict`) and the same inputs. The forward pass runs under
``torch.no_grad()``; a train step is loss, gradients and one Adam update. PyTorch uses
``os.cpu_count()`` threads. ncps_mlx runs in its default configuration (compiled steps).
"""

from __future__ import annotations

import os

import numpy as np

from .report import family_main, family_record, row
from .timing import best_of, mlx_peak_mb, ops_per_step, torch_device, torch_synchronized

BATCH, FEATURES = 32, 16

#: (label, class name, units: an int (dense CfC) or (wiring class, its arguments)).
WORKLOADS = [
    ("CfC(16, 64) dense", "CfC", 64),
    ("CfC AutoNCP(64, 8)", "CfC", ("AutoNCP", (64, 8))),
    ("LTC AutoNCP(64, 8)", "LTC", ("AutoNCP", (64, 8))),
    ("LTC FullyConnected(64)", "LTC", ("FullyConnected", (64,))),
]


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


def build(models, wirings, name: str, units):
    """``models.<name>(FEATURES, units)``, with ``units`` made a wiring from ``wirings``."""
    if isinstance(units, tuple):
        units = getattr(wirings, units[0])(*units[1])
    return getattr(models, name)(FEATURES, units)


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
    """``(forward, train_step)`` closures for an ncps PyTorch model on ``x`` ``(B, T, F)``."""
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


def _graph_of(model):
    """``T -> model's lazy outputs on (B, T, F) zeros`` for :func:`ops_per_step`."""
    import mlx.core as mx

    return lambda steps: model(mx.zeros((BATCH, steps, FEATURES)))


def run_workload(label, name, units, x, reference, repeats, budget_s) -> list[dict]:
    """The forward and train-step rows of one workload; x is ``(B, T, F)`` numpy."""
    import mlx.core as mx

    from ncps_mlx import sequence, wirings
    from ncps_mlx.serialization import load_ncps_state_dict

    model = build(sequence, wirings, name, units)
    rng = np.random.default_rng(1)
    target = rng.standard_normal((*x.shape[:2], model.output_size)).astype(np.float32)
    ref_times, note, diff = (None, None), "not installed", ""
    if reference is not None:
        torch, ref_models, ref_wirings = reference
        torch.manual_seed(0)
        ref_model = build(ref_models, ref_wirings, name, units)
        load_ncps_state_dict(model, ref_model.state_dict())
        ref_forward, ref_train = torch_timers(
            torch, ref_model, torch.tensor(x), torch.tensor(target)
        )
        with torch.no_grad():
            expected = ref_model(torch.tensor(x).to(torch_device()))[0].cpu().numpy()
        diff = f"max abs output diff {np.abs(np.array(model(mx.array(x))[0]) - expected).max():.1e}"
        ref_times = (best_of(ref_forward, repeats, budget_s), best_of(ref_train, repeats, budget_s))
        note = None
    mx.eval(model.parameters())
    ops = ops_per_step(_graph_of(model))
    forward, train = mlx_timers(model, mx.array(x), mx.array(target))
    mlx_peak_mb(reset=True)
    ours_forward = best_of(forward, repeats, budget_s)
    forward_mb = mlx_peak_mb(reset=True)
    ours_train = best_of(train, repeats, budget_s)
    return [
        row(f"{label} forward", ours_forward, ref_times[0], note, ops, forward_mb, diff),
        row(f"{label} train step (Adam)", ours_train, ref_times[1], note, None, mlx_peak_mb()),
    ]


def run(quick: bool = False, repeats: int = 3) -> dict:
    """Time every workload of :data:`WORKLOADS`; returns the family's record."""
    steps = 32 if quick else 256
    x = np.random.default_rng(0).standard_normal((BATCH, steps, FEATURES)).astype(np.float32)
    reference = import_reference()
    budget_s = 5.0 if quick else 60.0
    rows = []
    for label, name, units in WORKLOADS:
        rows += run_workload(label, name, units, x, reference, repeats, budget_s)
    return family_record(
        "cells",
        "LTC/CfC forward and train step vs ncps (PyTorch), same weights",
        f"B={BATCH}, T={steps}, F={FEATURES}, 64 units; torch on {torch_device()}, "
        f"threads {os.cpu_count()}; "
        "ops/step: MLX primitives one step adds to the forward graph (compiled step)",
        "ncps 1.0.1 (PyTorch)",
        rows,
    )


def main(argv: list[str] | None = None) -> dict:
    """Command line:
    ``python -m ncps_mlx.apps.bench.cells [--quick] [--repeats N] [--json PATH]``."""
    return family_main(run, argv)


if __name__ == "__main__":
    main()
