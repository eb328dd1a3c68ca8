"""The whole benchmark suite: every family in its own process, one Markdown and one JSON file.

    ncps-mlx bench [--quick] [--out DIR] [--only FAMILY[,FAMILY]] [--repeats N]
    python benchmarks/run_all.py [same options]

Each family (:data:`FAMILIES`) runs as ``python -m ncps_mlx.apps.bench.<family> --json PATH``, so
its peak memory (the process's maximum RSS) is its own and a crash in one family does not stop
the others. The suite writes ``DIR/bench.md`` (also printed) and ``DIR/bench.json``: machine
information, the exact command and every family's record (see :mod:`ncps_mlx.apps.bench.report`).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from .report import RATIO_CONVENTION, family_markdown
from .timing import TORCH_DEVICE_VARIABLE

#: Family name -> what it measures (modules ``ncps_mlx.apps.bench.<name>``).
FAMILIES = {
    "cells": "LTC/CfC forward and train step vs ncps (PyTorch)",
    "sparse": "LTC at N = 1k/4k/16k, fixed fan-in: sparse vs dense vs ncps",
    "wirings": "wiring construction (NCP of 50k neurons) vs ncps",
    "hybrid": "every hybrid layer type: whole sequence vs step loop",
    "mamba": "Mamba block vs mlx-lm",
}

_PACKAGES = ("mlx", "numpy", "torch", "ncps", "mlx-lm")


def parse_families(text: str | None) -> list[str]:
    """``"cells,mamba"`` -> ``["cells", "mamba"]`` (None: all); ValueError on unknown names."""
    if text is None:
        return list(FAMILIES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILIES]
    if unknown or not names:
        bad = ", ".join(unknown) or repr(text)
        raise ValueError(f"unknown family {bad}; choose from {', '.join(FAMILIES)}")
    return list(dict.fromkeys(names))


def machine_info() -> dict:
    """Platform, CPU count, Python, package versions, MLX's default device and the date."""
    import mlx.core as mx

    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "mlx_default_device": str(mx.default_device()),
        "gpu": _gpu_name(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _gpu_name() -> str | None:
    """The CUDA GPU's name as PyTorch reports it (None without torch or CUDA)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def run_family(name: str, quick: bool, repeats: int, log=sys.stderr) -> dict:
    """Run family ``name`` in a fresh process; its record, or one with an ``error``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.json"
        command = [sys.executable, "-m", f"ncps_mlx.apps.bench.{name}", "--json", str(path)]
        command += ["--repeats", str(repeats)] + (["--quick"] if quick else [])
        print(f"[bench] {name}: {FAMILIES[name]} ...", file=log, flush=True)
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode == 0 and path.is_file():
            record = json.loads(path.read_text())
        else:
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            record = {"family": name, "title": FAMILIES[name], "rows": [], "error": tail}
            record["stderr_tail"] = result.stderr[-4000:]
    record["process_wall_s"] = wall
    status = f"failed: {record['error']}" if "error" in record else "done"
    print(f"[bench] {name}: {status} in {wall:.1f} s", file=log, flush=True)
    return record


def markdown(report: dict) -> str:
    """The Markdown file: header (convention, machine, command), then one section a family."""
    info = report["machine"]
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in info["versions"].items())
    lines = [
        "# ncps_mlx benchmarks",
        "",
        RATIO_CONVENTION,
        "",
        f"- machine: {info['platform']}, {info['cpu_count']} CPUs, MLX device "
        f"{info['mlx_default_device']}, PyTorch references on {report['torch_device']}"
        + (f" ({info['gpu']})" if info.get("gpu") else ""),
        f"- python {info['python']}; {versions}",
        f"- date: {info['date']}; command: `{report['command']}`; "
        f"{'quick' if report['quick'] else 'full'} sizes, best of {report['repeats']}; "
        f"suite wall time {report['wall_s']:.0f} s",
        "",
    ]
    return "\n".join(lines + [family_markdown(f) for f in report["families"]])


def _command() -> str:
    """This process's command line (``python script.py ...`` for a script)."""
    launcher = [Path(sys.executable).name] if sys.argv[0].endswith(".py") else []
    return shlex.join(launcher + sys.argv)


def run_suite(
    families, quick=False, repeats=3, out="bench_results", command=None, torch_device="cpu"
) -> dict:
    """Run ``families`` one process each, write ``out/bench.md`` and ``out/bench.json``.

    Args:
        families (list[str]): Names from :data:`FAMILIES`, in order.
        quick (bool): Small sizes (the whole suite in under two minutes on two CPU cores).
        repeats (int): Timed runs per measurement (best of).
        out (str | os.PathLike): Output folder (created).
        command (str | None): The command line to record. Default: ``sys.argv``.
        torch_device (str): Where the PyTorch references run: ``"cpu"`` or ``"cuda"`` (MLX
            runs on its default device: the GPU where MLX has one).

    Returns:
        dict: The report written to ``bench.json`` (``machine``, ``command``, ``families``...).
    """
    if torch_device not in ("cpu", "cuda"):
        raise ValueError(f"torch_device must be 'cpu' or 'cuda', got {torch_device!r}")
    os.environ[TORCH_DEVICE_VARIABLE] = torch_device  # read by the family processes
    start = time.perf_counter()
    report = {
        "command": command or _command(),
        "python_executable": sys.executable,
        "quick": bool(quick),
        "repeats": int(repeats),
        "ratio": "ncps_mlx seconds / reference seconds (below 1: ncps_mlx is faster)",
        "machine": machine_info(),
        "torch_device": torch_device,
    }
    report["families"] = [run_family(name, quick, repeats) for name in families]
    report["wall_s"] = time.perf_counter() - start
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(report, indent=1) + "\n")
    (folder / "bench.md").write_text(markdown(report))
    return report
