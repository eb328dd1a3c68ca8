"""Where a fused train step's time goes, on the default GPU: the model's forward, its
``value_and_grad``, a whole train step (with Adam), Adam alone, and the forward and backward
kernel alone and the custom function's VJP alone (backward kernels and weight products)
on the same inputs.

    python benchmarks/fused_breakdown.py

Best of 20 after two warm-up calls; milliseconds. B = 32, T = 256, F = 16.
"""

import os

os.environ.setdefault("MLX_ENABLE_TF32", "0")

import time  # noqa: E402

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import mlx.optimizers as optim  # noqa: E402

from ncps_mlx import LTC, CfC, kernels  # noqa: E402
from ncps_mlx.cells import CfCCell, WiredCfCCell  # noqa: E402
from ncps_mlx.kernels import cfc, ltc, wired_cfc  # noqa: E402
from ncps_mlx.wirings import AutoNCP, FullyConnected  # noqa: E402

BATCH, STEPS, FEATURES = 32, 256, 16


def best_ms(function, repeats: int = 20) -> float:
    function()
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return round(min(times) * 1e3, 3)


def kernel_times(cell, prepared, h0, backend: str) -> dict:
    """The forward kernel alone and the custom function's VJP alone (the backward kernels
    and the weight products)."""
    if type(cell) is CfCCell:
        module, fused, cfg = cfc, cfc.fused_cfc, cfc.CfCKernelConfig.of(cell)
        primals = cfc._primals(cfg, prepared.inputs[0], h0, 1.0, None, prepared.params)
    elif type(cell) is WiredCfCCell:
        module, fused = wired_cfc, wired_cfc.fused_wired_cfc
        cfg = wired_cfc.WiredCfCKernelConfig.of(cell)
        primals = wired_cfc._primals(cfg, prepared.inputs[0], h0, 1.0, None, prepared.params)
    else:
        module, fused, cfg = ltc, ltc.fused_ltc, ltc.LTCKernelConfig.of(cell)
        primals = ltc._primals(cell, prepared.inputs, h0, 1.0, None, prepared.params)
    arrays = dict(zip(module._PRIMALS, primals, strict=True))
    mx.eval(arrays)
    states = fused.forward(backend, cfg, arrays)
    cotangent = mx.ones_like(states)
    mx.eval(states, cotangent)
    return {
        "forward kernel": best_ms(lambda: mx.eval(fused.forward(backend, cfg, arrays))),
        "vjp": best_ms(lambda: mx.eval(fused.gradients(backend, cfg, arrays, states, cotangent))),
    }


def measure(model, x, backend: str) -> dict:
    """The figures of one model (``kernel="fused"``) on ``x`` ``(B, T, F)``."""
    mx.eval(model.parameters())
    target = mx.random.normal((*x.shape[:2], model.output_size))
    value_and_grad = nn.value_and_grad(model, lambda m: nn.losses.mse_loss(m(x)[0], target))
    optimizer = optim.Adam(1e-3)

    def train_step():
        loss, grads = value_and_grad(model)
        optimizer.update(model, grads)
        mx.eval(loss, model.parameters(), optimizer.state)

    _, grads = value_and_grad(model)
    mx.eval(grads)

    def adam_only():
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)

    row = {
        "model forward": best_ms(lambda: mx.eval(model(x)[0])),
        "value_and_grad": best_ms(lambda: mx.eval(value_and_grad(model))),
        "train step": best_ms(train_step),
        "adam only": best_ms(adam_only),
    }
    cell = model.rnn_cell
    prepared = cell.prepare(x.swapaxes(0, 1))
    h0 = mx.zeros((x.shape[0], model.state_size))
    return {**row, **kernel_times(cell, prepared, h0, backend)}


def main() -> None:
    backend = kernels.gpu_backend()
    if backend is None:
        raise SystemExit("fused_breakdown.py needs a GPU (Metal or CUDA)")
    x = mx.random.normal((BATCH, STEPS, FEATURES))
    models = {
        "CfC(16, 64)": CfC(FEATURES, 64, kernel="fused"),
        "CfC AutoNCP(64, 8)": CfC(FEATURES, AutoNCP(64, 8), kernel="fused"),
        "LTC AutoNCP(64, 8)": LTC(FEATURES, AutoNCP(64, 8), kernel="fused"),
        "LTC FullyConnected(64)": LTC(FEATURES, FullyConnected(64), kernel="fused"),
    }
    for label, model in models.items():
        print(label, measure(model, x, backend), flush=True)


if __name__ == "__main__":
    main()
