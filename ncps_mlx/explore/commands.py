"""``ncps-mlx explore init|dream|search|leaderboard|export|dedup`` (see :mod:`ncps_mlx.apps.cli`).

Every action takes ``--db PATH`` (default ``ncps_explore.db`` in the working directory). A
missing, corrupt or foreign database file, an unwritable path and a bad value are one-line
errors (exit code 2), reported through the CLI's parser (``parser_class`` of
:func:`add_explore`).
"""

from __future__ import annotations

import os

from .._validation import _SEED_BOUND

#: Inclusive ranges of the actions' numeric options (checked by the CLI before an action runs).
_RANGES = {
    **{name: (1, None) for name in ("count", "epochs", "limit", "hidden_size", "length", "rank")},
    "seed": (0, _SEED_BOUND - 1),
}

__all__ = ["add_explore", "format_leaderboard"]


def format_leaderboard(rows, metric: str) -> str:
    """A text table of leaderboard rows: rank, id, metric value, parameters, seconds, runs and
    the architecture's one-line description."""
    if not rows:
        return "(no results yet)"
    lines = [
        f"{'rank':>4} {'id':>4} {metric:>10} {'params':>9} {'seconds':>8} {'runs':>4}  architecture"
    ]
    for row in rows:
        lines.append(
            f"{row.rank:>4} {row.architecture_id:>4} {row.value:>10.4f} {row.params:>9,} "
            f"{row.seconds:>8.1f} {row.runs:>4}  {row.architecture.describe()}"
        )
    return "\n".join(lines)


def _store(args, parser):
    """The results store ``--db`` names (created by the actions that write)."""
    import sqlite3

    from .store import ResultsStore

    create = args.action in ("init", "dream", "search")
    if create:
        parser.output_path(args.db, "--db")
    elif not os.path.exists(args.db):
        parser.error(f"no results store at {args.db} (create one with `ncps-mlx explore init`)")
    with parser.reporting("--db", errors=(OSError, ValueError, sqlite3.Error)):
        return ResultsStore(args.db, create=create)


def _init(args, parser) -> int:
    from .store import SCHEMA_VERSION

    with _store(args, parser) as store:
        count, results = len(store.architectures()), len(store.results())
    print(
        f"results store {args.db}: schema version {SCHEMA_VERSION}, {count} architectures, "
        f"{results} results"
    )
    return 0


def _proposals(args, store):
    from .registry import ComponentRegistry
    from .searcher import parents_for
    from .strategies import propose

    registry = ComponentRegistry(store.compatibility())
    parents = parents_for(store, args.task, args.strategy)
    return propose(
        registry,
        args.strategy,
        args.count,
        args.seed,
        hidden_size=args.hidden_size,
        length=args.length,
        temperature=args.temperature,
        rate=args.rate,
        parents=parents,
    )


def _dream(args, parser) -> int:
    from .tasks import get_task

    embed_size = get_task(args.task).input_size
    with _store(args, parser) as store:
        with parser.reporting():
            proposals = _proposals(args, store)
        for architecture in proposals:
            stored = f" -> #{store.add_architecture(architecture)}" if args.store else ""
            print(
                f"{architecture.key()} {architecture.param_count(embed_size):>9,} params  "
                f"{architecture.describe()}{stored}"
            )
    return 0


def _search(args, parser) -> int:
    from .searcher import search
    from .tasks import get_task

    _store(args, parser).close()  # a one-line error for a bad --db before the work
    with parser.reporting():
        rows = search(
            args.task,
            args.strategy,
            args.count,
            args.db,
            args.seed,
            args.epochs,
            args.hidden_size,
            args.length,
            args.temperature,
            args.rate,
            args.limit,
            progress=not args.no_progress,
        )
    print(format_leaderboard(rows, get_task(args.task).metric))
    return 0


def _leaderboard(args, parser) -> int:
    from .tasks import get_task

    with _store(args, parser) as store, parser.reporting():
        rows = store.leaderboard(args.task, limit=args.limit)
    print(format_leaderboard(rows, get_task(args.task).metric))
    return 0


def _find(store, reference: str, parser):
    """The architecture a CLI reference names: a row id (``12``) or a key (hex digest)."""
    if reference.isdigit():
        with parser.reporting(errors=(KeyError,)):
            return store.architecture(int(reference))
    matches = [a for _, a in store.architectures() if a.key().startswith(reference)]
    if len(matches) != 1:
        parser.error(
            f"{len(matches)} stored architectures match key {reference!r}; give an id "
            "or a longer key"
        )
    return matches[0]


def _ranked(store, args, parser):
    """The architecture at ``--rank`` (default 1, the best) of the task's leaderboard."""
    rank = 1 if args.rank is None else args.rank
    with parser.reporting():
        rows = store.leaderboard(args.task, limit=None)
    if not rows:
        parser.error(
            f"no {args.task!r} results in {args.db} to rank; run `ncps-mlx explore search "
            f"--task {args.task}` first, or give a row id"
        )
    if rank > len(rows):
        parser.error(f"--rank {rank}: the {args.task!r} leaderboard has {len(rows)} rows")
    return rows[rank - 1].architecture


def _export(args, parser) -> int:
    from .codegen import export_module
    from .tasks import get_task

    if args.architecture is not None and args.rank is not None:
        parser.error("give a row id or key, or --rank, not both")
    parser.output_path(args.out, "--out")
    task = get_task(args.task)
    with _store(args, parser) as store:
        if args.architecture is None:
            architecture = _ranked(store, args, parser)
        else:
            architecture = _find(store, args.architecture, parser)
    source = export_module(architecture, task.input_size, task.num_classes)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(source)
        print(f"wrote {args.out} ({architecture.describe()})")
    else:
        print(source, end="")
    return 0


def _dedup(args, parser) -> int:
    with _store(args, parser) as store:
        merged = store.dedup()
    print(f"merged {merged} duplicate architecture rows in {args.db}")
    return 0


def add_explore(commands, parser_class) -> None:
    """Add the ``explore`` command and its actions to the CLI's sub-parsers.

    Args:
        commands: The sub-parsers action of the ``ncps-mlx`` parser.
        parser_class: The CLI's ``CommandParser`` (``ncps_mlx.apps.parsing``): the actions
            report every failure through its ``error``, ``reporting`` and ``output_path``, and
            the CLI checks their ``ranges`` before an action runs.
    """
    from .searcher import DEFAULT_DB
    from .strategies import STRATEGIES
    from .tasks import TASKS

    explore = commands.add_parser(
        "explore",
        help="search hybrid architectures and track results in a SQLite store",
        description="Compose, search and track hybrid architectures. Results live in one "
        "SQLite file (--db).",
    )
    actions = explore.add_subparsers(
        dest="action",
        required=True,
        parser_class=parser_class,
        help="`ncps-mlx explore ACTION --help` lists an action's options",
    )

    def action(name, run, help_text):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", default=DEFAULT_DB, help=f"results store (default {DEFAULT_DB})")
        sub.set_defaults(run=run, subparser=sub, ranges=_RANGES)
        return sub

    def task_option(sub):
        sub.add_argument(
            "--task", choices=sorted(TASKS), default="digits", help="built-in task (default digits)"
        )

    def proposal_options(sub):
        task_option(sub)
        sub.add_argument(
            "--strategy",
            choices=sorted(STRATEGIES),
            default="random",
            help="random walks over layer compatibility, greedy (most compatible next layer), "
            "mutate or crossover (of the task's best stored architectures); default random",
        )
        sub.add_argument(
            "--count", type=int, default=8, help="architectures to propose (default 8)"
        )
        sub.add_argument("--seed", type=int, default=0, help="seed of the proposals (default 0)")
        sub.add_argument(
            "--hidden-size", type=int, default=32, help="model width, a multiple of 8 (default 32)"
        )
        sub.add_argument(
            "--length", type=int, default=4, help="layers per architecture (default 4)"
        )
        sub.add_argument(
            "--temperature",
            type=float,
            default=1.0,
            help="random strategy: > 1 flattens, < 1 sharpens the layer choice (default 1.0)",
        )
        sub.add_argument(
            "--rate",
            type=float,
            default=0.3,
            help="mutate strategy: chance of redrawing each layer, option and the wiring, "
            "in [0, 1] (default 0.3)",
        )

    action("init", _init, "create (or open and check) the results store")
    dream = action("dream", _dream, "propose architectures without training them")
    proposal_options(dream)
    dream.add_argument("--store", action="store_true", help="add the proposals to the store")
    search = action("search", _search, "train proposed architectures briefly and rank them")
    proposal_options(search)
    search.add_argument("--epochs", type=int, help="epochs per candidate (task default)")
    search.add_argument("--limit", type=int, default=10, help="leaderboard rows shown (default 10)")
    search.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    leaderboard = action("leaderboard", _leaderboard, "show the best architectures of a task")
    task_option(leaderboard)
    leaderboard.add_argument("--limit", type=int, default=10, help="rows shown (default 10)")
    export = action("export", _export, "write a stored architecture as a Python module")
    export.add_argument(
        "architecture",
        nargs="?",
        help="row id or key (prefix) of a stored architecture (default: --rank 1)",
    )
    export.add_argument(
        "--rank",
        type=int,
        metavar="N",
        help="the N-th best architecture of --task's leaderboard (default 1, the best)",
    )
    task_option(export)
    export.add_argument("--out", metavar="PATH", help="output file (default: print)")
    action("dedup", _dedup, "merge stored architectures that canonicalise to one description")
    explore.set_defaults(subparser=explore)
