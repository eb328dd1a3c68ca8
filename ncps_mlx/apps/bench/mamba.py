"""Our Mamba block vs mlx-lm's ``MambaBlock``, same configuration and weights.

    python -m ncps_mlx.apps.bench.mamba [--quick] [--repeats N] [--json PATH]

Both blocks (D = 64, E = 128, N = 16, conv width 4) run the whole sequence ``x`` ``(1, T, D)``,
T = 512, 2048, 8192 (``--quick``: 128): ours with its chunked scan, mlx-lm's as its model runs
a prompt without a cache. mlx-lm (extra ``bench``: ``pip install -e ".[bench]"``) gets our
weights; the notes give the largest output difference, so the comparison is of one function.
"""

from __future__ import annotations

from .report import family_main, family_record, row
from .timing import best_of, installed, mlx_peak_mb

WIDTH, STATE, EXPAND, CONV = 64, 16, 2, 4
LENGTHS, QUICK_LENGTHS = (512, 2048, 8192), (128,)


def mlx_lm_block(ours):
    """mlx-lm's ``MambaBlock`` with ``ours``'s configuration and weights.

    Args:
        ours (ncps_mlx.hybrid.MambaBlock): The block to copy (unwired projections).

    Returns:
        mlx_lm.models.mamba.MambaBlock: Called as ``block(x, None)`` on ``(B, T, D)``.
    """
    from mlx_lm.models.mamba import MambaBlock, ModelArgs

    args = ModelArgs(
        model_type="mamba",
        vocab_size=1,
        hidden_size=ours.d_model,
        intermediate_size=ours.inner_size,
        state_size=ours.state_size,
        num_hidden_layers=1,
        conv_kernel=ours.conv_width,
        use_bias=False,
        use_conv_bias=True,
        time_step_rank=ours.dt_rank,
    )
    reference = MambaBlock(args)
    reference.in_proj.weight = ours.in_proj.effective_weight()
    reference.conv1d.weight = ours.conv_weight[:, :, None]
    reference.conv1d.bias = ours.conv_bias
    reference.x_proj.weight = ours.x_proj.effective_weight()
    reference.dt_proj.weight = ours.dt_proj.effective_weight()
    reference.dt_proj.bias = ours.dt_proj.bias
    reference.A_log, reference.D = ours.A_log, ours.D
    reference.out_proj.weight = ours.out_proj.effective_weight()
    return reference


def length_row(ours, reference, steps: int, repeats: int, budget_s: float) -> dict:
    """Time both blocks on a random ``(1, steps, WIDTH)`` input."""
    import mlx.core as mx

    x = mx.random.normal((1, steps, WIDTH), key=mx.random.key(steps))
    mlx_peak_mb(reset=True)
    mine = best_of(lambda: mx.eval(ours(x)[0]), repeats, budget_s)
    memory = mlx_peak_mb(reset=True)
    if reference is None:
        return row(f"Mamba block T={steps:,}", mine, None, "not installed", mlx_mb=memory)
    theirs = best_of(lambda: mx.eval(reference(x, None)), repeats, budget_s)
    difference = mx.abs(ours(x)[0] - reference(x, None)).max().item()
    notes = f"max abs output diff {difference:.1e}"
    return row(f"Mamba block T={steps:,}", mine, theirs, mlx_mb=memory, notes=notes)


def run(quick: bool = False, repeats: int = 3) -> dict:
    """Time every length; returns the family's record."""
    import mlx.core as mx

    from ncps_mlx.hybrid import MambaBlock

    mx.random.seed(0)
    ours = MambaBlock(WIDTH, state_size=STATE, expand_factor=EXPAND, conv_width=CONV)
    mx.eval(ours.parameters())
    reference = mlx_lm_block(ours) if installed("mlx_lm") else None
    budget_s = 5.0 if quick else 20.0
    lengths = QUICK_LENGTHS if quick else LENGTHS
    rows = [length_row(ours, reference, steps, repeats, budget_s) for steps in lengths]
    return family_record(
        "mamba",
        "Mamba block vs mlx-lm's MambaBlock, same weights",
        f"D={WIDTH}, E={EXPAND * WIDTH}, N={STATE}, conv {CONV}, B=1, whole sequence",
        "mlx-lm's mlx_lm.models.mamba.MambaBlock",
        rows,
    )


def main(argv: list[str] | None = None) -> dict:
    """Command line:
    ``python -m ncps_mlx.apps.bench.mamba [--quick] [--repeats N] [--json PATH]``."""
    return family_main(run, argv)


if __name__ == "__main__":
    main()
