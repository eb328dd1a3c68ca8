"""A matrix-vector product spread over a whole thread block, for the fused kernels' sources.

Each output ``j`` gets a group of ``lanes`` neighbouring threads (a power of two up to a warp,
as many as the block has threads for); lane ``l`` sums the products of inputs ``i = l,
l + lanes, ...`` and the group adds its lanes' sums with warp shuffles. So a product with few
outputs still keeps the block busy, and each thread's chain of dependent multiply-adds is
``inputs / lanes`` long rather than ``inputs``. The weights are read with ``i`` contiguous
(``W[j][i]`` row-major by output), so a group's lanes read neighbouring addresses.
"""

from __future__ import annotations

__all__ = ["block_matvec"]


def block_matvec(outputs: str, inputs: str, product: str, epilogue: str) -> str:
    """Kernel code computing ``acc_j = sum_i product`` for ``j < outputs`` and running
    ``epilogue`` once per output.

    The code needs ``tid`` and ``nt`` (:data:`~ncps_mlx.kernels.backend.SEQUENCE_PREAMBLE`) and
    must be reached by every thread of the block (it shuffles within warps).

    Args:
        outputs: Expression of the number of outputs.
        inputs: Expression of the number of inputs.
        product: Expression of one term, in ``j`` and ``i`` (e.g. ``"w_t[j * H + i] * h[i]"``).
        epilogue: Statements run by one thread per output, with ``j`` and the sum ``acc``.
    """
    return f"""
  {{
    int lanes = 1;
    while (lanes < 32 && ({outputs}) * lanes * 2 <= nt) lanes *= 2;
    const int mv_lane = tid % lanes;
    for (int mv_base = 0; mv_base < ({outputs}); mv_base += nt / lanes) {{
      const int j = mv_base + tid / lanes;
      float acc = 0.0f;
      if (j < ({outputs})) {{
        for (int i = mv_lane; i < ({inputs}); i += lanes) acc += {product};
      }}
      for (int m = lanes / 2; m > 0; m >>= 1) acc += SHUFFLE_XOR(acc, m);
      if (j < ({outputs}) && mv_lane == 0) {{
        {epilogue}
      }}
    }}
  }}
"""
