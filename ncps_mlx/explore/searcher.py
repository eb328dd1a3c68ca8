"""``search``: propose architectures with a strategy, train each briefly on a task, record the
results in a :class:`~ncps_mlx.explore.store.ResultsStore` and return the leaderboard.

Searches are resumable: candidates are drawn from a seeded strategy, and a candidate that
already has a result for the task, seed and epochs in the store is not trained again — so an
interrupted ``greedy`` or ``random`` search, re-run with the same arguments, proposes the same
candidates and trains only those it had not reached. ``mutate`` and ``crossover`` start from
the task's current leaderboard, so each run explores from the best architectures so far.
"""

from __future__ import annotations

import sys

from .registry import ComponentRegistry
from .store import ResultsStore
from .strategies import STRATEGIES, propose
from .tasks import Task, get_task

__all__ = ["search", "parents_for", "DEFAULT_DB", "PARENT_STRATEGIES"]

#: The results database used when none is given (in the working directory).
DEFAULT_DB = "ncps_explore.db"
#: Strategies that derive proposals from the best stored architectures.
PARENT_STRATEGIES = ("mutate", "crossover")


def search(
    task: str | Task,
    strategy: str = "random",
    budget: int = 8,
    db: str = DEFAULT_DB,
    seed: int = 0,
    epochs: int | None = None,
    hidden_size: int = 32,
    length: int = 4,
    temperature: float = 1.0,
    rate: float = 0.3,
    limit: int = 10,
    progress: bool = True,
    log=print,
):
    """Train ``budget`` candidate architectures on ``task`` and return the leaderboard.

    Args:
        task: A built-in task name (``"digits"``, ``"long_memory"``) or a
            :class:`~ncps_mlx.explore.tasks.Task`.
        strategy: ``"greedy"``, ``"random"``, ``"mutate"`` or ``"crossover"`` (see
            :mod:`ncps_mlx.explore.strategies`); ``mutate`` and ``crossover`` take their
            parents from the task's current leaderboard.
        budget: Number of candidates proposed (those already stored are skipped).
        db: Path of the SQLite results store (created if missing).
        seed: Seed of the proposals, the data split and the training.
        epochs: Training epochs per candidate (None: the task's default).
        hidden_size, length: Width and number of layers of proposed stacks.
        temperature: Randomness of the ``random`` strategy.
        rate: Mutation rate of the ``mutate`` strategy.
        limit: Rows of the returned leaderboard.
        progress: Show a progress bar over the candidates.
        log: Where one line per candidate goes (``print``; pass a no-op to silence).

    Returns:
        The task's :class:`~ncps_mlx.explore.store.LeaderboardRow` list, best first.
    """
    task = get_task(task) if isinstance(task, str) else task
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}")
    with ResultsStore(db) as store:
        registry = ComponentRegistry(store.compatibility())
        parents = parents_for(store, task.name, strategy)
        candidates = propose(
            registry,
            strategy,
            budget,
            seed,
            hidden_size=hidden_size,
            length=length,
            temperature=temperature,
            rate=rate,
            parents=parents,
        )
        bar = _bar(progress, len(candidates), f"{task.name} / {strategy}")
        for architecture in candidates:
            architecture_id = store.add_architecture(architecture)
            if store.has_result(architecture_id, task.name, seed=seed, epochs=epochs):
                log(f"  #{architecture_id} {architecture.describe()}: stored, skipped")
            else:
                result = task.evaluate(architecture, epochs=epochs, seed=seed)
                store.add_result(
                    architecture_id,
                    task.name,
                    task.metric,
                    result.value,
                    task.higher_is_better,
                    result.params,
                    result.seconds,
                    seed=seed,
                    epochs=epochs,
                )
                log(
                    f"  #{architecture_id} {architecture.describe()}: {task.metric} "
                    f"{result.value:.4f}, {result.params} parameters, {result.seconds:.1f} s"
                )
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return store.leaderboard(task.name, limit=limit)


def parents_for(store, task: str, strategy: str) -> list:
    """The task's four best architectures for ``mutate`` and ``crossover``; none for the
    other strategies, whose proposals then depend on the seed alone (so re-runs resume)."""
    if strategy not in PARENT_STRATEGIES:
        return []
    return [row.architecture for row in store.leaderboard(task, limit=4)]


def _bar(enabled: bool, total: int, description: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="arch", file=sys.stderr, dynamic_ncols=True)
