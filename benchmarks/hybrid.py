"""Hybrid layers: whole-sequence (chunked/parallel) forward vs a step-by-step loop, and our
Mamba block vs mlx-lm's, measured in one run.

    python benchmarks/hybrid.py            # T = 512, 2048, 8192
    python benchmarks/hybrid.py --quick    # T = 128, 512

For every layer type of :class:`ncps_mlx.hybrid.HybridBuilder` (width D=64, batch 1): the time
of ``layer(x)`` over the whole sequence and of the sequential reference, a Python loop of
``layer.step`` with its cache. Then ``MambaBlock`` against mlx-lm's ``MambaBlock`` (extra
``bench``: ``pip install -e ".[bench]"``) on the same configuration and the same weights,
after checking that both compute the same outputs.
"""

from __future__ import annotations

import argparse
import time

import mlx.core as mx

from ncps_mlx.hybrid import HybridBuilder, MambaBlock

WIDTH = 64
LAYER_OPTIONS = {"rwkv": {"head_size": 16}, "gla": {"num_heads": 4}, "attention": {"num_heads": 4}}


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def whole(layer, x):
    return lambda: mx.eval(layer(x)[0])


def stepped(layer, x):
    def run():
        cache, outputs = layer.make_cache(x.shape[0]), []
        for t in range(x.shape[1]):
            y, cache = layer.step(x[:, t], cache)
            outputs.append(y)
        mx.eval(outputs)

    return run


def layer_table(lengths):
    print(f"Layers, D={WIDTH}, B=1: seconds for the whole sequence / a step loop (ratio)")
    print("| layer | " + " | ".join(f"T={t}" for t in lengths) + " |")
    print("|---|" + "---|" * len(lengths))
    for name in HybridBuilder.layer_types():
        factory = HybridBuilder._registry[name].factory
        layer = factory(WIDTH, **LAYER_OPTIONS.get(name, {}))
        cells = []
        for steps in lengths:
            x = mx.random.normal((1, steps, WIDTH))
            whole(layer, x[:, :16])()  # warm-up (compilation, first allocation)
            fast, slow = seconds(whole(layer, x)), seconds(stepped(layer, x))
            cells.append(f"{fast:.3f} / {slow:.3f} ({slow / fast:.1f}x)")
        print(f"| {name} | " + " | ".join(cells) + " |")


def mlx_lm_block(ours: MambaBlock):
    """mlx-lm's MambaBlock with our block's configuration and weights (None without mlx-lm)."""
    try:
        from mlx_lm.models.mamba import MambaBlock as Reference
        from mlx_lm.models.mamba import ModelArgs
    except ImportError:
        return None
    args = ModelArgs(
        model_type="mamba",
        vocab_size=1,
        hidden_size=ours.d_model,
        intermediate_size=ours.d_model * ours.expand_factor,
        state_size=ours.state_size,
        num_hidden_layers=1,
        conv_kernel=ours.conv_width,
        use_bias=False,
        use_conv_bias=True,
        time_step_rank=ours.dt_rank,
    )
    reference = Reference(args)
    reference.in_proj.weight = ours.in_proj.effective_weight()
    reference.conv1d.weight = ours.conv_weight[:, :, None]
    reference.conv1d.bias = ours.conv_bias
    reference.x_proj.weight = ours.x_proj.effective_weight()
    reference.dt_proj.weight = ours.dt_proj.effective_weight()
    reference.dt_proj.bias = ours.dt_proj.bias
    reference.A_log, reference.D = ours.A_log, ours.D
    reference.out_proj.weight = ours.out_proj.effective_weight()
    return reference


def mamba_table(lengths):
    ours = MambaBlock(WIDTH, state_size=16, expand_factor=2, conv_width=4)
    reference = mlx_lm_block(ours)
    if reference is None:
        print("\nmlx-lm is not installed (pip install -e '.[bench]'): Mamba comparison skipped")
        return
    x = mx.random.normal((1, 64, WIDTH))
    difference = mx.abs(ours(x)[0] - reference(x, None)).max().item()
    print(f"\nMamba block vs mlx-lm (D={WIDTH}, E={2 * WIDTH}, N=16)")
    print(f"same weights, max |output difference| {difference:.1e}")
    print("| T | ncps_mlx s | mlx-lm s | mlx-lm / ncps_mlx |")
    print("|---|---|---|---|")
    for steps in lengths:
        x = mx.random.normal((1, steps, WIDTH))
        mine = seconds(whole(ours, x))
        theirs = seconds(lambda x=x: mx.eval(reference(x, None)))
        print(f"| {steps} | {mine:.3f} | {theirs:.3f} | {theirs / mine:.1f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 128, 512 only")
    args = parser.parse_args()
    lengths = [128, 512] if args.quick else [512, 2048, 8192]
    mx.random.seed(0)
    layer_table(lengths)
    mamba_table(lengths)


if __name__ == "__main__":
    main()
