"""Timers, peak memory and per-step op counts shared by the benchmark families.

Every timing is :func:`best_of`: one warm-up call (compilation, first allocations), then the best
of up to ``repeats`` timed calls. A call must finish its work itself (``mx.eval`` for MLX); the
timer only reads the clock around it.
"""

from __future__ import annotations

import io
import os
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

#: MLX primitives that multiply matrices (counted apart in the ``ops/step`` column).
MATMUL_PRIMITIVES = frozenset(
    {"Matmul", "AddMM", "BlockMaskedMM", "GatherMM", "SegmentedMM", "QuantizedMatmul", "GatherQMM"}
)

_PRIMITIVE_NODE = re.compile(r'\[label\s*=\s*"([^"]*)",\s*shape\s*=\s*rectangle\]')


class Timing(NamedTuple):
    """The best time of a workload and how many timed calls it took."""

    seconds: float
    runs: int


class OpCount(NamedTuple):
    """Primitives of one step of a graph, and the matrix products among them."""

    primitives: int
    matmuls: int


def best_of(function: Callable[[], object], repeats: int = 3, budget_s: float = 60.0) -> Timing:
    """Warm up once, then return the best of up to ``repeats`` timed calls of ``function``.

    Timed calls stop early (after at least one) once they have used ``budget_s`` seconds, so a
    workload of a minute per call is not run four times.

    Args:
        function (Callable[[], object]): Runs the workload to completion (``mx.eval`` inside).
        repeats (int): Most timed calls after the warm-up. Default: ``3``.
        budget_s (float): Seconds after which no further timed call starts. Default: ``60``.

    Returns:
        Timing: ``seconds`` (the fastest call) and ``runs`` (timed calls made).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    function()
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget_s):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return Timing(min(times), len(times))


#: Environment variable naming the device of the PyTorch references (``cpu`` or ``cuda``); the
#: suite's ``--torch-device`` sets it for the family processes.
TORCH_DEVICE_VARIABLE = "NCPS_MLX_BENCH_TORCH_DEVICE"


def torch_device() -> str:
    """The device the PyTorch references run on: ``cpu`` (default) or ``cuda``."""
    return os.environ.get(TORCH_DEVICE_VARIABLE, "cpu")


def torch_synchronized(torch, function: Callable[[], object]) -> Callable[[], None]:
    """``function`` followed by waiting for the GPU when the references run on CUDA (CUDA
    calls return before the work is done; ``mx.eval`` already waits for MLX's)."""
    if torch_device() == "cpu":
        return function

    def run():
        function()
        torch.cuda.synchronize()

    return run


def installed(*modules: str) -> bool:
    """Whether every module can be imported (checked without importing it)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in modules)


def peak_rss_mb() -> float:
    """The process's maximum resident set size so far, in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def mlx_peak_mb(reset: bool = False) -> float:
    """MLX's peak allocated memory since the last reset, in MiB; ``reset`` starts a new window."""
    import mlx.core as mx

    peak = mx.get_peak_memory() / 2**20
    if reset:
        mx.reset_peak_memory()
    return peak


def count_primitives(outputs) -> Counter:
    """The primitives (by name) of the lazy graph that computes ``outputs``.

    Arrays already evaluated count as inputs, not as operations: evaluate parameters and inputs
    first. The graph is read from :func:`mlx.core.export_to_dot`; a fused ``mx.compile`` kernel
    is one primitive (its name starts with ``Compiled``).

    Args:
        outputs (mx.array | list | tuple | dict): Unevaluated arrays (any tree of them).

    Returns:
        Counter: primitive name -> number of nodes.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten

    arrays = [leaf for _, leaf in tree_flatten(outputs) if isinstance(leaf, mx.array)]
    text = io.StringIO()
    mx.export_to_dot(text, *arrays)
    return Counter(_PRIMITIVE_NODE.findall(text.getvalue()))


def ops_per_step(graph_of: Callable[[int], object], steps: int = 3) -> OpCount | None:
    """Primitives one more step adds to a sequence graph, in the steady state.

    ``graph_of(T)`` returns the unevaluated outputs of a T-step run; the count is
    ``nodes(T + 1) - nodes(T)`` at ``T = steps`` and checked once more at ``T = steps + 1``.

    Args:
        graph_of (Callable[[int], object]): Number of steps -> lazy outputs.
        steps (int): The shorter length compared. Default: ``3``.

    Returns:
        OpCount | None: Per-step primitives and matmuls, or None if the two differences
        disagree (the graph does not grow by a fixed step).
    """
    counts = [count_primitives(graph_of(t)) for t in (steps, steps + 1, steps + 2)]
    first, second = counts[1] - counts[0], counts[2] - counts[1]
    if first != second or any(counts[0][k] > counts[1][k] for k in counts[0]):
        return None
    matmuls = sum(n for name, n in first.items() if name in MATMUL_PRIMITIVES)
    return OpCount(sum(first.values()), matmuls)
