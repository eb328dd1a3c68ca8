"""Hybrid layers: the whole-sequence (chunked/parallel) forward vs a step-by-step loop.

    python -m ncps_mlx.apps.bench.hybrid [--quick] [--repeats N] [--json PATH]

For every layer type of :class:`ncps_mlx.hybrid.HybridBuilder` (width D = 64, batch 1) on
``x`` ``(1, T, D)`` with T = 2048 (``--quick``: 128): ``layer(x)`` over the whole sequence,
against the reference, a Python loop of ``layer.step`` with the layer's cache (what
autoregressive decoding runs; the tests check that both agree). The ratio is whole / loop.
"""

from __future__ import annotations

from .report import family_main, family_record, row
from .timing import best_of, mlx_peak_mb

WIDTH = 64
#: Builder options giving multi-head layers several heads at D = 64.
OPTIONS = {"rwkv_head_size": 16, "gla_num_heads": 4, "attention_num_heads": 4}


def make_layer(name: str):
    """The builder's layer ``name`` at width :data:`WIDTH`, parameters evaluated."""
    import mlx.core as mx

    from ncps_mlx.hybrid import HybridBuilder

    layer = HybridBuilder.layer(name, WIDTH, **OPTIONS)
    mx.eval(layer.parameters())
    return layer


def whole(layer, x):
    """Run ``layer`` over all of ``x`` ``(B, T, D)`` at once."""
    import mlx.core as mx

    return lambda: mx.eval(layer(x)[0])


def stepped(layer, x):
    """Run ``layer.step`` over ``x`` ``(B, T, D)`` one step at a time, carrying its cache."""
    import mlx.core as mx

    def run():
        cache, outputs = layer.make_cache(x.shape[0]), []
        for t in range(x.shape[1]):
            y, cache = layer.step(x[:, t], cache)
            outputs.append(y)
        mx.eval(outputs)

    return run


def layer_row(name: str, steps: int, repeats: int, budget_s: float) -> dict:
    """Time layer ``name`` both ways on a random ``(1, steps, WIDTH)`` input."""
    import mlx.core as mx

    layer = make_layer(name)
    x = mx.random.normal((1, steps, WIDTH), key=mx.random.key(0))
    mlx_peak_mb(reset=True)
    fast = best_of(whole(layer, x), repeats, budget_s)
    memory = mlx_peak_mb(reset=True)
    slow = best_of(stepped(layer, x), repeats, budget_s)
    return row(
        f"{name} T={steps:,}",
        fast,
        slow,
        mlx_mb=memory,
        notes=f"{slow.seconds / fast.seconds:.3g}x faster than the loop",
    )


def run(quick: bool = False, repeats: int = 3) -> dict:
    """Time every layer type; returns the family's record."""
    from ncps_mlx.hybrid import HybridBuilder

    steps = 128 if quick else 2048
    budget_s = 5.0 if quick else 20.0
    rows = [layer_row(name, steps, repeats, budget_s) for name in HybridBuilder.layer_types()]
    return family_record(
        "hybrid",
        "hybrid layers, whole sequence vs step-by-step loop",
        f"D={WIDTH}, B=1, T={steps:,}; options {OPTIONS}; MLX MB is the whole-sequence pass",
        "a Python loop of layer.step with the layer's cache (same machine, same run)",
        rows,
    )


def main(argv: list[str] | None = None) -> dict:
    """Command line:
    ``python -m ncps_mlx.apps.bench.hybrid [--quick] [--repeats N] [--json PATH]``."""
    return family_main(run, argv)


if __name__ == "__main__":
    main()
