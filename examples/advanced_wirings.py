"""Train liquid networks on three advanced wirings and compare them with an AutoNCP baseline.

    python examples/advanced_wirings.py               # ~45 s on a 2-core CPU
    python examples/advanced_wirings.py --steps 600   # a longer run

Task: from four input channels (slow, medium and fast sines plus noise), predict a delayed mix
of the slow and fast components, which needs both a short and a long memory. Each wiring drives
a CfC (``--cell ltc`` for an LTC); the script prints the loss before and after training, the
synapse counts and the time per step, and writes each wiring's plot next to the script when
``--plots`` is given.
"""

from __future__ import annotations

import argparse
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from ncps_mlx import LTC, CfC
from ncps_mlx.wirings import AttentionWiring, AutoNCP, HierarchicalWiring, MultiScaleWiring

FEATURES, OUTPUTS = 4, 1


def make_data(batch: int, steps: int, seed: int) -> tuple[mx.array, mx.array]:
    """Inputs ``(B, T, 4)`` and targets ``(B, T, 1)``: target(t) = slow(t - 5) + fast(t - 2)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps + 5, dtype=np.float32)[None, :] * 0.2
    phase = rng.uniform(0, 2 * np.pi, (batch, 3, 1)).astype(np.float32)
    slow, medium, fast = (np.sin(f * t + phase[:, i]) for i, f in enumerate((0.25, 1.0, 3.0)))
    noise = 0.1 * rng.standard_normal(slow.shape).astype(np.float32)
    x = np.stack([slow, medium, fast, noise], axis=-1)[:, 5:]
    y = (0.7 * slow[:, :-5] + 0.3 * fast[:, 3:-2])[..., None]
    return mx.array(x), mx.array(y.astype(np.float32))


def wirings() -> dict:
    return {
        "AutoNCP (baseline)": AutoNCP(24, OUTPUTS, seed=1),
        "MultiScaleWiring": MultiScaleWiring(8, 6, 6, OUTPUTS, seed=1),
        "HierarchicalWiring": HierarchicalWiring([10, 8, 4, OUTPUTS], seed=1),
        "AttentionWiring": AttentionWiring(8, 2, 8, output_size=OUTPUTS, seed=1),
    }


def train(model, x, y, steps: int, learning_rate: float) -> tuple[float, float, float]:
    optimizer = optim.Adam(learning_rate=learning_rate)
    loss_and_grad = nn.value_and_grad(model, lambda m: nn.losses.mse_loss(m(x)[0], y))
    first = nn.losses.mse_loss(model(x)[0], y).item()
    start = time.perf_counter()
    for _ in range(steps):
        loss, grads = loss_and_grad(model)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
    return first, loss.item(), (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per wiring")
    parser.add_argument("--cell", choices=("cfc", "ltc"), default="cfc")
    parser.add_argument("--plots", action="store_true", help="write <wiring>.png for each wiring")
    args = parser.parse_args()
    x, y = make_data(batch=16, steps=48, seed=0)
    print(f"{args.cell.upper()} on each wiring, {args.steps} Adam steps, B=16, T=48")
    for name, wiring in wirings().items():
        mx.random.seed(0)
        model = (CfC if args.cell == "cfc" else LTC)(FEATURES, wiring)
        first, last, seconds = train(model, x, y, args.steps, 0.01 if args.cell == "cfc" else 0.02)
        print(
            f"{name:20} neurons={wiring.units:3} synapses={wiring.synapse_count:4}"
            f"+{wiring.sensory_synapse_count:3}  loss {first:.4f} -> {last:.4f}"
            f"  ({seconds * 1000:.0f} ms/step)"
        )
        if args.plots:
            from ncps_mlx.viz import save_wiring_plot

            save_wiring_plot(wiring, f"{type(wiring).__name__}.png", layout="layered")


if __name__ == "__main__":
    main()
