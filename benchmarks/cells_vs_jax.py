"""The ``cells`` workloads against JAX alone: ncps_mlx (``kernel="auto"``) and the same cells in
a jitted JAX ``lax.scan`` with the same weights (the cells family's reference), without the
PyTorch references, so a rerun takes under a minute on a GPU.

    python benchmarks/cells_vs_jax.py

B = 32, T = 256, F = 16, best of 5, milliseconds; the ratios are ncps_mlx / JAX (below 1:
ncps_mlx is faster), the last column the largest output difference. Needs ``jax``.
"""

import os

os.environ.setdefault("MLX_ENABLE_TF32", "0")

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from ncps_mlx import sequence, wirings  # noqa: E402
from ncps_mlx.apps.bench import cells  # noqa: E402
from ncps_mlx.apps.bench.timing import best_of  # noqa: E402

BATCH, STEPS, FEATURES, REPEATS, BUDGET_S = 32, 256, 16, 5, 60.0


def row(label: str, name: str, units, x: np.ndarray) -> str:
    """The table row of one workload."""
    model = cells.build(sequence, wirings, name, units)
    rng = np.random.default_rng(1)
    target = rng.standard_normal((BATCH, STEPS, model.output_size)).astype(np.float32)
    found, theirs = cells.time_jax(model, x, target, True, REPEATS, BUDGET_S)
    if theirs is None:
        return f"| {label} | JAX: {found[0][1]} | | | | | | |"
    ours = np.array(model(mx.array(x))[0])
    mx.eval(model.parameters())
    forward, train = cells.mlx_timers(model, mx.array(x), mx.array(target))
    f, t = (best_of(timer, REPEATS, BUDGET_S).seconds for timer in (forward, train))
    jf, jt = found[0][1].seconds, found[1][1].seconds
    return (
        f"| {label} | {f * 1e3:.3f} | {jf * 1e3:.3f} | {f / jf:.3f} | {t * 1e3:.3f} "
        f"| {jt * 1e3:.3f} | {t / jt:.3f} | {np.abs(ours - theirs).max():.1e} |"
    )


def main() -> None:
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    print(
        "| workload | ours fwd ms | JAX fwd ms | ratio | ours train ms | JAX train ms | ratio "
        "| max diff vs JAX |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, name, units in cells.WORKLOADS:
        print(row(label, name, units, x), flush=True)


if __name__ == "__main__":
    main()
