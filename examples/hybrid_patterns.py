"""Train and compare hybrid layer patterns on a small synthetic sequence task.

The task: the input is white noise ``x`` ``(B, T, 1)``; the target at step ``t`` is a mix of
delayed inputs, ``y_t = x_{t-d} + 0.5 * x_{t-2d}`` (zero before the sequence starts), so a
stack must carry information ``d`` and ``2d`` steps along the sequence. Each pattern is built
by ``HybridBuilder`` (input projection, pre-norm residual blocks, final norm) with an
``nn.Linear`` readout, and trained with Adam on a fixed batch; a held-out batch measures the
loss. For each pattern the script prints the diagram, the parameter count (checked against
``HybridBuilder.param_count``), the held-out loss before and after training and the time per
training step, then a summary table.

Commands:

    python examples/hybrid_patterns.py                      # all patterns, ~75 s (2 cores)
    python examples/hybrid_patterns.py --steps 3            # a quick smoke run
    python examples/hybrid_patterns.py --steps 300 --layers 6
    python examples/hybrid_patterns.py --patterns jamba_like cfc,attention,ffn

A pattern is a named pattern (``jamba_like``, ``zamba_like``, ``mamba_gla``,
``rwkv_attention``, ``full_hybrid``, ``ssm_stack``; built with ``--layers`` layers) or a
comma-separated list of layer names (``cfc,attention,ffn``).
"""

from __future__ import annotations

import argparse
import math
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

from ncps_mlx.hybrid import HybridBuilder

DEFAULT_PATTERNS = [
    "ssm_stack",
    "jamba_like",
    "zamba_like",
    "mamba_gla",
    "rwkv_attention",
    "full_hybrid",
    "cfc,attention,ffn",
]


def delayed_mix(batch: int, length: int, delay: int, seed: int):
    """Noise ``x`` and the target ``x_{t-d} + 0.5 x_{t-2d}``, both ``(batch, length, 1)``."""
    x = mx.random.normal((batch, length, 1), key=mx.random.key(seed))

    def shifted(k):
        return mx.concatenate([mx.zeros((batch, k, 1)), x[:, :-k]], axis=1)

    return x, shifted(delay) + 0.5 * shifted(2 * delay)


class Regressor(nn.Module):
    """A hybrid stack ``(B, T, 1) -> (B, T, H)`` and a linear readout to one output."""

    def __init__(self, layers, shared, hidden_size, options):
        super().__init__()
        self.body = HybridBuilder.build(layers, 1, hidden_size, shared=shared, **options)
        self.readout = nn.Linear(hidden_size, 1)

    def __call__(self, x):
        return self.readout(self.body(x)[0])


def resolve(pattern: str, num_layers: int):
    """``(label, layer names, shared names)`` of a named pattern or a comma-separated list."""
    if pattern in HybridBuilder.PATTERNS:
        layers, shared = HybridBuilder.named_pattern(pattern, num_layers)
        return pattern, layers, shared
    layers = [name.strip() for name in pattern.split(",") if name.strip()]
    return "+".join(layers), layers, ()


def count(module) -> int:
    return sum(array.size for _, array in tree_flatten(module.parameters()))


def run_pattern(pattern, args, options, train_data, test_data):
    label, layers, shared = resolve(pattern, args.layers)
    print(f"=== {label}")
    print(HybridBuilder.visualize(layers) + (f"  (shared: {', '.join(shared)})" if shared else ""))
    mx.random.seed(args.seed)
    model = Regressor(layers, shared, args.hidden, options)
    body_params = count(model.body)
    expected = HybridBuilder.param_count(layers, 1, args.hidden, shared=shared, **options)
    assert body_params == expected, (body_params, expected)
    print(f"parameters: {body_params:,} in the stack (= param_count), {count(model):,} in all")

    (x, y), (x_test, y_test) = train_data, test_data

    def loss_fn(model, inputs, targets):
        return nn.losses.mse_loss(model(inputs), targets)

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    optimizer = optim.Adam(learning_rate=args.lr)
    before = loss_fn(model, x_test, y_test).item()
    times = []
    for _ in range(args.steps):
        began = time.perf_counter()
        _, grads = loss_and_grad(model, x, y)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        times.append(time.perf_counter() - began)
    after = loss_fn(model, x_test, y_test).item()
    # The first step traces and allocates: leave it out of the time per step when there are more.
    steady = times[1:] if len(times) > 1 else times
    ms = 1000 * sum(steady) / max(len(steady), 1)
    print(f"held-out loss: {before:.4f} -> {after:.4f}   {ms:.1f} ms/step ({args.steps} steps)")
    print()
    return label, layers, body_params, before, after, ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=80, help="Adam steps per pattern")
    parser.add_argument("--patterns", nargs="+", default=DEFAULT_PATTERNS)
    parser.add_argument("--layers", type=int, default=4, help="layers of named patterns")
    parser.add_argument("--hidden", type=int, default=32, help="model width H")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=32, help="sequence length T")
    parser.add_argument("--delay", type=int, default=3, help="delay d of the target")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps < 0:
        parser.error("--steps must be >= 0")
    if 2 * args.delay >= args.length:
        parser.error("--delay must be less than half of --length")

    heads = max(1, args.hidden // 16)
    options = dict(
        mamba_state_size=8,
        attention_num_heads=heads,
        gla_num_heads=heads,
        rwkv_head_size=args.hidden // heads,
    )
    train_data = delayed_mix(args.batch, args.length, args.delay, args.seed)
    test_data = delayed_mix(args.batch, args.length, args.delay, args.seed + 1)
    print(
        f"task: y_t = x_(t-{args.delay}) + 0.5 x_(t-{2 * args.delay}), x ~ N(0, 1); "
        f"B={args.batch}, T={args.length}, H={args.hidden}, Adam lr={args.lr}, "
        f"{args.steps} steps\n"
    )

    started = time.perf_counter()
    rows = [run_pattern(p, args, options, train_data, test_data) for p in args.patterns]
    total = time.perf_counter() - started

    print(f"{'pattern':22} {'layers':12} {'params':>8} {'before':>8} {'after':>8} {'ms/step':>8}")
    for label, layers, params, before, after, ms in sorted(
        rows, key=lambda row: math.inf if math.isnan(row[4]) else row[4]
    ):
        codes = HybridBuilder.visualize(layers).splitlines()[0].split(": ")[1].replace(" → ", "")
        print(f"{label:22} {codes:12} {params:8,} {before:8.4f} {after:8.4f} {ms:8.1f}")
    print(f"\ntotal {total:.1f} s")


if __name__ == "__main__":
    main()
