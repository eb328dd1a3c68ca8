"""Fused recurrent kernels (ncps_mlx.kernels): selection, the custom gradient, the first-use
self-check and its fallback.

On the CPU the fused path runs the plain-MLX emulation of the kernels (``kernels.emulate()``):
the same inputs, outputs and gradient assembly as on a GPU. On a GPU (Metal or CUDA) the same
comparisons run the real kernels. Every comparison is with the reference loop (the cell's own
step), at float32 tolerance; on CUDA the reference's matmuls must not run in TF32, so the
suite's ``conftest.py`` sets ``MLX_ENABLE_TF32=0`` before MLX starts (it only matters on a GPU).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import warnings

import host_kernels  # noqa: E402
import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import mlx.optimizers as optim  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

from ncps_mlx import LTC, CfC, kernels  # noqa: E402
from ncps_mlx.kernels import (
    backend,  # noqa: E402
    matvec_source,  # noqa: E402
)
from ncps_mlx.kernels import cfc as fused  # noqa: E402
from ncps_mlx.kernels import ltc as fused_ltc  # noqa: E402
from ncps_mlx.wirings import AutoNCP, FullyConnected, Random  # noqa: E402

RTOL = 1e-5
GPU = kernels.gpu_backend()
BACKENDS = ["emulated"] + ([GPU] if GPU else [])


@pytest.fixture(autouse=True)
def fresh_checks():
    """Each test starts with no first-use verdicts and the default kernel choice."""
    fused.fused_cfc.checks.clear()
    yield
    fused.fused_cfc.checks.clear()
    kernels.set_default_kernel("auto")


@contextlib.contextmanager
def on(backend):
    """A context in which the fused path runs on ``backend``; a fallback to the reference
    path (its first-use warning) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with kernels.emulate() if backend == "emulated" else contextlib.nullcontext():
            yield


def relative_error(a, b) -> float:
    return float(mx.abs(a - b).max() / (mx.abs(b).max() + 1e-12))


def inputs(batch=3, steps=7, features=5, hidden=6, seed=0):
    """``x``, timespans, an initial state and a ragged padding mask."""
    rng = np.random.default_rng(seed)
    x = mx.array(rng.normal(size=(batch, steps, features)).astype(np.float32))
    timespans = mx.array(rng.uniform(0.2, 2.0, (batch, steps)).astype(np.float32))
    hx = mx.array(rng.normal(size=(batch, hidden)).astype(np.float32))
    mask = np.ones((batch, steps), bool)
    mask[0, 5:] = False  # trailing padding
    mask[2, :2] = False  # leading padding
    mask[1, 3] = False  # a gap
    return x, timespans, hx, mx.array(mask)


def loss_and_gradients(model, x, timespans, hx, mask):
    """A loss that weights every output and the final state differently, its gradients with
    respect to the parameters, and those of ``x``, ``timespans`` and ``hx``."""

    def loss(m, x, timespans, hx):
        y, h = m(x, hx, timespans=timespans, mask=mask)
        weights = mx.arange(y.size, dtype=mx.float32).reshape(y.shape) / y.size
        return (y * weights).sum() + (h * h).sum()

    value, grads = nn.value_and_grad(model, loss)(model, x, timespans, hx)
    inputs_grads = mx.grad(lambda *a: loss(model, *a), argnums=(0, 1, 2))(x, timespans, hx)
    return value, dict(tree_flatten(grads)), inputs_grads


def assert_fused_matches_reference(model, data, backend):
    """The loss, every parameter's gradient and those of ``x``, timespans and ``hx`` of the
    fused path on ``backend`` equal the reference loop's within ``RTOL``."""
    model.kernel = "reference"
    want_value, want_params, want_inputs = loss_and_gradients(model, *data)
    model.kernel = "fused"
    with on(backend):
        value, params, grads = loss_and_gradients(model, *data)
    assert abs(value.item() - want_value.item()) <= RTOL * abs(want_value.item())
    assert params.keys() == want_params.keys()
    for name in params:
        assert relative_error(params[name], want_params[name]) <= RTOL, name
    for name, got, want in zip(("x", "timespans", "hx"), grads, want_inputs, strict=True):
        assert relative_error(got, want) <= RTOL, name


CONFIGS = [
    {"mode": mode, "backbone_layers": layers, "activation": activation}
    for mode in ("default", "no_gate", "pure")
    for layers, activation in ((1, "lecun_tanh"), (0, "tanh"), (2, "gelu"), (3, "silu"))
] + [{"backbone_layers": 2, "activation": "relu"}, {"proj_size": 3}]


# ---------------------------------------------------------------------------- selection
def test_kernel_choice_is_validated_with_the_argument_named():
    with pytest.raises(ValueError, match="kernel must be one of"):
        CfC(4, 6, kernel="fast")
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernels.set_default_kernel("cuda")
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernels.set_default_kernel(None)


def test_kernel_choice_is_part_of_the_config():
    assert CfC(4, 6, kernel="reference")._config["kernel"] == "reference"
    assert CfC(4, 6)._config["kernel"] is None


@pytest.mark.skipif(GPU is not None, reason="the default device is a GPU")
def test_auto_runs_the_reference_loop_on_the_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(fused, "fused_cfc", lambda *a: calls.append(a))
    model = CfC(5, 6)
    model(inputs()[0])
    assert calls == [] and kernels.gpu_backend() is None


@pytest.mark.skipif(GPU is not None, reason="the default device is a GPU")
def test_fused_on_the_cpu_raises_naming_the_device():
    with pytest.raises(ValueError, match="not a GPU"):
        CfC(5, 6, kernel="fused")(inputs()[0])


def test_the_global_default_applies_to_modules_without_a_choice(monkeypatch):
    calls = []
    original = fused.fused_cfc
    monkeypatch.setattr(fused, "fused_cfc", lambda *a: calls.append(1) or original(*a))
    x = inputs()[0]
    with kernels.emulate():
        CfC(5, 6)(x)
        kernels.set_default_kernel("reference")
        CfC(5, 6)(x)
        CfC(5, 6, kernel="fused")(x)
    assert calls == [1, 1]


@pytest.mark.parametrize(
    "build, option",
    [
        (lambda: CfC(5, 6, mixed_memory=True), "mixed_memory"),
        (lambda: LTC(5, AutoNCP(10, 3), solver="rk4"), "solver='rk4'"),
        (lambda: CfC(5, 6).astype(mx.float16), "float16"),
        (lambda: CfC(5, 6, backbone_dropout=0.1).train(), "backbone_dropout"),
    ],
)
def test_unsupported_configurations_raise_under_fused_and_fall_back_under_auto(build, option):
    model = build()
    x = inputs()[0]
    with kernels.emulate():
        model.kernel = "auto"
        model(x)  # the reference loop, silently
        model.kernel = "fused"
        with pytest.raises(ValueError, match=option):
            model(x)


# ---------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: "-".join(map(str, o.values())))
def test_fused_equals_the_reference_loop_with_gradients(backend, options):
    mx.random.seed(1)
    model = CfC(5, 6, backbone_units=9, **options)
    assert_fused_matches_reference(model, inputs(), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_sequences", [True, False])
def test_fused_outputs_and_state_follow_the_reference_layouts(backend, return_sequences):
    model = CfC(5, 6, return_sequences=return_sequences, batch_first=False)
    x = inputs()[0].transpose(1, 0, 2)
    model.kernel = "reference"
    want = model(x)
    model.kernel = "fused"
    with on(backend):
        got = model(x)
        unbatched = model(x[:, 0])
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and relative_error(a, b) <= RTOL
    model.kernel = "reference"
    for a, b in zip(unbatched, model(x[:, 0]), strict=True):
        assert a.shape == b.shape and relative_error(a, b) <= RTOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_optimizer_step_through_the_fused_path_equals_the_reference_step(backend):
    x, _, _, _ = inputs()
    target = mx.ones((3, 7, 6))

    def step(kernel):
        mx.random.seed(3)
        model = CfC(5, 6, kernel=kernel)
        optimizer = optim.Adam(1e-2)
        loss = nn.value_and_grad(model, lambda m: ((m(x)[0] - target) ** 2).mean())
        for _ in range(3):
            _, grads = loss(model)
            optimizer.update(model, grads)
        return dict(tree_flatten(model.parameters()))

    want = step("reference")
    with on(backend):
        got = step("fused")
    for name in want:
        assert relative_error(got[name], want[name]) <= 1e-4, name


LTC_WIRINGS = {
    "autoncp-6-unfolds": (lambda: AutoNCP(12, 3, seed=1), 6),
    "random-3-unfolds": (lambda: Random(10, 4, sparsity_level=0.5, random_seed=2), 3),
    "autoncp-1-unfold": (lambda: AutoNCP(8, 2, seed=4), 1),
    "autoncp-dense-layout": (lambda: AutoNCP(10, 3, seed=5), 3),
}


def ltc_for(name: str, features: int = 5) -> LTC:
    """The LTC of :data:`LTC_WIRINGS` entry ``name`` (the fan-in layout unless the name says
    dense)."""
    build, unfolds = {**LTC_WIRINGS, **HOST_LTC_WIRINGS}[name]
    return LTC(features, build(), sparse="dense" not in name, ode_unfolds=unfolds)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", LTC_WIRINGS)
def test_fused_ltc_equals_the_reference_loop_with_gradients(backend, name):
    mx.random.seed(2)
    model = ltc_for(name)
    assert_fused_matches_reference(model, inputs(hidden=model.rnn_cell.num_neurons), backend)


def assert_source_equals_emulation(kernel, cfg, primals, cotangent, occupancy=None):
    """The custom function of ``kernel`` (a :class:`~ncps_mlx.kernels.backend.FusedSequence`)
    with its kernels' source run on host threads equals the one with the emulation: output
    and every input's gradient.
    ``occupancy`` (name -> 0/1 array) masks gradients where padding may differ."""
    mx.eval(primals)  # outside any trace: the host kernels evaluate their inputs
    with host_kernels.running():
        got = mx.vjp(kernel.function("host", cfg), primals, [cotangent])
    want = mx.vjp(kernel.function("emulated", cfg), primals, [cotangent])
    assert relative_error(got[0][0], want[0][0]) <= RTOL, "output"
    for name, a, b in zip(kernel.names, got[1], want[1], strict=True):
        keep = (occupancy or {}).get(name, 1.0)
        assert relative_error(a * keep, b * keep) <= RTOL, name


@pytest.mark.skipif(host_kernels.COMPILER is None, reason="no C++ compiler (g++)")
@pytest.mark.parametrize(
    "options, weights",
    [(options, "resident") for options in CONFIGS[::3]]
    + [(options, "streamed") for options in CONFIGS[1::6]],
    ids=lambda o: "-".join(map(str, o.values())) if isinstance(o, dict) else o,
)
def test_the_cfc_kernel_source_equals_its_emulation_on_host_threads(monkeypatch, options, weights):
    if weights == "streamed":  # no registers to spare: every product reads memory each step
        monkeypatch.setattr(matvec_source, "REGISTER_FILE", 0)
    mx.random.seed(6)
    cell = CfC(5, 6, backbone_units=9, **options).rnn_cell
    x, timespans, hx, mask = inputs()
    time_major = lambda a: a.swapaxes(0, 1)[..., None]  # noqa: E731
    prepared = cell.prepare(x.swapaxes(0, 1))
    cfg = fused.CfCKernelConfig.of(cell)
    primals = fused._primals(
        cfg, prepared.inputs[0], hx, time_major(timespans), time_major(mask), prepared.params
    )
    cotangent = mx.random.normal((x.shape[1], x.shape[0], cfg.hidden))
    assert_source_equals_emulation(fused.fused_cfc, cfg, primals, cotangent)


#: Wirings for the source on host threads: also one whose backward keeps its scratch and its
#: synapse gradients in device memory (too large for on-chip memory and registers).
HOST_LTC_WIRINGS = {
    **LTC_WIRINGS,
    "random-600-in-memory": (lambda: Random(600, 4, sparsity_level=0.98, random_seed=3), 6),
}


def assert_ltc_source_equals_emulation(cell):
    """:func:`assert_source_equals_emulation` for the fused LTC of ``cell`` on the data of
    :func:`inputs` (a batch of 3), the weights' gradients compared at occupied slots."""
    mx.random.seed(5)
    x, timespans, hx, mask = inputs(hidden=cell.num_neurons)
    time_major = lambda a: a.swapaxes(0, 1)[..., None]  # noqa: E731
    prepared = cell.prepare(x.swapaxes(0, 1))
    primals = fused_ltc._primals(
        cell, prepared.inputs, hx, time_major(timespans), time_major(mask), prepared.params
    )
    occupied = fused_ltc.kernel_table(cell).valid.reshape(-1)
    cotangent = mx.random.normal((x.shape[1], x.shape[0], cell.num_neurons))
    cfg = fused_ltc.LTCKernelConfig.of(cell)
    assert_source_equals_emulation(
        fused_ltc.fused_ltc, cfg, primals, cotangent, {"w": occupied, "w_erev": occupied}
    )


@pytest.mark.skipif(host_kernels.COMPILER is None, reason="no C++ compiler (g++)")
@pytest.mark.parametrize(
    "name, synapses",
    [(name, "resident") for name in HOST_LTC_WIRINGS]
    + [(name, "streamed") for name in list(LTC_WIRINGS)[:2]],
)
def test_the_ltc_kernel_source_equals_its_emulation_on_host_threads(monkeypatch, name, synapses):
    if synapses == "streamed":  # no registers to spare: parameters and step inputs from memory
        monkeypatch.setattr(fused_ltc, "REGISTER_FILE", 0)
    cell = ltc_for(name).rnn_cell
    cfg = fused_ltc.LTCKernelConfig.of(cell)
    if name.endswith("in-memory"):
        assert not cfg.scratch_on_chip() and dict(cfg.template("backward", 3))["ACC"] == 0
    else:
        assert cfg.resident("forward") == (synapses == "resident")
    for kernel in ("forward", "backward"):
        assert dict(cfg.template(kernel, 3))["AHD"] == (synapses == "resident")
    assert_ltc_source_equals_emulation(cell)


#: Layouts of the LTC backward on a dense FullyConnected(20) (3 outgoing synapses a thread):
#: the module constants patched, and the ``SPLIT``, ``ACC`` and on-chip scratch expected at
#: a batch of 3.
SPLIT_LAYOUTS = {
    "registers-suffice": ({}, (1, 1, True)),
    "split-2": ({"MAX_REGISTER_SYNAPSES": 2}, (2, 1, True)),
    "split-4-scratch-in-memory": (
        {"MAX_REGISTER_SYNAPSES": 1, "SHARED_MEMORY_LIMIT": 0},
        (4, 1, False),
    ),
    "past-the-block-limit": (
        {"MAX_REGISTER_SYNAPSES": 2, "SPLIT_MAX_BLOCKS": 5},
        (1, 0, True),
    ),
    "no-split-fits": ({"MAX_REGISTER_SYNAPSES": 0}, (1, 0, True)),
}


@pytest.mark.skipif(host_kernels.COMPILER is None, reason="no C++ compiler (g++)")
@pytest.mark.parametrize("layout", SPLIT_LAYOUTS)
def test_the_split_ltc_backward_source_equals_its_emulation_on_host_threads(monkeypatch, layout):
    patches, expected = SPLIT_LAYOUTS[layout]
    for name, value in patches.items():
        monkeypatch.setattr(fused_ltc, name, value)
    cell = LTC(5, FullyConnected(20), sparse=False, ode_unfolds=3).rnn_cell
    cfg = fused_ltc.LTCKernelConfig.of(cell)
    template = dict(cfg.template("backward", 3))
    assert (template["SPB"], template["NPG"]) == (3, 1)
    assert (template["SPLIT"], template["ACC"], cfg.scratch_on_chip()) == expected
    assert_ltc_source_equals_emulation(cell)


def test_the_ltc_backward_splits_only_where_registers_need_it_and_blocks_are_idle():
    fully_connected = fused_ltc.LTCKernelConfig(64, 64, 6, 64)  # 16 synapses a thread
    assert [fully_connected.split(batch) for batch in (1, 32, 132, 133, 256)] == [2, 2, 2, 1, 1]
    assert fully_connected.split(None) == 1
    assert fused_ltc.LTCKernelConfig(64, 23, 6, 30).split(32) == 1  # 8: registers suffice
    assert fused_ltc.LTCKernelConfig(128, 64, 6, 64).split(32) == 4  # 32
    assert fused_ltc.LTCKernelConfig(4096, 16, 6, 40).split(1) == 1  # 640: none fits


# ---------------------------------------------------------------------------- self-check
def assert_caught_once_and_answered_by_the_reference(model, x, warning: str):
    """``model`` (``kernel="fused"``, with a wrong kernel patched in) warns ``warning`` on its
    first call only, and both calls answer exactly what the reference loop does."""
    with kernels.emulate():
        with pytest.warns(RuntimeWarning, match=warning):
            got = model(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again = model(x)  # no second warning
    model.kernel = "reference"
    want = model(x)
    for a, b, c in zip(got, again, want, strict=True):
        assert relative_error(a, c) == 0.0 and relative_error(b, c) == 0.0


def test_a_kernel_that_disagrees_is_caught_once_and_the_reference_answers(monkeypatch):
    wrong = lambda backend, cfg, arrays: arrays["xproj"][..., :6]  # noqa: E731
    monkeypatch.setattr(fused.fused_cfc, "forward", wrong)
    model = CfC(5, 6, backbone_layers=0, mode="pure", kernel="fused")
    warning = r"fused CfC kernel failed .* on emulated .*states"
    assert_caught_once_and_answered_by_the_reference(model, inputs()[0], warning)


def test_a_kernel_that_fails_to_build_falls_back_with_the_error_named(monkeypatch):
    def broken(backend, cfg, arrays):
        raise RuntimeError("[cuda_kernel] compilation failed: expected ';'")

    monkeypatch.setattr(fused.fused_cfc, "forward", broken)
    model = CfC(5, 6, kernel="fused")
    with kernels.emulate(), pytest.warns(RuntimeWarning, match="compilation failed"):
        got = model(inputs()[0])
    model.kernel = "reference"
    assert relative_error(got[0], model(inputs()[0])[0]) == 0.0


def test_the_self_check_runs_once_per_configuration(monkeypatch):
    checks = []
    original = fused.fused_cfc.check
    monkeypatch.setattr(fused.fused_cfc, "check", lambda *a: checks.append(a[1]) or original(*a))
    x = inputs()[0]
    with kernels.emulate():
        for _ in range(2):
            CfC(5, 6, kernel="fused")(x)
            CfC(5, 6, mode="pure", kernel="fused")(x)
    assert len(checks) == 2 and checks[0] != checks[1]


def test_a_batch_that_changes_the_ltc_backward_split_is_checked_on_its_first_use(monkeypatch):
    """The LTC backward's compile-time ``SPLIT`` depends on the batch, so each split is a kernel
    of its own: its first use is checked, on a batch that gives the same split."""
    monkeypatch.setattr(fused_ltc, "SPLIT_MAX_BLOCKS", 6)
    batches = []
    original = fused_ltc.fused_ltc.check
    monkeypatch.setattr(
        fused_ltc.fused_ltc, "check", lambda *a: batches.append(a[3]) or original(*a)
    )
    model = LTC(3, FullyConnected(40), kernel="fused")  # 40 synapses a source: split 2
    cfg = fused_ltc.LTCKernelConfig.of(model.rnn_cell)
    assert [cfg.split(batch) for batch in (2, 3, 4, 7)] == [2, 2, 1, 1]
    x = mx.random.normal((7, 4, 3))
    with kernels.emulate():
        for batch in (2, 3, 4, 7):
            model(x[:batch])
    assert batches == [2, 4]  # split 2, then split 1 on 6 // 2 + 1 = 4 sequences


# ---------------------------------------------------------------------------- the CUDA source
NVCC = shutil.which("nvcc")


def cuda_translation_unit(source, template) -> str:
    """The kernel as MLX's CUDA front end lays it out (header, signature with the inputs and
    outputs, the template's constants, body), for compiling with nvcc alone."""
    arguments = [f"const {'int' if n == 'sizes' else 'float'}* {n}" for n in source.inputs]
    arguments += [f"float* {n}" for n in source.outputs]
    constants = "".join(f"  constexpr int {name} = {value};\n" for name, value in template)
    return (
        backend._HEADERS["cuda"]
        + source.header
        + f"\n__global__ void {source.name}({', '.join(arguments)}) {{\n{constants}"
        + backend._BODY_PROLOGUES["cuda"]
        + source.body
        + "\n}\n"
    )


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize(
    "source, template",
    [
        (fused.FORWARD, fused.CfCKernelConfig(64, 128, 128, 2, 256, 0, 0).template("forward")),
        (fused.FORWARD, fused.CfCKernelConfig(256, 128, 128, 1, 1024, 0, 0).template("forward")),
        (fused.BACKWARD, fused.CfCKernelConfig(64, 128, 128, 2, 256, 0, 0).template("backward")),
        (fused.BACKWARD, fused.CfCKernelConfig(64, 256, 1, 0, 256, 2, 4).template("backward")),
        (fused_ltc.FORWARD, fused_ltc.LTCKernelConfig(64, 23, 6, 30).template("forward")),
        (fused_ltc.FORWARD, fused_ltc.LTCKernelConfig(4096, 16, 6, 40).template("forward")),
        (
            fused_ltc.BACKWARDS[True],
            fused_ltc.LTCKernelConfig(64, 23, 6, 30).template("backward", 32),
        ),
        (
            fused_ltc.BACKWARDS[True],
            fused_ltc.LTCKernelConfig(64, 64, 6, 64).template("backward", 32),
        ),
        (
            fused_ltc.BACKWARDS[False],
            fused_ltc.LTCKernelConfig(4096, 16, 1, 40).template("backward", 32),
        ),
    ],
    ids=[
        "cfc-forward",
        "cfc-forward-streamed",
        "cfc-backward",
        "cfc-backward-no-backbone",
        "ltc-forward",
        "ltc-forward-large",
        "ltc-backward-on-chip",
        "ltc-backward-split",
        "ltc-backward-in-memory",
    ],
)
def test_the_cuda_kernels_compile_with_nvcc(tmp_path, source, template):
    result = compile_with_nvcc(tmp_path, source, template)
    assert result.returncode == 0, result.stderr


def compile_with_nvcc(tmp_path, source, template, *options) -> subprocess.CompletedProcess:
    """nvcc's run on the kernel's translation unit (sm_90, with ``options``)."""
    path = tmp_path / f"{source.name}.cu"
    path.write_text(cuda_translation_unit(source, template))
    return subprocess.run(
        [NVCC, "-c", "-arch=sm_90", *options, str(path), "-o", str(tmp_path / "kernel.o")],
        capture_output=True,
        text=True,
    )


#: LTC configurations whose register use is checked: a dense FullyConnected(64) (its
#: backward split in two at a batch of 32), AutoNCP(64, 8), and 4,096 neurons.
REGISTER_CHECKED_LTCS = {
    "fully-connected-64": fused_ltc.LTCKernelConfig(64, 64, 6, 64),
    "autoncp-64-8": fused_ltc.LTCKernelConfig(64, 23, 6, 30),
    "4096-neurons": fused_ltc.LTCKernelConfig(4096, 16, 6, 40),
}


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("kernel", ["forward", "backward"])
@pytest.mark.parametrize("name", REGISTER_CHECKED_LTCS)
def test_the_ltc_kernels_fit_a_multiprocessors_registers_without_spills(tmp_path, name, kernel):
    cfg = REGISTER_CHECKED_LTCS[name]
    source = (
        fused_ltc.FORWARD if kernel == "forward" else fused_ltc.BACKWARDS[cfg.scratch_on_chip()]
    )
    result = compile_with_nvcc(tmp_path, source, cfg.template(kernel, 32), "-Xptxas", "-v")
    assert result.returncode == 0, result.stderr
    registers = int(re.search(r"Used (\d+) registers", result.stderr).group(1))
    assert registers * cfg.threads(kernel) <= 65536, registers
    assert " 0 bytes stack frame, 0 bytes spill stores," in result.stderr, result.stderr


def test_auto_keeps_the_loop_for_large_ltcs_where_fused_is_slower(monkeypatch):
    monkeypatch.setattr(fused_ltc, "AUTO_MAX_NEURONS", 8)
    monkeypatch.setattr(fused_ltc, "AUTO_MAX_NEURONS_WIDE_BATCH", 10)
    monkeypatch.setattr(fused_ltc, "AUTO_WIDE_BATCH", 3)
    calls = []
    monkeypatch.setattr(fused_ltc, "fused_ltc", lambda *a: calls.append(a[2].shape[0]))
    model = LTC(5, AutoNCP(10, 3), sparse=True)
    x = inputs(batch=3)[0]
    with kernels.emulate():
        model(x[:2])  # auto: 10 neurons > 8 at a batch of 2, the loop
        model(x)  # 10 neurons at a batch of 3: fused
        model.kernel = "fused"
        model(x[:2])
    assert calls == [3, 2]
    monkeypatch.setattr(fused_ltc, "AUTO_MAX_NEURONS_WIDE_BATCH", 9)
    assert "10 neurons at a batch of 3" in fused_ltc.slower_than_reference(model.rnn_cell, 3)
