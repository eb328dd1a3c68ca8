"""A matrix-vector product spread over a whole thread block, for the fused kernels' sources.

Each output ``j`` gets a group of ``lanes`` neighbouring threads (a power of two up to a warp,
as many as the block has threads for); lane ``l`` sums the products of inputs ``i = l,
l + lanes, ...`` and the group adds its lanes' sums with warp shuffles. So a product with few
outputs still keeps the block busy, and each thread's chain of dependent multiply-adds is
``inputs / lanes`` long rather than ``inputs``. The weights are read with ``i`` contiguous
(``W[j][i]`` row-major by output), so a group's lanes read neighbouring addresses.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["block_matvec", "Product", "plan_products", "resident_load", "resident_matvec"]


def block_matvec(
    outputs: str, inputs: str, product: str, epilogue: str, start: str = "0.0f"
) -> str:
    """Kernel code computing ``acc_j = start + sum_i product`` for ``j < outputs`` and running
    ``epilogue`` once per output (``start``, an expression in ``j``, is read before the
    products, so its load overlaps them).

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
      float acc = mv_lane == 0 && j < ({outputs}) ? ({start}) : 0.0f;
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


# ---------------------------------------------------------------------------- resident weights
#: Registers per thread block (CUDA's per-multiprocessor register file, which a block of
#: ``threads`` shares): a thread may keep ``REGISTER_FILE // threads - REGISTER_RESERVE`` weights.
REGISTER_FILE = 65536
REGISTER_RESERVE = 40


class Product(NamedTuple):
    """How a block computes a weight product ``y[j] = sum_i x[i] * W[i, j]`` for ``j <
    outputs``, ``i < inputs`` (``copies`` products of one shape: the backbone's layers).

    With ``resident``, each thread keeps its share of ``W`` in registers for the whole
    sequence, loaded once (as cuDNN's persistent RNNs do): output ``j`` gets ``lanes``
    neighbouring threads, lane ``l`` holds the weights of inputs ``l, l + lanes, ...``
    (``cols`` of them) for ``rows`` outputs, and the lanes add their sums with warp shuffles.
    Otherwise one thread per output reads its weights from memory at every step.

    In the kernel source a product is known by its ``name``: its compile-time constants
    (:meth:`template`) are ``<name>_IN``, ``_OUT``, ``_N`` (copies), ``_P`` (lanes), ``_R``,
    ``_C`` and ``_K`` (1 if resident), so one source serves every configuration.
    """

    name: str
    inputs: int
    outputs: int
    copies: int
    lanes: int
    rows: int
    cols: int
    resident: bool

    @classmethod
    def plan(cls, name: str, inputs: int, outputs: int, threads: int, copies: int = 1):
        """The resident layout of a product on ``threads`` threads (see :meth:`registers`)."""
        lanes = 1
        while lanes < 32 and outputs * lanes * 2 <= threads:
            lanes *= 2
        rows = -(-outputs // (threads // lanes))
        resident = copies > 0
        return cls(name, inputs, outputs, copies, lanes, rows, -(-inputs // lanes), resident)

    def registers(self) -> int:
        """Weights each thread keeps in registers."""
        return self.copies * self.rows * self.cols if self.resident else 0

    def streamed(self) -> Product:
        """This product with its weights read from memory at every step."""
        return self._replace(lanes=1, rows=1, cols=1, resident=False)

    def template(self) -> list[tuple[str, int]]:
        """Its compile-time constants (see the class)."""
        keys = ("IN", "OUT", "N", "P", "R", "C", "K")
        values = (self.inputs, self.outputs, max(self.copies, 1), self.lanes, self.rows)
        values += (self.cols, int(self.resident))
        return [(f"{self.name}_{key}", value) for key, value in zip(keys, values, strict=True)]


def plan_products(shapes: list[tuple], threads: int) -> list[Product]:
    """Which of the products ``shapes`` (``(name, inputs, outputs, copies)``) keep their
    weights in registers on ``threads`` threads: all if they fit, else the largest that fit."""
    budget = REGISTER_FILE // threads - REGISTER_RESERVE
    products = [Product.plan(name, i, o, threads, c) for name, i, o, c in shapes]
    chosen, used = {}, 0
    for product in sorted(products, key=Product.registers, reverse=True):
        fits = used + product.registers() <= budget
        chosen[product.name] = product if fits else product.streamed()
        used += chosen[product.name].registers()
    return [chosen[product.name] for product in products]


def resident_load(name: str, weight_t: str) -> str:
    """Kernel code declaring ``<name>_w``, a thread's registers of product ``name``, and
    loading them (before the time loop) from ``weight_t``, the weights laid out ``(copies,
    outputs, inputs)`` row-major. Needs ``tid`` and the block size ``NT``."""
    p = name
    return f"""
  float {p}_w[{p}_K ? {p}_N * {p}_R * {p}_C : 1];
  if ({p}_K) {{
    #pragma unroll
    for (int copy = 0; copy < {p}_N; ++copy) {{
      #pragma unroll
      for (int r = 0; r < {p}_R; ++r) {{
        const int j = tid / {p}_P + r * (NT / {p}_P);
        #pragma unroll
        for (int c = 0; c < {p}_C; ++c) {{
          const int i = tid % {p}_P + c * {p}_P;
          const bool inside = j < {p}_OUT && i < {p}_IN;
          {p}_w[{p}_K ? (copy * {p}_R + r) * {p}_C + c : 0] =
              inside ? {weight_t}[(copy * {p}_OUT + j) * {p}_IN + i] : 0.0f;
        }}
      }}
    }}
  }}
"""


def resident_matvec(
    name: str, weight: str, x: str, epilogue: str, copy: str = "0", start: str = "0.0f"
) -> str:
    """Kernel code computing ``acc = start + sum_i x[i] * W[i, j]`` for each output ``j`` of
    product ``name`` and running ``epilogue`` once per output (with ``j`` and ``acc``).
    ``start`` (an expression in ``j``: a bias, an input) is read before the products, so its
    load overlaps them.

    Resident weights come from the registers :func:`resident_load` filled, streamed ones from
    ``weight``, laid out ``(copies, inputs, outputs)`` row-major (neighbouring threads read
    neighbouring outputs). ``x`` is a shared array of at least ``inputs`` floats; ``copy`` is
    the product's index among its copies (a compile-time constant where the weights are
    resident: unroll the loop around the code). Every thread of the block must reach it.
    """
    p = name
    return f"""
  if ({p}_K) {{
    const int mv_lane = tid % {p}_P;
    #pragma unroll
    for (int r = 0; r < {p}_R; ++r) {{
      const int j = tid / {p}_P + r * (NT / {p}_P);
      float acc = mv_lane == 0 && j < {p}_OUT ? ({start}) : 0.0f;
      #pragma unroll
      for (int c = 0; c < {p}_C; ++c) {{
        const int i = mv_lane + c * {p}_P;
        if ({p}_IN % {p}_P == 0 || i < {p}_IN) {{
          acc += {p}_w[{p}_K ? (({copy}) * {p}_R + r) * {p}_C + c : 0] * {x}[i];
        }}
      }}
      for (int m = {p}_P / 2; m > 0; m >>= 1) acc += SHUFFLE_XOR(acc, m);
      if (j < {p}_OUT && mv_lane == 0) {{
        {epilogue}
      }}
    }}
  }} else {{
    for (int j = tid; j < {p}_OUT; j += NT) {{
      float acc = {start};
      for (int i = 0; i < {p}_IN; ++i) {{
        acc += {x}[i] * {weight}[(({copy}) * {p}_IN + i) * {p}_OUT + j];
      }}
      {epilogue}
    }}
  }}
"""
