"""Benchmark results: the row and family records, their Markdown tables, and the entry point
that every family module shares
(``python -m ncps_mlx.apps.bench.<family> [--quick] [--json PATH]``).

A family's record is a dict (JSON-ready)::

    {"family": "cells", "title": ..., "settings": ..., "reference": "ncps 1.0.1 (PyTorch)",
     "rows": [row, ...], "peak_rss_mb": ..., "mlx_peak_mb": ..., "wall_s": ...}

and a row (see :func:`row`) holds ``ours_s``, ``reference_s`` and ``ratio = ours_s /
reference_s`` (below 1: ncps_mlx is faster), or a ``reference_note`` saying why the reference
did not run ("not installed", "skipped: ...").
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from .timing import OpCount, Timing, peak_rss_mb

RATIO_CONVENTION = (
    "ratio = ncps_mlx time / reference time: below 1 means ncps_mlx is faster. Times are the "
    "best of up to `--repeats` timed runs after one warm-up (fewer when runs are long: the JSON "
    "fields `ours_runs` / `reference_runs` give the count)."
)

COLUMNS = ("workload", "ncps_mlx", "reference", "ratio", "ops/step (matmuls)", "MLX MB", "notes")


def row(
    workload: str,
    ours: Timing | None,
    reference: Timing | None = None,
    reference_note: str | None = None,
    ops: OpCount | None = None,
    mlx_mb: float | None = None,
    notes: str = "",
) -> dict:
    """One table row as a JSON-ready dict.

    Args:
        workload (str): What ran, e.g. ``"CfC(16, 64) forward"``.
        ours (Timing | None): ncps_mlx's time (None: it did not run; say why in ``notes``).
        reference (Timing | None): The reference's time on the same machine, in the same run.
        reference_note (str | None): Why there is no reference time ("not installed", ...).
        ops (OpCount | None): Primitives per step of ncps_mlx's graph, where counted.
        mlx_mb (float | None): MLX's peak memory during this workload, in MiB.
        notes (str): Anything else worth a word (output differences, derived ratios).

    Returns:
        dict: ``workload, ours_s, ours_runs, reference_s, reference_runs, ratio,
        reference_note, ops_per_step, matmuls_per_step, mlx_peak_mb, notes``.
    """
    ratio = ours.seconds / reference.seconds if ours and reference else None
    return {
        "workload": workload,
        "ours_s": ours.seconds if ours else None,
        "ours_runs": ours.runs if ours else 0,
        "reference_s": reference.seconds if reference else None,
        "reference_runs": reference.runs if reference else 0,
        "ratio": ratio,
        "reference_note": reference_note,
        "ops_per_step": ops.primitives if ops else None,
        "matmuls_per_step": ops.matmuls if ops else None,
        "mlx_peak_mb": mlx_mb,
        "notes": notes,
    }


def format_seconds(seconds: float | None) -> str:
    """``0.01234`` -> ``"12.3 ms"``, ``12.5`` -> ``"12.5 s"``; None -> ``"-"``."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def _cells(r: dict) -> list[str]:
    ops = "-"
    if r["ops_per_step"] is not None:
        ops = f"{r['ops_per_step']} ({r['matmuls_per_step']})"
    return [
        r["workload"],
        format_seconds(r["ours_s"]),
        r["reference_note"] or format_seconds(r["reference_s"]),
        "-" if r["ratio"] is None else f"{r['ratio']:.3g}",
        ops,
        "-" if r["mlx_peak_mb"] is None else f"{r['mlx_peak_mb']:.0f}",
        r["notes"] or "",
    ]


def family_markdown(family: dict) -> str:
    """A family's section: heading, settings, its table and its process's peak memory."""
    lines = [f"## {family['family']}: {family['title']}", ""]
    if family.get("error"):
        return "\n".join([*lines, f"**failed**: {family['error']}", ""])
    lines += [
        f"{family['settings']}. Reference: {family['reference']}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in family["rows"]]
    mlx = family["mlx_peak_mb"]
    lines += [
        "",
        f"Family process: peak RSS {family['peak_rss_mb']:.0f} MB"
        + ("" if mlx is None else f", MLX peak {mlx:.0f} MB")
        + f", wall {family['wall_s']:.1f} s.",
        "",
    ]
    return "\n".join(lines)


def family_record(name: str, title: str, settings: str, reference: str, rows: list) -> dict:
    """A family's record; peak memory and wall time are filled in by :func:`family_main`."""
    return {
        "family": name,
        "title": title,
        "settings": settings,
        "reference": reference,
        "rows": rows,
    }


def family_main(run: Callable[[bool, int], dict], argv: list[str] | None = None) -> dict:
    """The command line of one family: run it, then write its JSON record or print its table.

    Args:
        run (Callable[[bool, int], dict]): ``run(quick, repeats)`` -> the family's record.
        argv (list[str] | None): Arguments (default: ``sys.argv[1:]``).

    Returns:
        dict: The record, with ``peak_rss_mb`` (this process), ``mlx_peak_mb`` and ``wall_s``.
    """
    parser = argparse.ArgumentParser(description="Run one benchmark family.")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best of)")
    parser.add_argument("--json", metavar="PATH", help="write the record here, print nothing")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    start = time.perf_counter()
    record = run(args.quick, args.repeats)
    peaks = [r["mlx_peak_mb"] for r in record["rows"] if r["mlx_peak_mb"] is not None]
    record.update(
        peak_rss_mb=peak_rss_mb(),
        mlx_peak_mb=max(peaks) if peaks else None,
        wall_s=time.perf_counter() - start,
    )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(record, file, indent=1)
    else:
        print(RATIO_CONVENTION + "\n")
        print(family_markdown(record))
    return record
