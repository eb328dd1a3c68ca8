"""Benchmark results: the row and family records, their Markdown tables, and the entry point
that every family module shares
(``python -m ncps_mlx.apps.bench.<family> [--quick] [--json PATH]``).

A family's record is a dict (JSON-ready)::

    {"family": "cells", "title": ..., "settings": ..., "reference": "ncps 1.0.1 (PyTorch)",
     "rows": [row, ...], "peak_rss_mb": ..., "mlx_peak_mb": ..., "wall_s": ...}

and a row (see :func:`row`) holds ``ours_s``, ``reference_s`` and ``ratio = ours_s /
reference_s`` (below 1: ncps_mlx is faster), or a ``reference_note`` saying why the reference
did not run ("not installed", "skipped: ..."). A family compared with several references (the
``cells`` family: ncps eager, ``torch.compile(ncps)``, JAX) names the others in its record's
``more_references`` and gives each row a ``more_references`` list of ``reference_entry``
dicts in that order; its table then has a time and a ratio column per reference. A family may
add a ``scale`` table (``scale_row``): ncps_mlx alone at larger sizes, per kernel choice,
with the train step's peak memory.
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
    more_references: list[dict] | None = None,
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
        more_references (list[dict] | None): Further references of the same workload
            (``reference_entry``), in the order of the family's ``more_references``.

    Returns:
        dict: ``workload, ours_s, ours_runs, reference_s, reference_runs, ratio,
        reference_note, ops_per_step, matmuls_per_step, mlx_peak_mb, notes,
        more_references``.
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
        "more_references": list(more_references or []),
    }


def reference_entry(
    name: str, ours: Timing | None, reference: Timing | None = None, note: str | None = None
) -> dict:
    """One more reference's time for a row: ``{name, seconds, runs, ratio, note}``, with
    ``ratio = ours / reference`` (None, with a ``note`` saying why, when it did not run)."""
    if reference is None and note is None:
        raise ValueError(f"reference {name!r} has neither a time nor a note saying why")
    return {
        "name": name,
        "seconds": reference.seconds if reference else None,
        "runs": reference.runs if reference else 0,
        "ratio": ours.seconds / reference.seconds if ours and reference else None,
        "note": None if reference else note,
    }


def scale_row(
    workload: str,
    kernel: str,
    forward: Timing | None,
    train: Timing | None,
    train_mb: float | None,
    notes: str = "",
) -> dict:
    """One row of a family's scale table: ncps_mlx alone on a large workload.

    Args:
        workload (str): What ran, with its sizes.
        kernel (str): The model's ``kernel`` argument (``"fused"``, ``"reference"``, ...).
        forward (Timing | None): The forward pass (None: it did not run; ``notes`` says why).
        train (Timing | None): A train step (loss, gradients, Adam).
        train_mb (float | None): MLX's peak memory during the train steps, in MiB.
        notes (str): The path taken, or why nothing ran.

    Returns:
        dict: ``workload, kernel, forward_s, train_s, train_runs, train_mlx_peak_mb, notes``.
    """
    return {
        "workload": workload,
        "kernel": kernel,
        "forward_s": forward.seconds if forward else None,
        "train_s": train.seconds if train else None,
        "train_runs": train.runs if train else 0,
        "train_mlx_peak_mb": train_mb,
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


def _ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3g}"


def _megabytes(mb: float | None) -> str:
    return "-" if mb is None else f"{mb:.0f}"


def _cells(r: dict) -> list[str]:
    ops = "-"
    if r["ops_per_step"] is not None:
        ops = f"{r['ops_per_step']} ({r['matmuls_per_step']})"
    more = []
    for entry in r.get("more_references", []):
        more += [entry["note"] or format_seconds(entry["seconds"]), _ratio(entry["ratio"])]
    return [
        r["workload"],
        format_seconds(r["ours_s"]),
        r["reference_note"] or format_seconds(r["reference_s"]),
        _ratio(r["ratio"]),
        *more,
        ops,
        _megabytes(r["mlx_peak_mb"]),
        r["notes"] or "",
    ]


def _table(columns, rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def columns(family: dict) -> list[str]:
    """The header of a family's table: ``COLUMNS``, with a time and a ratio column for
    each of the family's ``more_references`` after the first reference's."""
    more = [text for name in family.get("more_references", []) for text in (name, "ratio")]
    return [*COLUMNS[:4], *more, *COLUMNS[4:]]


SCALE_COLUMNS = ("workload", "kernel", "forward", "train step", "train step MLX MB", "notes")


def scale_markdown(scale: dict) -> list[str]:
    """The lines of a family's scale table (``{"settings": ..., "rows": [scale_row, ...]}``)."""
    rows = [
        [
            r["workload"],
            f"`{r['kernel']}`",
            format_seconds(r["forward_s"]),
            format_seconds(r["train_s"]),
            _megabytes(r["train_mlx_peak_mb"]),
            r["notes"] or "",
        ]
        for r in scale["rows"]
    ]
    return ["", f"Scale: {scale['settings']}.", "", *_table(SCALE_COLUMNS, rows)]


def family_markdown(family: dict) -> str:
    """A family's section: heading, settings, its table (and scale table, if it has one) and
    its process's peak memory."""
    lines = [f"## {family['family']}: {family['title']}", ""]
    if family.get("error"):
        return "\n".join([*lines, f"**failed**: {family['error']}", ""])
    lines += [f"{family['settings']}. Reference: {family['reference']}.", ""]
    lines += _table(columns(family), [_cells(r) for r in family["rows"]])
    if family.get("scale"):
        lines += scale_markdown(family["scale"])
    mlx = family["mlx_peak_mb"]
    lines += [
        "",
        f"Family process: peak RSS {family['peak_rss_mb']:.0f} MB"
        + ("" if mlx is None else f", MLX peak {mlx:.0f} MB")
        + f", wall {family['wall_s']:.1f} s.",
        "",
    ]
    return "\n".join(lines)


def family_record(name: str, title: str, settings: str, reference: str, rows: list, **more) -> dict:
    """A family's record; peak memory and wall time are filled in by :func:`family_main`.
    ``more`` adds keys (``more_references``, ``scale``, ``environment``, ...)."""
    return {
        "family": name,
        "title": title,
        "settings": settings,
        "reference": reference,
        "rows": rows,
        **more,
    }


def family_main(
    run: Callable[..., dict],
    argv: list[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> dict:
    """The command line of one family: run it, then write its JSON record or print its table.

    Args:
        run (Callable[..., dict]): ``run(quick, repeats, **options)`` -> the family's record.
        argv (list[str] | None): Arguments (default: ``sys.argv[1:]``).
        add_arguments (Callable | None): Adds the family's own options to the parser; their
            values reach ``run`` as keyword arguments (by ``dest``).

    Returns:
        dict: The record, with ``peak_rss_mb`` (this process), ``mlx_peak_mb`` and ``wall_s``.
    """
    parser = argparse.ArgumentParser(description="Run one benchmark family.")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best of)")
    parser.add_argument("--json", metavar="PATH", help="write the record here, print nothing")
    if add_arguments is not None:
        add_arguments(parser)
    args = vars(parser.parse_args(argv))
    quick, repeats, path = args.pop("quick"), args.pop("repeats"), args.pop("json")
    if repeats < 1:
        parser.error(f"--repeats must be >= 1, got {repeats}")
    start = time.perf_counter()
    record = run(quick, repeats, **args)
    peaks = [r["mlx_peak_mb"] for r in record["rows"] if r["mlx_peak_mb"] is not None]
    scale_rows = (record.get("scale") or {}).get("rows", [])
    peaks += [r["train_mlx_peak_mb"] for r in scale_rows if r["train_mlx_peak_mb"] is not None]
    record.update(
        peak_rss_mb=peak_rss_mb(),
        mlx_peak_mb=max(peaks) if peaks else None,
        wall_s=time.perf_counter() - start,
    )
    if path:
        with open(path, "w") as file:
            json.dump(record, file, indent=1)
    else:
        print(RATIO_CONVENTION + "\n")
        print(family_markdown(record))
    return record
