"""LTC/CfC forward and train-step time: ncps_mlx vs ncps 1.0.1 (PyTorch), measured in one run.

    python benchmarks/cells.py            # B=32, T=256, F=16, 64 units (the issue's setting)
    python benchmarks/cells.py --quick    # T=32, a few seconds

Both libraries get the same weights (copied with ``load_ncps_state_dict``) and inputs. Times
are the best of ``--repeats`` runs after one warm-up; the ratio is ncps_mlx / PyTorch (below 1
means ncps_mlx is faster). PyTorch runs with as many threads as MLX's CPU backend may use.
"""

from __future__ import annotations

import argparse
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

import ncps_mlx
from ncps_mlx.io import load_ncps_state_dict

try:
    import ncps.torch as ncps_torch
    import ncps.wirings as ncps_wirings
    import torch
except ImportError:  # the reference columns stay empty
    torch = None


def workloads():
    """(label, class name, wiring class + args or an int for dense units)."""
    return [
        ("CfC(64) dense", "CfC", 64),
        ("CfC AutoNCP(64, 8)", "CfC", ("AutoNCP", (64, 8))),
        ("LTC AutoNCP(64, 8)", "LTC", ("AutoNCP", (64, 8))),
        ("LTC FullyConnected(64)", "LTC", ("FullyConnected", (64,))),
    ]


def best_time(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def mlx_timers(model, x, target):
    optimizer = optim.Adam(learning_rate=1e-3)

    def loss_fn(model, x, target):
        return nn.losses.mse_loss(model(x)[0], target)

    value_and_grad = nn.value_and_grad(model, loss_fn)

    def forward():
        mx.eval(model(x)[0])

    def train_step():
        loss, grads = value_and_grad(model, x, target)
        optimizer.update(model, grads)
        mx.eval(loss, model.parameters(), optimizer.state)

    return forward, train_step


def torch_timers(model, x, target):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def forward():
        with torch.no_grad():
            model(x)

    def train_step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x)[0], target)
        loss.backward()
        optimizer.step()

    return forward, train_step


def build(library, name, units, features):
    if isinstance(units, tuple):
        wiring_module = ncps_wirings if library == "torch" else ncps_mlx.wirings
        units = getattr(wiring_module, units[0])(*units[1])
    cls = getattr(ncps_torch if library == "torch" else ncps_mlx, name)
    return cls(features, units)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T=32 instead of 256")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    batch, steps, features = 32, 32 if args.quick else 256, 16
    if torch is not None:
        torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, features)).astype(np.float32)
    print(f"B={batch}, T={steps}, F={features}; best of {args.repeats}; times in ms")
    columns = ["workload", "fwd mlx", "fwd torch", "ratio", "train mlx", "train torch", "ratio"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for label, name, units in workloads():
        model = build("mlx", name, units, features)
        target = rng.standard_normal((batch, steps, model.output_size)).astype(np.float32)
        forward, train = mlx_timers(model, mx.array(x), mx.array(target))
        cells = [
            label,
            best_time(forward, args.repeats),
            None,
            None,
            best_time(train, args.repeats),
        ]
        if torch is not None:
            torch.manual_seed(0)
            reference = build("torch", name, units, features)
            load_ncps_state_dict(model, reference.state_dict())
            t_forward, t_train = torch_timers(reference, torch.tensor(x), torch.tensor(target))
            cells[2] = best_time(t_forward, args.repeats)
            cells[3] = cells[1] / cells[2]
            cells += [best_time(t_train, args.repeats)]
            cells += [cells[4] / cells[5]]
        else:
            cells += [None, None]
        print("| " + " | ".join(_format(cell, i) for i, cell in enumerate(cells)) + " |")


def _format(cell, index) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, str):
        return cell
    return f"{cell:.2f}x" if index in (3, 6) else f"{cell * 1000:.1f}"


if __name__ == "__main__":
    main()
