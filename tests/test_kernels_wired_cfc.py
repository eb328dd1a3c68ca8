"""The fused wired CfC (ncps_mlx.kernels.wired_cfc): numerics against the reference loop (the
cell's own step), the first-use self-check and its fallback, the limits, the CUDA source.

On the CPU the fused path runs the plain-MLX emulation of the kernels, and the kernels' own
source runs on host threads (``tests/host_kernels.py``, where a C++ compiler is) against that
emulation; on a GPU the real kernels run too. Helpers are those of ``tests/test_kernels.py``.
"""

from __future__ import annotations

import subprocess

import host_kernels  # noqa: E402
import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import pytest  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402
from test_kernels import (  # noqa: E402
    BACKENDS,
    NVCC,
    RTOL,
    assert_caught_once_and_answered_by_the_reference,
    assert_fused_matches_reference,
    cuda_translation_unit,
    inputs,
    on,
    relative_error,
)

from ncps_mlx import CfC, kernels  # noqa: E402
from ncps_mlx.kernels import wired_cfc as fused  # noqa: E402
from ncps_mlx.wirings import NCP, AutoNCP, FullyConnected, MultiScaleWiring  # noqa: E402

WIRINGS = {
    "autoncp": lambda: AutoNCP(12, 3, seed=1),
    "autoncp-40": lambda: AutoNCP(40, 4, seed=2),
    "ncp": lambda: NCP(4, 3, 2, 3, 2, 2, 2, seed=5),
    "fully-connected": lambda: FullyConnected(6, 3),  # one layer, motor neurons 0..2 of 6
    "multiscale": lambda: MultiScaleWiring(3, 3, 2, 2, time_scales=(1.0, 4.0, 16.0), seed=3),
}
MODES = ("default", "no_gate", "pure")


@pytest.fixture(autouse=True)
def fresh_checks():
    """Each test starts with no first-use verdicts and the default kernel choice."""
    fused.fused_wired_cfc.checks.clear()
    yield
    fused.fused_wired_cfc.checks.clear()
    kernels.set_default_kernel("auto")


def wired_cfc(name, mode="default", **options):
    mx.random.seed(4)
    wiring = WIRINGS[name]()
    return CfC(5, wiring, mode=mode, **options), wiring.units


# ---------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", WIRINGS)
def test_fused_wired_cfc_equals_the_reference_loop_with_gradients(backend, mode, name):
    """Per-row timespans, a ragged padding mask and a given initial state: the loss, every
    parameter's gradient and those of x, the timespans and hx."""
    model, units = wired_cfc(name, mode)
    assert_fused_matches_reference(model, inputs(hidden=units), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["autoncp", "multiscale"])
def test_fused_wired_cfc_without_sequences_or_with_a_projection_equals_the_reference(backend, name):
    model, units = wired_cfc(name, "no_gate", return_sequences=False, proj_size=4)
    assert_fused_matches_reference(model, inputs(hidden=units, seed=2), backend)


def parameter_gradients(model, x, timespans, mask):
    """Outputs, final state and every parameter's gradient of a loss on both."""

    def loss(m):
        y, h = m(x, timespans=timespans, mask=mask)
        return (y * mx.arange(y.size).reshape(y.shape) / y.size).sum() + (h * h).sum(), (y, h)

    (_, (y, h)), grads = nn.value_and_grad(model, loss)(model)
    return y, h, dict(tree_flatten(grads))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_fused_wired_cfc_with_a_float_timespan_equals_the_reference(backend, mode):
    model, units = wired_cfc("multiscale", mode)
    x, _, _, mask = inputs(hidden=units, seed=3)
    model.kernel = "reference"
    want = parameter_gradients(model, x, 0.7, mask)
    model.kernel = "fused"
    with on(backend):
        got = parameter_gradients(model, x, 0.7, mask)
    for a, b in zip(got[:2], want[:2], strict=True):
        assert a.shape == b.shape and relative_error(a, b) <= RTOL
    assert got[2].keys() == want[2].keys()
    for name in want[2]:
        assert relative_error(got[2][name], want[2][name]) <= RTOL, name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_sequences", [True, False])
def test_fused_wired_cfc_outputs_are_the_motor_neurons_in_the_reference_layouts(
    backend, return_sequences
):
    model, units = wired_cfc("autoncp", return_sequences=return_sequences, batch_first=False)
    x = inputs(hidden=units)[0].transpose(1, 0, 2)
    model.kernel = "reference"
    want = model(x), model(x[:, 0])
    model.kernel = "fused"
    with on(backend):
        got = model(x), model(x[:, 0])  # batched and unbatched
    for pair_got, pair_want in zip(got, want, strict=True):
        for a, b in zip(pair_got, pair_want, strict=True):
            assert a.shape == b.shape and relative_error(a, b) <= RTOL


def kernel_arrays(name, mode):
    """The custom function's inputs for a wired CfC on a padded batch with per-row timespans
    and time scales, its states, and a cotangent of them: the backward kernel's inputs."""
    model, units = wired_cfc(name, mode)
    x, timespans, hx, mask = inputs(hidden=units, seed=5)
    cell, cfg = model.rnn_cell, fused.WiredCfCKernelConfig.of(model.rnn_cell)
    prepared = cell.prepare(x.transpose(1, 0, 2))
    spans, valid = timespans.T[..., None], mask.T[..., None]
    primals = fused._primals(cfg, prepared.inputs[0], hx, spans, valid, prepared.params)
    arrays = dict(zip(fused._PRIMALS, primals, strict=True))
    states = fused._run_forward("emulated", cfg, arrays)["hs"]
    cotangent = mx.random.normal(states.shape, key=mx.random.key(6))
    return cfg, dict(arrays, hs=states, dhs=cotangent)


@pytest.mark.skipif(host_kernels.COMPILER is None, reason="no C++ compiler")
@pytest.mark.parametrize("weights", ["resident", "streamed"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["ncp", "fully-connected", "multiscale"])
def test_the_kernel_source_computes_what_its_emulation_computes(monkeypatch, name, mode, weights):
    """The forward and backward kernels' source, run on host threads, write what the plain-MLX
    emulation (checked against the reference loop above) computes, output by output, with the
    weights in registers or (no registers to spare) read from memory at every step."""
    if weights == "streamed":
        monkeypatch.setattr(fused, "REGISTER_FILE", 0)
    cfg, arrays = kernel_arrays(name, mode)
    assert cfg.resident("forward") == cfg.resident("backward") == (weights == "resident")
    assert_kernels_write_what_the_emulation_computes(cfg, arrays)


@pytest.mark.skipif(host_kernels.COMPILER is None, reason="no C++ compiler")
@pytest.mark.parametrize("mode", MODES)
def test_a_forward_lane_group_runs_several_neurons_where_the_block_is_too_small(monkeypatch, mode):
    """With one warp per block, the forward's 40 neurons get single-lane groups that run two
    neurons each (``NPG`` = 2)."""
    monkeypatch.setattr(fused, "FORWARD_THREADS", 32)
    monkeypatch.setattr(fused, "MAX_FORWARD_THREADS", 32)
    cfg, arrays = kernel_arrays("autoncp-40", mode)
    assert (cfg.lanes(), cfg.forward_threads(), cfg.neurons_per_group()) == (1, 32, 2)
    assert_kernels_write_what_the_emulation_computes(cfg, arrays)


def assert_kernels_write_what_the_emulation_computes(cfg, arrays):
    """The forward (recording) and backward kernels on host threads write what the emulation
    computes, output by output."""
    want_record = fused._run_forward("emulated", cfg, arrays, record=True)
    want = fused._run_backward("emulated", cfg, dict(arrays, heads=want_record["heads"]))
    with host_kernels.running():
        record = fused._run_forward("host", cfg, arrays, record=True)
        got = fused._run_backward("host", cfg, dict(arrays, heads=want_record["heads"]))
    for output in want_record:
        assert relative_error(record[output], want_record[output]) <= RTOL, output
    assert set(want) <= set(got)
    for output in want:
        assert got[output].shape == want[output].shape, output
        assert relative_error(got[output], want[output]) <= RTOL, output


# ---------------------------------------------------------------------------- selection
def test_auto_runs_the_wired_cfc_fused_where_a_kernel_runs(monkeypatch):
    calls = []
    original = fused.fused_wired_cfc
    monkeypatch.setattr(fused, "fused_wired_cfc", lambda *a: calls.append(1) or original(*a))
    model, units = wired_cfc("autoncp")
    with kernels.emulate():
        model(inputs(hidden=units)[0])
    assert calls == [1]


def test_a_wiring_too_large_for_on_chip_memory_raises_under_fused_and_falls_back_under_auto():
    model = CfC(3, FullyConnected(900, 2))  # 4 * (2 * 900 + 8 * 900) bytes > 32 KiB
    x = mx.zeros((1, 2, 3))
    with kernels.emulate():
        model(x)  # auto: the reference loop, silently
        model.kernel = "fused"
        with pytest.raises(ValueError, match="36,000 bytes of on-chip memory"):
            model(x)


# ---------------------------------------------------------------------------- self-check
def test_a_wired_kernel_that_disagrees_is_caught_once_and_the_reference_answers(monkeypatch):
    wrong = lambda backend, cfg, arrays: arrays["xproj"][..., : cfg.neurons]  # noqa: E731
    monkeypatch.setattr(fused.fused_wired_cfc, "forward", wrong)
    model, units = wired_cfc("fully-connected", "pure", kernel="fused")
    warning = r"fused wired CfC kernel failed .* on emulated \(states differ"
    assert_caught_once_and_answered_by_the_reference(model, inputs(hidden=units)[0], warning)


def test_a_wired_gradient_that_disagrees_is_caught_by_the_self_check(monkeypatch):
    original = fused._run_backward

    def wrong(backend, cfg, arrays):
        grads = original(backend, cfg, arrays)
        return dict(grads, dh0=grads["dh0"] * 2.0)

    monkeypatch.setattr(fused, "_run_backward", wrong)
    model, units = wired_cfc("autoncp", kernel="fused")
    with kernels.emulate(), pytest.warns(RuntimeWarning, match="state gradient differ"):
        model(inputs(hidden=units)[0])


# ---------------------------------------------------------------------------- the CUDA source
@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize(
    "source, cfg",
    [
        (fused.FORWARD, fused.WiredCfCKernelConfig((38, 18, 8), 0)),
        (fused.BACKWARD, fused.WiredCfCKernelConfig((38, 18, 8), 0)),
        (fused.FORWARD, fused.WiredCfCKernelConfig((64,), 2)),
        (fused.BACKWARD, fused.WiredCfCKernelConfig((64,), 2)),
    ],
    ids=["forward", "backward", "forward-pure-one-layer", "backward-pure-one-layer"],
)
def test_the_wired_cuda_kernels_compile_with_nvcc(tmp_path, source, cfg):
    path = tmp_path / f"{source.name}.cu"
    direction = "forward" if source is fused.FORWARD else "backward"
    path.write_text(cuda_translation_unit(source, cfg.template(direction, record=True)))
    result = subprocess.run(
        [NVCC, "-c", "-arch=sm_90", str(path), "-o", str(tmp_path / "kernel.o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
