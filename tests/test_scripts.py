"""The example and benchmark scripts run (short settings), so the README's commands stay true."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ncps_mlx.hybrid import HybridBuilder

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run(*args):
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_advanced_wirings_example_trains_every_wiring():
    out = run("examples/advanced_wirings.py", "--steps", "3")
    for name in ("AutoNCP", "MultiScaleWiring", "HierarchicalWiring", "AttentionWiring"):
        assert name in out
    assert out.count("loss") == 4


def table_rows(out: str) -> list[str]:
    """The data rows of the Markdown tables in ``out`` (header and separator rows left out)."""
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    return [line for line in rows if not line.startswith("| workload |")]


def test_wiring_build_benchmark_prints_a_row_per_workload():
    from ncps_mlx.apps.bench.wirings import WORKLOADS

    out = run("benchmarks/wiring_build.py", "--quick", "--repeats", "1")
    assert len(table_rows(out)) == len(WORKLOADS)


def test_cells_benchmark_prints_a_row_per_workload():
    from ncps_mlx.apps.bench.cells import WORKLOADS

    out = run("benchmarks/cells.py", "--quick", "--repeats", "1")
    assert len(table_rows(out)) == 2 * len(WORKLOADS)  # forward and train step


def test_hybrid_benchmark_prints_a_row_per_layer_type():
    out = run("benchmarks/hybrid.py", "--quick", "--repeats", "1")
    rows = table_rows(out)
    for name in HybridBuilder.layer_types():
        assert any(row.startswith(f"| {name} T=") for row in rows)
    assert any(row.startswith("| Mamba block T=") for row in rows)


def test_hybrid_patterns_example_trains_each_pattern():
    out = run(
        "examples/hybrid_patterns.py", "--steps", "2", "--patterns", "ssm_stack", "jamba_like"
    )
    assert "ssm_stack" in out and "jamba_like" in out


def test_irregular_sine_example_compares_with_and_without_timespans(tmp_path):
    out = run("examples/irregular_sine.py", "--epochs", "1", "--out-dir", str(tmp_path))
    lines = out.splitlines()
    for label in ("with timespans", "without timespans"):
        assert any(line.startswith(label) and "test MSE" in line for line in lines)
    assert any(line.startswith("without/with timespans") and "ratio" in line for line in lines)
    assert (tmp_path / "irregular_sine.png").is_file()


def test_digits_example_trains_both_cells(tmp_path):
    out = run("examples/digits_classification.py", "--epochs", "1", "--out-dir", str(tmp_path))
    for cell in ("cfc", "ltc"):
        assert f"{cell.upper()}: " in out and "test accuracy" in out
        assert (tmp_path / f"digits_{cell}_training.png").is_file()


def test_wiring_gallery_example_lists_every_wiring(tmp_path):
    from ncps_mlx.wirings.gallery import example_wirings

    out = run("examples/wiring_gallery.py", "--layout", "shell", "--out-dir", str(tmp_path))
    for name in example_wirings():
        assert name in out
    assert (tmp_path / "wiring_gallery_shell.png").is_file()


def test_seq2seq_example_decodes_with_every_strategy():
    out = run("examples/seq2seq_reversal.py", "--epochs", "1")
    for strategy in ("greedy", "beam search", "nucleus sampling"):
        assert any(line.startswith(strategy) and "%" in line for line in out.splitlines())


def test_streaming_example_streams_a_liquid_and_a_hybrid_model():
    out = run("examples/streaming_inference.py", "--scale", "0.01")
    assert out.count("steps/s") == 2 and "max |difference|" in out


def test_conv_transformer_example_compares_poolings():
    out = run("examples/conv_transformer_encoder.py", "--epochs", "1")
    assert "pooling=mean" in out and "pooling=attention" in out and "test accuracy" in out


def test_quantized_inference_example_prints_a_row_per_variant_and_explains_cpu_speed():
    import mlx.core as mx

    out = run("examples/quantized_inference.py", "--length", "4", "--repeats", "1")
    for variant in ("float16", "bfloat16", "8-bit", "4-bit + float16"):
        assert sum(line.startswith(f"| {variant:<16}|") for line in out.splitlines()) == 2
    explained = "Why some rows are slower than float32" in out
    assert explained == (mx.default_device().type == mx.DeviceType.cpu)
    if explained:  # the measured ratios of both models, and where the formats are fast
        note = " ".join(out.split("Why some rows")[1].split())
        assert re.search(r"4-bit \+ float16: CfC \d+\.\dx, hybrid \d+\.\dx", note)
        assert "Apple GPU" in note


def test_cell_comparison_example_prints_a_row_per_cell():
    out = run("examples/cell_comparison.py", "--epochs", "1")
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    for label in ("CfC", "LTC", "CT-RNN", "CT-GRU", "ODE-LSTM", "LSTM"):
        assert any(row.startswith(f"| {label}") for row in rows)
    assert len(rows) == 1 + 6  # header + one row per cell
