"""Wiring construction (constructor and ``build``): ncps_mlx vs ncps 1.0.1.

    python -m ncps_mlx.apps.bench.wirings [--quick] [--repeats N] [--json PATH]

The headline workload is an NCP of 50,000 neurons (30k inter, 15k command, 5k motor; fan-outs
16/8/8, 30k recurrent command synapses). ncps stores every wiring as a dense ``int32``
``N x N`` matrix and its NCP build grows as N² (20,000 neurons take ~17 s here; 50,000 would
need a 10 GB matrix and about two minutes a build), so ncps builds the largest NCP marked
feasible (20,000 neurons), and the 50k row reports ncps as skipped with the time N² growth
predicts from the 20k build. ``--quick`` divides every size by 10.
"""

from __future__ import annotations

from .report import family_main, family_record, row
from .timing import best_of, installed

#: (label, class, positional args, keyword args, input_dim, ncps feasible?) at full size.
#: ``n`` scales the sizes (1 full, 1/10 quick); NCP(n) has 5,000 n neurons.
WORKLOADS = [
    ("FullyConnected {u}", "FullyConnected", lambda n: (_int(1000 * n),), {}, 32, True),
    (
        "Random {u}, sparsity 0.9",
        "Random",
        lambda n: (_int(3000 * n),),
        {"sparsity_level": 0.9},
        64,
        True,
    ),
    (
        "AutoNCP {u}, sparsity 0.5",
        "AutoNCP",
        lambda n: (_int(2000 * n), _int(100 * n)),
        {},
        64,
        True,
    ),
    ("NCP {u}, fan-out 16/8/8", "NCP", lambda n: _ncp(4 * n), {}, 64, True),
    ("NCP {u}, fan-out 16/8/8", "NCP", lambda n: _ncp(10 * n), {}, 64, False),
    (
        "Random {u}, sparsity 0.999",
        "Random",
        lambda n: (_int(1e5 * n),),
        {"sparsity_level": 0.999},
        32,
        False,
    ),
]


def _int(value: float) -> int:
    return int(round(value))


def _ncp(n: float) -> tuple:
    """NCP arguments of ``5,000 n`` neurons: inter, command, motor, fan-outs, recurrence."""
    inter, command, motor = (_int(k * n) for k in (3000, 1500, 500))
    return inter, command, motor, 16, 8, command * 2, 8


def build(module, name: str, args: tuple, kwargs: dict, input_dim: int):
    """``module.<name>(*args, **kwargs).build(input_dim)``; returns the built wiring."""
    wiring = getattr(module, name)(*args, **kwargs)
    wiring.build(input_dim)
    return wiring


def _skip_note(units: int, measured: tuple[int, float] | None) -> str:
    """Why ncps did not build ``units`` neurons, with the time N² growth predicts."""
    note = f"skipped: O(N²) build, dense {units:,}² int32 matrix of {4 * units**2 / 1e9:.2g} GB"
    if measured is not None:
        size, seconds = measured
        note += f", ~{seconds * (units / size) ** 2:.0f} s predicted from N={size:,}"
    return note


def workload_row(workload: tuple, scale: float, measured: dict, repeats, budget_s) -> dict:
    """Time one construction of :data:`WORKLOADS` in ncps_mlx and, if feasible, in ncps.

    ``measured`` maps a label to ncps's last ``(units, seconds)`` (updated here).
    """
    import ncps_mlx.wirings as ours

    label, name, sizes, kwargs, input_dim, compare = workload
    args = sizes(scale)
    wiring = build(ours, name, args, kwargs, input_dim)
    synapses = int(wiring.synapse_count) + int(wiring.sensory_synapse_count)
    units = wiring.units
    ours_time = best_of(lambda: build(ours, name, args, kwargs, input_dim), repeats, budget_s)
    notes = f"{synapses:,} synapses, {synapses / ours_time.seconds:.3g} synapses/s"
    reference, note = None, "not installed"
    if installed("ncps") and compare:
        import ncps.wirings as theirs

        reference = best_of(lambda: build(theirs, name, args, kwargs, input_dim), repeats, budget_s)
        measured[label], note = (units, reference.seconds), None
    elif installed("ncps"):
        note = _skip_note(units, measured.get(label))
    return row(label.format(u=f"{units:,}"), ours_time, reference, note, notes=notes)


def run(quick: bool = False, repeats: int = 3) -> dict:
    """Time every workload of :data:`WORKLOADS`; returns the family's record."""
    scale = 0.1 if quick else 1
    budget_s = 5.0 if quick else 30.0
    measured = {}
    rows = [workload_row(w, scale, measured, repeats, budget_s) for w in WORKLOADS]
    return family_record(
        "wirings",
        "wiring construction vs ncps",
        "constructor + build(input_dim); notes give the synapses (internal + sensory) and "
        "ncps_mlx's rate",
        "ncps 1.0.1 wirings (dense int32 adjacency)",
        rows,
    )


def main(argv: list[str] | None = None) -> dict:
    """Command line:
    ``python -m ncps_mlx.apps.bench.wirings [--quick] [--repeats N] [--json PATH]``."""
    return family_main(run, argv)


if __name__ == "__main__":
    main()
