"""Architecture exploration: describe hybrid stacks as data (:class:`Architecture`), compose
them from a component registry with seeded strategies, train candidates briefly on built-in
tasks, track the results in a SQLite store, and export any stored architecture as a Python
module.
"""

from .architecture import Architecture, option_defaults
from .codegen import export_module, write_module
from .registry import ComponentRegistry
from .searcher import DEFAULT_DB, search
from .store import APPLICATION_ID, SCHEMA_VERSION, LeaderboardRow, Result, ResultsStore, StoreError
from .strategies import STRATEGIES, crossover, greedy, mutate, propose, random_walk
from .tasks import TASKS, DigitsTask, HybridClassifier, LongMemoryTask, Task, TaskResult, get_task

__all__ = [
    "Architecture",
    "option_defaults",
    "ComponentRegistry",
    "ResultsStore",
    "StoreError",
    "Result",
    "LeaderboardRow",
    "SCHEMA_VERSION",
    "APPLICATION_ID",
    "STRATEGIES",
    "greedy",
    "random_walk",
    "mutate",
    "crossover",
    "propose",
    "Task",
    "TaskResult",
    "DigitsTask",
    "LongMemoryTask",
    "HybridClassifier",
    "TASKS",
    "get_task",
    "search",
    "DEFAULT_DB",
    "export_module",
    "write_module",
]
