"""``ncps-mlx explore init|dream|search|leaderboard|export|dedup`` (see :mod:`ncps_mlx.apps.cli`).

Every action takes ``--db PATH`` (default ``ncps_explore.db`` in the working directory). A
corrupt or foreign database file is a one-line error (exit code 2).
"""

from __future__ import annotations

import argparse

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
    from .store import ResultsStore, StoreError

    try:
        return ResultsStore(args.db, create=args.action in ("init", "dream", "search"))
    except FileNotFoundError:
        parser.error(f"no results store at {args.db} (create one with `ncps-mlx explore init`)")
    except StoreError as error:
        parser.error(str(error))


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
        try:
            proposals = _proposals(args, store)
        except ValueError as error:
            parser.error(str(error))
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

    try:
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
    except ValueError as error:
        parser.error(str(error))
    print(format_leaderboard(rows, get_task(args.task).metric))
    return 0


def _leaderboard(args, parser) -> int:
    from .tasks import get_task

    with _store(args, parser) as store:
        rows = store.leaderboard(args.task, limit=args.limit)
    print(format_leaderboard(rows, get_task(args.task).metric))
    return 0


def _find(store, reference: str, parser):
    """The architecture a CLI reference names: a row id (``12``) or a key (hex digest)."""
    if reference.isdigit():
        try:
            return store.architecture(int(reference))
        except KeyError as error:
            parser.error(str(error).strip("'\""))
    matches = [a for _, a in store.architectures() if a.key().startswith(reference)]
    if len(matches) != 1:
        parser.error(
            f"{len(matches)} stored architectures match key {reference!r}; give an id "
            "or a longer key"
        )
    return matches[0]


def _export(args, parser) -> int:
    from .codegen import export_module
    from .tasks import get_task

    task = get_task(args.task)
    with _store(args, parser) as store:
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
    """Add the ``explore`` command and its actions to the CLI's sub-parsers."""
    from .searcher import DEFAULT_DB
    from .strategies import STRATEGIES
    from .tasks import TASKS

    explore = commands.add_parser(
        "explore",
        help="search hybrid architectures and track results in a SQLite store",
        description="Compose, search and track hybrid architectures. Results live in one "
        "SQLite file (--db).",
    )
    actions = explore.add_subparsers(dest="action", required=True, parser_class=parser_class)

    def action(name, run, help_text):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", default=DEFAULT_DB, help=f"results store (default {DEFAULT_DB})")

        def checked(args, parser):
            _check_positive(args, parser)
            return run(args, parser)

        sub.set_defaults(run=checked, subparser=sub)
        return sub

    def task_option(sub):
        sub.add_argument(
            "--task", choices=sorted(TASKS), default="digits", help="built-in task (default digits)"
        )

    def proposal_options(sub):
        task_option(sub)
        sub.add_argument("--strategy", choices=sorted(STRATEGIES), default="random")
        sub.add_argument("--count", type=int, default=8, help="architectures to propose")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--hidden-size", type=int, default=32)
        sub.add_argument("--length", type=int, default=4, help="layers per architecture")
        sub.add_argument("--temperature", type=float, default=1.0, help="random strategy")
        sub.add_argument("--rate", type=float, default=0.3, help="mutate strategy")

    action("init", _init, "create (or open and check) the results store")
    dream = action("dream", _dream, "propose architectures without training them")
    proposal_options(dream)
    dream.add_argument("--store", action="store_true", help="add the proposals to the store")
    search = action("search", _search, "train proposed architectures briefly and rank them")
    proposal_options(search)
    search.add_argument("--epochs", type=int, help="epochs per candidate (task default)")
    search.add_argument("--limit", type=int, default=10, help="leaderboard rows shown")
    search.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    leaderboard = action("leaderboard", _leaderboard, "show the best architectures of a task")
    task_option(leaderboard)
    leaderboard.add_argument("--limit", type=int, default=10)
    export = action("export", _export, "write a stored architecture as a Python module")
    export.add_argument("architecture", help="row id or key (prefix) of a stored architecture")
    task_option(export)
    export.add_argument("--out", metavar="PATH", help="output file (default: print)")
    action("dedup", _dedup, "merge stored architectures that canonicalise to one description")
    explore.set_defaults(subparser=explore)


def _check_positive(args, parser: argparse.ArgumentParser) -> None:
    """One-line errors for counts that must be >= 1."""
    for name in ("count", "epochs", "limit", "hidden_size", "length"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
