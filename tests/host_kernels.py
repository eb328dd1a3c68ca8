"""Run the fused kernels' real source on the CPU: each thread of a block is a host thread.

The kernel body (:mod:`ncps_mlx.kernels.backend`'s CUDA header macros, the kernel's header
and body) is compiled with the host C++ compiler into a shared library, with the backend
macros mapped onto host threads: ``BARRIER()`` is a ``std::barrier`` of the block's threads,
``SHARED`` arrays are shared by them, ``SHUFFLE_XOR`` exchanges values within a warp of 32
threads through a warp barrier. Blocks run one after another. Slow, but it runs exactly the
code a GPU runs, so the tests on the CPU catch indexing, race and gradient errors in the
source itself (the ``emulated`` backend only checks the algorithm).

:func:`host_launch` has :func:`ncps_mlx.kernels.backend.launch`'s signature; :func:`running`
patches it into the kernel modules and forces the backend name ``"host"``. It reads its inputs
into numpy, which evaluates them: inside a traced gradient (``nn.value_and_grad`` of a model)
that cuts parameters that reach a kernel directly out of the gradient, so tests run the
kernels (or their custom function) on evaluated arrays, outside any trace.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlx.core as mx
import numpy as np

from ncps_mlx.kernels import backend

_DIRECTORY = Path(tempfile.mkdtemp(prefix="ncps_host_kernels_"))


def _usable_compiler() -> str | None:
    """``g++`` if it compiles C++20 ``std::barrier`` (the runner's block barrier), else None
    (the tests that need it skip)."""
    compiler = shutil.which("g++")
    if compiler is None:
        return None
    probe = _DIRECTORY / "probe.cpp"
    probe.write_text(
        "#include <barrier>\nint main() { std::barrier<> b(1); b.arrive_and_wait(); }\n"
    )
    result = subprocess.run(
        [compiler, "-std=c++20", "-pthread", str(probe), "-o", str(_DIRECTORY / "probe")],
        capture_output=True,
    )
    return compiler if result.returncode == 0 else None


COMPILER = _usable_compiler()

_PRELUDE = """
#include <algorithm>
#include <barrier>
#include <cmath>
#include <thread>
#include <vector>
using std::max;
using std::min;
static thread_local int host_thread;
static int host_block;
static int host_threads;
static std::barrier<>* host_barrier;
static std::vector<std::barrier<>*> host_warp_barriers;
static float host_warp_values[1024];

static float host_shuffle_xor(float x, int mask) {
  std::barrier<>* warp = host_warp_barriers[host_thread / 32];
  host_warp_values[host_thread] = x;
  warp->arrive_and_wait();
  const float y = host_warp_values[host_thread ^ mask];
  warp->arrive_and_wait();
  return y;
}
"""

_MACROS = """
#define THREAD_ID host_thread
#define BLOCK_ID host_block
#define NUM_THREADS host_threads
#define SHARED static
#define SHARED_PTR float*
#define GLOBAL_PTR float*
#define BARRIER() host_barrier->arrive_and_wait()
#undef SHUFFLE_XOR
#define SHUFFLE_XOR(x, m) host_shuffle_xor((x), (m))
#undef FAST_RCP
#define FAST_RCP(x) (1.0f / (x))
#define DEVICE_FN static inline
#define __device__
"""

_LIBRARIES: dict[str, ctypes.CDLL] = {}


def _translation_unit(source, template, types: dict) -> str:
    parameters = [f"const {types[name]}* {name}" for name in source.inputs]
    parameters += [f"float* {name}" for name in source.outputs]
    unpack = [
        f"({'const ' if i < len(source.inputs) else ''}{types.get(name, 'float')}*)p[{i}]"
        for i, name in enumerate([*source.inputs, *source.outputs])
    ]
    constants = "".join(f"  constexpr int {name} = {value};\n" for name, value in template)
    cuda_header = backend._HEADERS["cuda"].replace("#define DEVICE_FN __device__ inline", "")
    return f"""{_PRELUDE}
{cuda_header}
{_MACROS}
{source.header}
static void kernel_body({", ".join(parameters)}) {{
{constants}
{source.body}
}}

extern "C" void run(void** p, int blocks, int threads) {{
  for (int b = 0; b < blocks; ++b) {{
    host_block = b;
    host_threads = threads;
    std::barrier<> block_barrier(threads);
    host_barrier = &block_barrier;
    std::vector<std::barrier<>*> warps;
    for (int w = 0; w < (threads + 31) / 32; ++w) warps.push_back(new std::barrier<>(32));
    host_warp_barriers = warps;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {{
      pool.emplace_back([=] {{
        host_thread = t;
        kernel_body({", ".join(unpack)});
      }});
    }}
    for (auto& thread : pool) thread.join();
    for (auto* warp : warps) delete warp;
  }}
}}
"""


def _library(source, template, types: dict) -> ctypes.CDLL:
    code = _translation_unit(source, template, types)
    key = hashlib.sha1(code.encode()).hexdigest()[:16]
    if key not in _LIBRARIES:
        path = _DIRECTORY / f"{source.name}_{key}.cpp"
        path.write_text(code)
        result = subprocess.run(
            [
                COMPILER,
                "-std=c++20",
                "-O1",
                "-shared",
                "-fPIC",
                "-pthread",
                "-w",
                str(path),
                "-o",
                str(path.with_suffix(".so")),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"host compilation of {source.name} failed:\n{result.stderr}")
        _LIBRARIES[key] = ctypes.CDLL(str(path.with_suffix(".so")))
    return _LIBRARIES[key]


def host_launch(backend_name, source, template, blocks, threads, arrays, shapes) -> dict:
    """:func:`ncps_mlx.kernels.backend.launch` on host threads (``backend_name`` is ignored)."""
    inputs = []
    types = {}
    for name in source.inputs:
        a = np.array(mx.stop_gradient(arrays[name]))
        is_int = np.issubdtype(a.dtype, np.integer)
        inputs.append(np.ascontiguousarray(a, dtype=np.int32 if is_int else np.float32))
        types[name] = "int" if is_int else "float"
    outputs = [np.zeros(shapes[name], np.float32) for name in source.outputs]
    pointers = (ctypes.c_void_p * (len(inputs) + len(outputs)))(
        *[a.ctypes.data for a in [*inputs, *outputs]]
    )
    _library(source, template, types).run(pointers, blocks, threads)
    return {name: mx.array(a) for name, a in zip(source.outputs, outputs, strict=True)}


@contextlib.contextmanager
def running() -> Iterator[None]:
    """Within this context the fused paths run their kernels' source on host threads (the
    backend is named ``"host"``)."""
    modules = [
        module
        for name, module in sys.modules.items()
        if name.startswith("ncps_mlx.kernels.")
        and getattr(module, "launch", None) is backend.launch
    ]
    previous = backend._forced_backend
    backend._forced_backend = "host"
    for module in modules:
        module.launch = host_launch
    try:
        yield
    finally:
        backend._forced_backend = previous
        for module in modules:
            module.launch = backend.launch
