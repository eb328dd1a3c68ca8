"""The cells benchmark family: rows against several references (ncps eager, torch.compile, JAX),
their Markdown, the kernel path and TF32 setting it records, and its scale table. Nothing here
asserts a speed."""

import os

import numpy as np
import pytest

from ncps_mlx import LTC, CfC, kernels, sequence, wirings
from ncps_mlx.apps.bench import cells, report
from ncps_mlx.apps.bench.timing import Timing, installed
from ncps_mlx.kernels.ltc import AUTO_MAX_NEURONS

MORE = ["torch.compile(ncps)", "JAX lax.scan"]
ON_CPU = kernels.gpu_backend() is None


def finished(family: dict) -> dict:
    """``family`` with what :func:`report.family_main` adds."""
    return {**family, "peak_rss_mb": 100.0, "mlx_peak_mb": None, "wall_s": 1.0}


def test_a_row_shows_a_time_and_a_ratio_for_each_further_reference():
    ours = Timing(0.010, 3)
    more = [
        report.reference_entry(MORE[0], ours, Timing(0.040, 3)),
        report.reference_entry(MORE[1], ours, note="not installed"),
    ]
    row = report.row("CfC forward", ours, Timing(0.020, 3), more_references=more)
    assert row["ratio"] == pytest.approx(0.5)
    assert row["more_references"] == [
        {"name": MORE[0], "seconds": 0.040, "runs": 3, "ratio": pytest.approx(0.25), "note": None},
        {"name": MORE[1], "seconds": None, "runs": 0, "ratio": None, "note": "not installed"},
    ]
    family = report.family_record("cells", "t", "s", "ncps eager", [row], more_references=MORE)
    lines = report.family_markdown(finished(family)).splitlines()
    header = (
        "| workload | ncps_mlx | reference | ratio | torch.compile(ncps) | ratio | JAX lax.scan "
    )
    assert header + "| ratio | ops/step (matmuls) | MLX MB | notes |" in lines
    assert "|---|---|---|---|---|---|---|---|---|---|---|" in lines
    assert (
        "| CfC forward | 10 ms | 20 ms | 0.5 | 40 ms | 0.25 | not installed | - | - | - |  |"
        in lines
    )


def test_a_family_without_further_references_keeps_its_seven_columns():
    row = report.row("build", Timing(1.0, 1), None, "not installed")
    assert row["more_references"] == []
    text = report.family_markdown(finished(report.family_record("w", "t", "s", "r", [row])))
    assert (
        "| workload | ncps_mlx | reference | ratio | ops/step (matmuls) | MLX MB | notes |" in text
    )
    assert "| build | 1 s | not installed | - | - | - |  |" in text


def test_a_reference_without_a_time_needs_a_note():
    with pytest.raises(ValueError, match="'JAX' has neither a time nor a note"):
        report.reference_entry("JAX", Timing(1.0, 1))


def test_the_scale_table_shows_times_train_memory_and_why_a_kernel_did_not_run():
    rows = [
        report.scale_row("CfC B=256", "fused", None, None, None, "fused: needs a GPU"),
        report.scale_row("CfC B=256", "reference", Timing(0.5, 3), Timing(2.0, 2), 1234.4, "loop"),
    ]
    assert rows[1]["train_runs"] == 2 and rows[1]["train_mlx_peak_mb"] == 1234.4
    scale = {"settings": "ncps_mlx alone", "rows": rows}
    text = report.family_markdown(
        finished(report.family_record("c", "t", "s", "r", [], scale=scale))
    )
    assert "Scale: ncps_mlx alone." in text
    assert "| workload | kernel | forward | train step | train step MLX MB | notes |" in text
    assert "| CfC B=256 | `fused` | - | - | - | fused: needs a GPU |" in text
    assert "| CfC B=256 | `reference` | 500 ms | 2 s | 1234 | loop |" in text


def test_family_main_hands_the_family_its_own_options(tmp_path):
    seen = {}

    def run(quick, repeats, flavour):
        seen.update(quick=quick, repeats=repeats, flavour=flavour)
        scale_rows = [report.scale_row("big", "reference", Timing(1.0, 1), Timing(2.0, 1), 50.0)]
        rows = [report.row("small", Timing(1.0, 1), None, "n", mlx_mb=5.0)]
        scale = {"settings": "s", "rows": scale_rows}
        return report.family_record("x", "t", "s", "r", rows, scale=scale)

    def add_arguments(parser):
        parser.add_argument("--flavour", default="plain")

    argv = ["--quick", "--flavour", "salty", "--json", str(tmp_path / "x.json")]
    record = report.family_main(run, argv, add_arguments)
    assert seen == {"quick": True, "repeats": 3, "flavour": "salty"}
    assert record["mlx_peak_mb"] == 50.0  # the scale table's train-step peak counts too
    assert (tmp_path / "x.json").is_file()


@pytest.mark.skipif(not ON_CPU, reason="the expected paths are the CPU's")
def test_kernel_path_names_the_path_and_why():
    assert cells.kernel_path(CfC(16, 8)) == "reference path (no GPU)"
    assert (
        cells.kernel_path(CfC(16, 8, kernel="reference")) == "reference path (kernel='reference')"
    )
    with pytest.raises(ValueError, match="not a GPU"):
        cells.kernel_path(CfC(16, 8, kernel="fused"))
    with kernels.emulate():  # a GPU's decisions, on the CPU
        assert cells.kernel_path(CfC(16, 8)) == "fused kernel (emulated)"
        assert cells.kernel_path(CfC(16, 8, mixed_memory=True)) == (
            "reference path (mixed_memory=True)"
        )
        neurons = AUTO_MAX_NEURONS + 8
        wiring = wirings.Random(neurons, 4, sparsity_level=1 - 4 / neurons, random_seed=1)
        assert cells.kernel_path(LTC(16, wiring, sparse=True)) == (
            "reference path (kernel='auto': the loop is faster here)"
        )


def test_a_failed_torch_compile_becomes_the_references_note(monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("ncps")

    def broken(module, **options):
        raise RuntimeError("no C++ compiler found\nlong details")

    monkeypatch.setattr(torch, "compile", broken)
    options = {"reference": cells.import_reference(), "torch_compile": "cell", "use_jax": False}
    model = cells.build(sequence, wirings, "CfC", 8)
    x, target = np.zeros((2, 3, cells.FEATURES), np.float32), np.zeros((2, 3, 8), np.float32)
    eager, note, compiled, expected = cells.time_torch(options, "CfC", 8, model, x, target, 1, 1.0)
    assert note is None and eager[0].seconds > 0 and eager[1].seconds > 0
    failed = "torch.compile failed: no C++ compiler found"
    assert compiled == [("ncps, torch.compile(cell)", failed)] * 2
    np.testing.assert_allclose(np.array(model(x)[0]), expected, atol=1e-5)  # weights copied


@pytest.mark.slow
def test_cells_compares_every_reference_records_tf32_and_adds_a_scale_table(monkeypatch):
    monkeypatch.setattr(cells, "WORKLOADS", cells.WORKLOADS[:1])
    record = cells.run(quick=True, repeats=1, use_jax=True, scale=True)
    tf32 = os.environ.get("MLX_ENABLE_TF32", "1")
    assert record["environment"]["MLX_ENABLE_TF32"] == tf32
    assert f"MLX_ENABLE_TF32={tf32}" in record["settings"]
    assert record["more_references"] == MORE
    forward, train = record["rows"]
    for row in (forward, train):
        compiled, jax = row["more_references"]
        assert compiled["note"] == "off"  # the default under --quick
        if installed("jax"):
            assert jax["ratio"] == pytest.approx(row["ours_s"] / jax["seconds"])
        else:
            assert jax["note"] == "not installed"
    if ON_CPU:
        assert forward["notes"].startswith("reference path (no GPU)")
    if installed("jax"):
        difference = float(forward["notes"].rpartition("JAX ")[2])
        assert difference < 1e-5
    scale = record["scale"]["rows"]
    assert [r["kernel"] for r in scale] == ["fused", "reference"] * len(cells.SCALE_WORKLOADS)
    for r in scale:
        if ON_CPU and r["kernel"] == "fused":
            assert r["notes"] == "fused: needs a GPU" and r["train_s"] is None
        else:
            assert r["train_s"] > 0 and r["train_mlx_peak_mb"] > 0
    text = report.family_markdown(finished(record))
    assert "| LTC Random(4096, 8), fan-in 16, sparse B=2 T=8 | `reference` |" in text
