"""The benchmark suite (``ncps-mlx bench``, ``benchmarks/run_all.py``): its files, timers, op
counter and command-line errors. Nothing here asserts a speed."""

import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from ncps_mlx.apps import cli
from ncps_mlx.apps.bench import mamba, report, suite, timing

ROOT = Path(__file__).resolve().parent.parent

ROW_KEYS = {
    "workload",
    "ours_s",
    "ours_runs",
    "reference_s",
    "reference_runs",
    "ratio",
    "reference_note",
    "ops_per_step",
    "matmuls_per_step",
    "mlx_peak_mb",
    "notes",
    "more_references",
}
FAMILY_KEYS = {"family", "title", "settings", "reference", "rows", "peak_rss_mb", "wall_s"}
MACHINE_KEYS = {"platform", "cpu_count", "python", "versions", "mlx_default_device", "date"}


def check_report(out: Path, families: list[str]) -> dict:
    """bench.json has the documented keys; bench.md has a table row per JSON row."""
    data = json.loads((out / "bench.json").read_text())
    assert {"command", "quick", "repeats", "machine", "families", "wall_s"} <= set(data)
    assert MACHINE_KEYS <= set(data["machine"])
    assert {"mlx", "torch", "ncps", "mlx-lm"} <= set(data["machine"]["versions"])
    assert [f["family"] for f in data["families"]] == families
    text = (out / "bench.md").read_text()
    assert report.RATIO_CONVENTION in text
    for family in data["families"]:
        assert "error" not in family, family.get("stderr_tail")
        assert FAMILY_KEYS <= set(family) and family["rows"]
        assert f"## {family['family']}: " in text
        for row in family["rows"]:
            assert set(row) == ROW_KEYS
            assert row["ours_s"] > 0 and row["ours_runs"] >= 1
            assert (row["reference_s"] is None) == (row["reference_note"] is not None)
            if row["ratio"] is not None:
                assert row["ratio"] == pytest.approx(row["ours_s"] / row["reference_s"])
            assert f"| {row['workload']} |" in text
            check_more_references(family, row)
    return data


def check_more_references(family: dict, row: dict) -> None:
    """Each further reference of a row has a time and its ratio, or a note saying why not."""
    entries = row["more_references"]
    assert [e["name"] for e in entries] == family.get("more_references", [])
    for entry in entries:
        assert (entry["seconds"] is None) == (entry["note"] is not None)
        if entry["seconds"] is not None:
            assert entry["ratio"] == pytest.approx(row["ours_s"] / entry["seconds"])


def test_bench_command_writes_markdown_and_json_for_one_family(tmp_path, capsys):
    argv = ["bench", "--quick", "--only", "wirings", "--repeats", "1", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    data = check_report(tmp_path, ["wirings"])
    assert data["quick"] is True and data["repeats"] == 1
    assert capsys.readouterr().out.startswith((tmp_path / "bench.md").read_text())


@pytest.mark.slow
def test_run_all_quick_runs_every_family(tmp_path):
    command = [sys.executable, "benchmarks/run_all.py", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    data = check_report(tmp_path, list(suite.FAMILIES))
    assert data["command"].endswith("benchmarks/run_all.py --quick --out " + str(tmp_path))
    cells = data["families"][0]["rows"]
    assert len(cells) == 8 and all(r["ops_per_step"] for r in cells[::2])


def test_missing_reference_is_reported_as_not_installed(monkeypatch):
    monkeypatch.setattr(mamba, "installed", lambda *names: False)
    record = mamba.run(quick=True, repeats=1)
    assert [r["reference_note"] for r in record["rows"]] == ["not installed"]
    assert record["rows"][0]["ratio"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--only", "cells,nonsense"], "--only: unknown family nonsense; choose from cells"),
        (["--only", ","], "--only: unknown family ','"),
        (["--repeats", "0"], "--repeats must be >= 1, got 0"),
    ],
)
def test_bad_bench_arguments_give_one_line_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ncps-mlx bench: error: {message}")


def test_parse_families_keeps_order_and_drops_repeats():
    assert suite.parse_families(None) == ["cells", "sparse", "wirings", "hybrid", "mamba"]
    assert suite.parse_families("mamba, cells,mamba") == ["mamba", "cells"]


class FakeClock:
    """``perf_counter`` for timed calls that take ``durations`` seconds (start, end, ...)."""

    def __init__(self, durations):
        ends = np.cumsum(durations)
        starts = np.concatenate([[0.0], ends[:-1]])
        self.times = iter(np.stack([starts, ends], axis=1).ravel())

    def perf_counter(self):
        return float(next(self.times))


def test_best_of_warms_up_once_then_returns_the_fastest_call(monkeypatch):
    monkeypatch.setattr(timing, "time", FakeClock([0.3, 0.1, 0.2]))
    calls = []
    result = timing.best_of(lambda: calls.append(1), repeats=3, budget_s=10.0)
    assert len(calls) == 4  # warm-up + 3 timed
    assert result == timing.Timing(pytest.approx(0.1), 3)


def test_best_of_stops_timing_once_the_budget_is_spent(monkeypatch):
    monkeypatch.setattr(timing, "time", FakeClock([2.0, 3.0, 1.0]))
    calls = []
    result = timing.best_of(lambda: calls.append(1), repeats=3, budget_s=4.0)
    assert len(calls) == 3 and result == timing.Timing(pytest.approx(2.0), 2)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        timing.best_of(lambda: None, repeats=0)


def test_peak_memory_readers_see_a_large_allocation():
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched, so resident
    assert timing.peak_rss_mb() >= block.nbytes / 2**20
    timing.mlx_peak_mb(reset=True)
    mx.eval(mx.ones((1024, 1024)) + 1)  # 4 MiB each
    assert timing.mlx_peak_mb() >= 4


def test_format_seconds_picks_the_unit():
    assert report.format_seconds(None) == "-"
    assert report.format_seconds(5e-5) == "50 µs"
    assert report.format_seconds(0.01234) == "12.3 ms"
    assert report.format_seconds(12.5) == "12.5 s"


def evaluated(*arrays):
    mx.eval(*arrays)
    return arrays


def test_count_primitives_counts_each_operation_of_a_small_graph():
    x, w = evaluated(mx.ones((2, 3)), mx.ones((3, 3)))
    counts = timing.count_primitives(mx.tanh(x @ w + 1.0))
    assert counts == {"Matmul": 1, "Broadcast": 1, "Add": 1, "Tanh": 1}


def test_ops_per_step_counts_one_step_of_a_recurrence():
    x, w = evaluated(mx.ones((2, 3)), mx.ones((3, 3)))

    def graph_of(steps, step=lambda h: mx.tanh(h @ w + x)):
        h = x
        for _ in range(steps):
            h = step(h)
        return h

    assert timing.ops_per_step(graph_of) == timing.OpCount(primitives=3, matmuls=1)
    fused = mx.compile(lambda h: mx.tanh(h @ w) * 2.0 + h)  # a matmul and one fused kernel
    assert timing.ops_per_step(lambda t: graph_of(t, fused)) == timing.OpCount(2, 1)
    quadratic = timing.ops_per_step(lambda t: graph_of(t * t, mx.tanh))
    assert quadratic is None


def test_torch_device_is_cpu_unless_the_suite_says_cuda(monkeypatch):
    monkeypatch.delenv(timing.TORCH_DEVICE_VARIABLE, raising=False)
    assert timing.torch_device() == "cpu"
    calls = []
    function = timing.torch_synchronized(None, lambda: calls.append(1))
    function()
    assert calls == [1]  # on the CPU the workload runs unchanged, no synchronisation
    monkeypatch.setenv(timing.TORCH_DEVICE_VARIABLE, "cuda")
    assert timing.torch_device() == "cuda"


def test_run_suite_refuses_an_unknown_torch_device(tmp_path):
    with pytest.raises(ValueError, match="torch_device must be 'cpu' or 'cuda'"):
        suite.run_suite(["mamba"], quick=True, out=tmp_path, torch_device="tpu")


def test_ncps_passes_that_need_more_memory_than_the_device_has_are_skipped(monkeypatch):
    from ncps_mlx.apps.bench import sparse

    monkeypatch.setattr(sparse, "_reference_memory_bytes", lambda: 24 * 2**30)
    assert sparse._ncps_memory_shortfall(1024) is None  # ~4 GB
    note = sparse._ncps_memory_shortfall(4096)  # ~60 GB
    assert note.startswith("skipped: ncps needs ~60 GB, the device has 24 GB")
