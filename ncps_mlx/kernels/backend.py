"""GPU backends of the fused kernels: one kernel body, a thin prologue per backend.

A fused kernel is written once, in the C-like subset that Metal Shading Language and CUDA C++
share, against a handful of macros:

* in the body prologue (it must be in the body: MLX's Metal front end declares the thread
  position attributes a body mentions): ``THREAD_ID``, ``BLOCK_ID``, ``NUM_THREADS``,
  ``SHARED`` (the on-chip memory qualifier), ``SHARED_PTR`` (a pointer into it),
  ``GLOBAL_PTR`` (a pointer into an output in device memory) and ``BARRIER()`` (which also
  orders the block's device-memory writes, as ``__syncthreads`` does);
* in the header: ``EXP``, ``EXP2`` (base 2), ``FAST_RCP`` (a reciprocal to about an ulp, the
  GPU's special-function unit rather than a correctly rounded division), ``TANH``, ``ABS``,
  ``ERF``, ``SHUFFLE_XOR(x, m)`` (``x`` of the lane
  whose index differs in the bits ``m``, within a 32-lane warp / SIMD group; every lane of the
  warp must call it) and ``DEVICE_FN`` (a helper function's qualifier).

:func:`build` turns the body into an ``mx.fast.metal_kernel`` (Apple GPUs) or an
``mx.fast.cuda_kernel`` (NVIDIA GPUs). :func:`gpu_backend` says which one the default device
runs. Metal cannot be compiled on the machines this package is developed on, so every fused
path checks itself at first use (:class:`SelfCheck`) and falls back to the reference path,
with one warning, if its kernel fails to build or disagrees with the reference.

``"emulated"`` is a third backend for tests on the CPU: each kernel module has a plain MLX
function with the kernel's exact inputs and outputs, which runs wherever MLX runs (slowly).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import NamedTuple

import mlx.core as mx

__all__ = ["BACKENDS", "gpu_backend", "KernelSource", "build", "launch", "emulate", "SelfCheck"]
__all__ += ["FusedSequence", "SHARED_MEMORY_LIMIT", "too_large_for_chip"]
__all__ += ["sequence_function", "first_difference", "check_against_steps", "per_step"]
__all__ += ["carried_states", "SEQUENCE_PREAMBLE", "reverse_steps", "first_input_primals"]
__all__ += ["states_of", "CHECK_BATCH"]

#: The backends a fused kernel runs on.
BACKENDS = ("cuda", "metal", "emulated")

_HEADERS = {
    "cuda": """
#define DEVICE_FN __device__ inline
#define EXP(x) expf(x)
#define EXP2(x) exp2f(x)
#define FAST_RCP(x) __fdividef(1.0f, (x))
#define TANH(x) tanhf(x)
#define ABS(x) fabsf(x)
#define ERF(x) erff(x)
#define SHUFFLE_XOR(x, m) __shfl_xor_sync(0xffffffffu, (x), (m))
""",
    "metal": """
#define DEVICE_FN inline
#define EXP(x) metal::exp(x)
#define EXP2(x) metal::exp2(x)
#define FAST_RCP(x) (1.0f / (x))
#define TANH(x) metal::precise::tanh(x)
#define ABS(x) metal::abs(x)
#define ERF(x) metal::precise::erf(x)
#define SHUFFLE_XOR(x, m) metal::simd_shuffle_xor((x), (ushort)(m))
""",
}

_BODY_PROLOGUES = {
    "cuda": """
#define THREAD_ID ((int)threadIdx.x)
#define BLOCK_ID ((int)blockIdx.x)
#define NUM_THREADS ((int)blockDim.x)
#define SHARED __shared__
#define SHARED_PTR float*
#define GLOBAL_PTR float*
#define BARRIER() __syncthreads()
""",
    "metal": """
#define THREAD_ID ((int)thread_position_in_threadgroup.x)
#define BLOCK_ID ((int)threadgroup_position_in_grid.x)
#define NUM_THREADS ((int)threads_per_threadgroup.x)
#define SHARED threadgroup
#define SHARED_PTR threadgroup float*
#define GLOBAL_PTR device float*
#define BARRIER() threadgroup_barrier(mem_flags::mem_threadgroup | mem_flags::mem_device)
""",
}

#: The on-chip memory a thread block may use, in bytes (Metal's limit, the smaller of the two).
SHARED_MEMORY_LIMIT = 32 * 1024


def too_large_for_chip(size: int) -> str | None:
    """Why a kernel needing ``size`` bytes of on-chip memory cannot run, or None if it fits."""
    if size > SHARED_MEMORY_LIMIT:
        return f"the cell needs {size:,} bytes of on-chip memory (limit {SHARED_MEMORY_LIMIT:,})"
    return None


_forced_backend: str | None = None


def gpu_backend() -> str | None:
    """The fused-kernel backend of the default device: ``"cuda"``, ``"metal"``, ``"emulated"``
    (inside :func:`emulate`), or None (the CPU: fused kernels do not run there)."""
    if _forced_backend is not None:
        return _forced_backend
    if mx.default_device().type != mx.gpu:
        return None
    if mx.metal.is_available():
        return "metal"
    if hasattr(mx, "cuda") and mx.cuda.is_available():
        return "cuda"
    return None


@contextlib.contextmanager
def emulate() -> Iterator[None]:
    """Within this context the fused paths run their plain-MLX emulation of the kernels (for
    tests on the CPU: the same inputs, outputs and custom gradients as on a GPU)."""
    global _forced_backend
    previous, _forced_backend = _forced_backend, "emulated"
    try:
        yield
    finally:
        _forced_backend = previous


_BUILT: dict[tuple[str, str], object] = {}


def launch(
    backend: str, source, template: list, blocks: int, threads: int, arrays: dict, shapes: dict
) -> dict:
    """Run a kernel of ``source`` on ``backend``: ``blocks`` thread blocks of ``threads``.

    Args:
        backend: ``"cuda"`` or ``"metal"``.
        source: A :class:`KernelSource`; its kernel is built on first use and kept.
        template: Compile-time constants, ``[(name, int), ...]``.
        blocks: Number of thread blocks (one per sequence of the batch).
        threads: Threads per block.
        arrays: The inputs by name (every name of ``source.inputs``).
        shapes: Output name -> shape, in the order of ``source.outputs``; outputs are float32
            and start at zero.

    Returns:
        Output name -> array.
    """
    key = (backend, source.name)
    if key not in _BUILT:
        _BUILT[key] = build(backend, source)
    outputs = _BUILT[key](
        inputs=[arrays[name] for name in source.inputs],
        template=template,
        grid=(blocks * threads, 1, 1),
        threadgroup=(threads, 1, 1),
        output_shapes=[shapes[name] for name in source.outputs],
        output_dtypes=[mx.float32] * len(source.outputs),
        init_value=0.0,
    )
    return dict(zip(source.outputs, outputs, strict=True))


class KernelSource(NamedTuple):
    """One kernel, for every backend: its name, input and output names, body and header."""

    name: str
    inputs: list
    outputs: list
    body: str
    header: str = ""


def build(backend: str, source: KernelSource):
    """The kernel object of ``source`` for ``backend`` (``"cuda"`` or ``"metal"``); MLX
    compiles it on its first call.

    The body is preceded by the backend's body prologue and the header by its header macros.
    """
    body = _BODY_PROLOGUES[backend] + source.body
    header = _HEADERS[backend] + source.header
    make = mx.fast.cuda_kernel if backend == "cuda" else mx.fast.metal_kernel
    return make(source.name, source.inputs, source.outputs, body, header=header)


class SelfCheck:
    """First-use checks of fused configurations: each configuration is built and compared with
    the reference path once; a failure (a build error or a mismatch) is remembered, warned
    about once and answered by the reference path from then on.

    Args:
        what: The kernel's name in warnings (``"CfC"``).
    """

    def __init__(self, what: str):
        self.what = what
        self._verdicts: dict[tuple, str | None] = {}

    def passed(self, key: tuple, backend: str, check: Callable[[], str | None]) -> bool:
        """True if configuration ``key`` on ``backend`` passed its check (run on first use).

        ``check()`` returns None if the fused path agrees with the reference, else a
        description of the disagreement; an exception it raises counts as a failure too.
        """
        key = (backend, *key)
        if key not in self._verdicts:
            try:
                problem = check()
            except Exception as error:  # a build or launch error: fall back, never crash
                problem = f"{type(error).__name__}: {error}"
            self._verdicts[key] = problem
            if problem is not None:
                warnings.warn(
                    f"ncps_mlx: the fused {self.what} kernel failed its first-use check on "
                    f"{backend} ({problem}); using the reference path for this configuration",
                    RuntimeWarning,
                    stacklevel=4,
                )
        return self._verdicts[key] is None

    def clear(self) -> None:
        """Forget every verdict (the next use of each configuration checks it again)."""
        self._verdicts.clear()


class FusedSequence:
    """A cell's fused path: calling it runs a whole sequence through the kernels of one
    configuration, after that configuration's first-use check (:class:`SelfCheck`), as the
    configuration's custom function (:meth:`function`).

    Args:
        what: The cell's name in warnings (``"CfC"``).
        names: The custom function's inputs, in order.
        config: ``cell -> cfg``, the kernels' compile-time configuration (hashable).
        check: ``(function, cfg, cell, batch) -> str | None``, the first-use check of
            ``function`` (:meth:`function` of the configuration) on ``batch`` sequences; it
            must build its own copy of the cell's constants (evaluating the call's own would
            cut them out of a gradient being traced around the call).
        primals: ``(cell, cfg, prepared, state, timespans, valid) -> list``, the custom
            function's inputs from the reference loop's.
        forward: ``(backend, cfg, arrays) -> states``, the forward kernel.
        gradients: ``(backend, cfg, arrays, states, cotangent) -> dict``, the VJP (see
            :func:`sequence_function`).
        variant: ``(cfg, batch) -> (variant, check batch)`` where the kernels' compile-time
            constants also depend on the batch: a variant is checked on its first use, on
            ``check batch`` sequences (a batch that gives the same variant). None: one
            variant, checked on :data:`CHECK_BATCH` sequences.
    """

    def __init__(self, what, names, config, check, primals, forward, gradients, variant=None):
        self.checks = SelfCheck(what)
        self.names, self.config, self.check, self.primals = names, config, check, primals
        self.forward, self.gradients = forward, gradients
        self.variant = variant or (lambda cfg, batch: ((), CHECK_BATCH))
        self._functions: dict[tuple, mx.custom_function] = {}

    def function(self, backend: str, cfg) -> mx.custom_function:
        """The custom function of configuration ``cfg`` on ``backend`` (built once)."""
        key = (backend, cfg)
        if key not in self._functions:
            self._functions[key] = sequence_function(
                self.names,
                lambda arrays: self.forward(backend, cfg, arrays),
                lambda arrays, states, cotangent: self.gradients(
                    backend, cfg, arrays, states, cotangent
                ),
            )
        return self._functions[key]

    def __call__(self, cell, prepared, state, timespans, valid, backend: str):
        """The states after every step, ``(T, B, N)``, by the fused kernels on ``backend``.

        Args:
            cell: A cell of this kernel with no reason to be unsupported.
            prepared: ``cell.prepare(x)`` of the time-major input.
            state: ``(B, N)`` initial state.
            timespans: A float or ``(T, B, 1)``.
            valid: None or ``(T, B, 1)`` bool (False: a padded step, which carries the state).
            backend: ``"cuda"``, ``"metal"`` or ``"emulated"``.

        Returns:
            The states, differentiable with respect to every input, or None if this
            configuration failed its first-use check (the caller runs the reference path).
        """
        cfg = self.config(cell)
        function = self.function(backend, cfg)
        variant, batch = self.variant(cfg, state.shape[0])
        if not self.checks.passed(
            (cfg, variant), backend, lambda: self.check(function, cfg, cell, batch)
        ):
            return None
        return function(*self.primals(cell, cfg, prepared, state, timespans, valid))


def first_input_primals(primals: Callable) -> Callable:
    """A :class:`FusedSequence`'s ``primals`` from ``primals(cfg, inputs, h0, timespans, valid,
    params)`` of a cell whose prepared input is one array (the CfCs')."""
    return lambda cell, cfg, prepared, h0, timespans, valid: primals(
        cfg, prepared.inputs[0], h0, timespans, valid, prepared.params
    )


def states_of(run_forward: Callable) -> Callable:
    """A :class:`FusedSequence`'s ``forward`` from a forward kernel returning its outputs by
    name, the states under ``"hs"`` (the CfCs')."""
    return lambda backend, cfg, arrays: run_forward(backend, cfg, arrays)["hs"]


def sequence_function(names: list[str], forward: Callable, gradients: Callable):
    """An ``mx.custom_function`` over the arrays ``names`` whose output is ``forward(arrays)``
    and whose VJP is ``gradients(arrays, output, cotangent)``, a dict of the inputs' gradients
    by name (an input it leaves out gets zeros: masks, placeholders)."""

    @mx.custom_function
    def run(*primals):
        return forward(dict(zip(names, primals, strict=True)))

    @run.vjp
    def run_vjp(primals, cotangent, output):
        found = gradients(dict(zip(names, primals, strict=True)), output, cotangent)
        return tuple(
            found.get(name, mx.zeros_like(a)) for name, a in zip(names, primals, strict=True)
        )

    return run


#: The lines every sequence kernel's body starts with, which define the thread, the block's
#: sequence ``b`` and the sizes ``steps`` and ``batch`` (from the int32 input ``sizes``).
SEQUENCE_PREAMBLE = """
  const int tid = THREAD_ID;
  const int nt = NUM_THREADS;
  const int b = BLOCK_ID;
  const int steps = sizes[0];
  const int batch = sizes[1];
"""


def reverse_steps(gradient: str, width: str, cotangents: str) -> str:
    """Kernel code that opens a backward kernel's walk over the steps in reverse.

    It zeroes the running gradient ``gradient`` (``width`` floats) and opens the loop over
    ``t`` (defining ``row``); at a padded step it adds that step's cotangent
    (``cotangents[row * width + j]``) to the gradient and skips the step, since padding carries
    the state and so carries its gradient. The caller writes the real step's body and closes
    the loop's brace. Needs :data:`SEQUENCE_PREAMBLE` and a ``valid`` input.
    """
    return f"""
  for (int j = tid; j < {width}; j += nt) {gradient}[j] = 0.0f;
  BARRIER();
  for (int t = steps - 1; t >= 0; --t) {{
    const int row = t * batch + b;
    if (valid[row] < 0.5f) {{  // a padded step carries the state: so does its gradient
      for (int j = tid; j < {width}; j += nt) {gradient}[j] += {cotangents}[row * {width} + j];
      BARRIER();
      continue;
    }}
"""


def carried_states(step: Callable, state: mx.array, valid: mx.array) -> mx.array:
    """The reference loop a first-use check compares with: ``state = step(t, state)`` at the
    real steps of ``valid`` ``(T, B, 1)``, carried at padded ones; the states ``(T, ...)``."""
    states = []
    for t in range(valid.shape[0]):
        state = mx.where(valid[t], step(t, state), state)
        states.append(state)
    return mx.stack(states)


#: Sequences a first-use check runs (:func:`check_against_steps`), unless a variant needs more.
CHECK_BATCH = 2


def check_against_steps(
    fused: Callable,
    step: Callable,
    input_widths: list[int],
    state_width: int,
    names,
    tolerance,
    batch: int = CHECK_BATCH,
) -> str | None:
    """A first-use check: a fused sequence function against a cell's own steps on a short
    random sequence (T = 3, ``batch`` sequences, the middle step of the first one padded,
    random timespans), comparing the states and the gradients of the inputs and the initial
    state.

    Args:
        fused: ``(inputs, h0, timespans, valid) -> states`` with ``inputs`` a list of
            ``(T, B, width)`` arrays, ``timespans`` ``(T, B, 1)``, ``valid`` ``(T, B, 1)`` bool.
        step: ``(inputs_t, h, timespans_t) -> h_new``: one step of the cell.
        input_widths: The widths of the inputs (uniform in [0, 1)).
        state_width: The state's width (normal).
        names: Names of the states, then of each input's gradient, then the state's.
        tolerance: See :func:`first_difference`.
        batch: Sequences of the check.

    Returns:
        A description of the first disagreement, or None.
    """
    keys = mx.random.split(mx.random.key(0), len(input_widths) + 3)
    steps = 3
    inputs = [
        mx.random.uniform(0.0, 1.0, (steps, batch, width), key=key)
        for width, key in zip(input_widths, keys, strict=False)
    ]
    h0 = mx.random.normal((batch, state_width), key=keys[-3])
    timespans = mx.random.uniform(0.5, 1.5, (steps, batch, 1), key=keys[-2])
    valid = (mx.arange(steps)[:, None] != 1) | (mx.arange(batch)[None, :] != 0)
    valid = valid[..., None]
    cotangent = mx.random.normal((steps, batch, state_width), key=keys[-1])

    def run_fused(*arrays):
        return fused(list(arrays[:-1]), arrays[-1], timespans, valid)

    def reference(*arrays):
        xs = arrays[:-1]
        return carried_states(
            lambda t, h: step([x[t] for x in xs], h, timespans[t]), arrays[-1], valid
        )

    primals = [*inputs, h0]
    got = mx.vjp(run_fused, primals, [cotangent])
    want = mx.vjp(reference, primals, [cotangent])
    return first_difference((*got[0], *got[1]), (*want[0], *want[1]), names, tolerance)


def first_difference(got, want, names, tolerance: float) -> str | None:
    """The first of the paired arrays ``got``/``want`` whose largest difference, relative to
    the largest value of ``want``, exceeds ``tolerance``, described; None if all agree."""
    for name, a, b in zip(names, got, want, strict=True):
        error = (mx.abs(a - b).max() / (mx.abs(b).max() + 1e-6)).item()
        if not error <= tolerance:
            return f"{name} differ from the reference path by {error:.1e} (relative)"
    return None


def per_step(timespans, valid, steps: int, batch: int) -> tuple[mx.array, mx.array]:
    """The loop's timespans (a float or ``(T, B, 1)``) and padding mask (None or ``(T, B, 1)``
    bool) as the kernels' ``(T, B)`` float arrays ``ts`` and ``valid`` (1 at real steps)."""
    if isinstance(timespans, mx.array):
        timespans = timespans.reshape(steps, batch)
    else:
        timespans = mx.full((steps, batch), timespans)
    valid = mx.ones((steps, batch)) if valid is None else valid.reshape(steps, batch)
    return timespans, valid
