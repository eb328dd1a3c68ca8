"""``ResultsStore``: architectures and their benchmark results in one SQLite file.

The store keeps three tables: ``architectures`` (each :class:`Architecture` once, as its
canonical JSON under its :meth:`~Architecture.key`), ``results`` (one benchmark run each: task,
metric, value, parameter count, wall time, date, seed, epochs) and ``compatibility`` (score
overrides for the component registry). Equivalent architectures share one row, so results of
the same model from different searches accumulate on it.

Several processes may write to one store at once: the file is in WAL mode, writers wait up to
``timeout`` seconds for each other, and every write is one short ``BEGIN IMMEDIATE``
transaction. (WAL needs a local file system; while a store is open SQLite keeps ``-wal`` and
``-shm`` files next to it, folded back in when the last connection closes.)

The file carries ``PRAGMA application_id`` ``APPLICATION_ID`` and ``PRAGMA user_version``
``SCHEMA_VERSION``. Opening checks both before changing anything, so a file that is not a
results store (not SQLite, corrupt, another application's database, a newer schema) raises
:class:`StoreError` and is left untouched; an older schema is migrated in place. Nothing
stored is ever executed or unpickled: descriptions are JSON read by
:meth:`Architecture.from_json`.

Example::

    with ResultsStore("results.db") as store:
        arch = store.add_architecture(Architecture(("mamba", "ffn"), 64))
        store.add_result(arch, "copy", "accuracy", 0.97, True, params=52_000, seconds=31.5)
        for row in store.leaderboard("copy"):
            print(row.rank, row.architecture.describe(), row.value)
"""

from __future__ import annotations

import errno
import math
import numbers
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from .._validation import check_int
from .architecture import Architecture

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "LeaderboardRow",
    "Result",
    "ResultsStore",
    "StoreError",
]

APPLICATION_ID = 0x4E435053  # b"NCPS": marks the file as an ncps-mlx results store
SCHEMA_VERSION = 2
_SQLITE_HEADER = b"SQLite format 3\x00"
_RUN_COLUMNS = (
    "architecture_id, task, metric, value, higher_is_better, params, seconds, date, seed, epochs"
)
_RESULT_COLUMNS = "id, " + _RUN_COLUMNS
_TABLES = {
    "architectures": {"id", "key", "description"},
    "results": set(_RESULT_COLUMNS.split(", ")),
    "compatibility": {"first", "second", "score"},
}


class StoreError(ValueError):
    """A file that is not a usable results store: not SQLite, corrupt, another application's
    database, a newer schema, or a malformed stored description."""


# ---------------------------------------------------------------------- schema migrations
def _create_v1(db: sqlite3.Connection) -> None:
    """Version 0 (an empty file) to 1, the first release's schema."""
    db.execute(
        "CREATE TABLE architectures (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, "
        "description TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE results (id INTEGER PRIMARY KEY, "
        "architecture_id INTEGER NOT NULL REFERENCES architectures(id), "
        "task TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, "
        "higher_is_better INTEGER NOT NULL CHECK (higher_is_better IN (0, 1)), "
        "params INTEGER NOT NULL, seconds REAL NOT NULL, date TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX results_by_task ON results (task, metric)")
    db.execute("CREATE INDEX results_by_architecture ON results (architecture_id)")
    db.execute(
        "CREATE TABLE compatibility (first TEXT NOT NULL, second TEXT NOT NULL, "
        "score REAL NOT NULL CHECK (score BETWEEN 0 AND 1), PRIMARY KEY (first, second))"
    )


def _add_seed_and_epochs(db: sqlite3.Connection) -> None:
    """Version 1 to 2: results record their seed (0 for older rows) and epochs (NULL)."""
    db.execute("ALTER TABLE results ADD COLUMN seed INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE results ADD COLUMN epochs INTEGER")


# _MIGRATIONS[n] takes a store from version n to n + 1; a new file starts at version 0.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_v1,
    _add_seed_and_epochs,
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


@dataclass(frozen=True)
class Result:
    """One stored benchmark run.

    Attributes:
        id (int): Row id.
        architecture_id (int): The architecture's row id.
        task (str): Benchmark task name.
        metric (str): Metric name (``"accuracy"``, ``"loss"``, ...).
        value (float): The metric's value.
        higher_is_better (bool): Direction of the metric.
        params (int): Parameter count of the model.
        seconds (float): Wall time of the run.
        date (str): ISO 8601 date and time of the run.
        seed (int): Random seed of the run.
        epochs (int | None): Training epochs, or None if not recorded.
    """

    id: int
    architecture_id: int
    task: str
    metric: str
    value: float
    higher_is_better: bool
    params: int
    seconds: float
    date: str
    seed: int
    epochs: int | None


@dataclass(frozen=True)
class LeaderboardRow:
    """An architecture's best run on a task (see :meth:`ResultsStore.leaderboard`).

    Attributes:
        rank (int): Position on the leaderboard, from 1.
        architecture_id (int): The architecture's row id.
        architecture (Architecture): The architecture.
        value (float): Its best value of the metric.
        params (int): Parameter count recorded with the best run.
        seconds (float): Wall time of the best run.
        runs (int): Number of runs of this architecture on the task and metric.
        date (str): Date of the best run.
        mean (float): Mean value over its runs.
    """

    rank: int
    architecture_id: int
    architecture: Architecture
    value: float
    params: int
    seconds: float
    runs: int
    date: str
    mean: float


def _check_name(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _check_real(value, name: str, minimum: float | None = None, maximum: float | None = None):
    """``value`` as a float: a real number (not a bool or NaN) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    return value


def _check_date(date) -> str:
    """An ISO 8601 string for ``date`` (None: now, in UTC)."""
    if date is None:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")
    if isinstance(date, datetime):
        return date.isoformat()
    if isinstance(date, str):
        try:
            return datetime.fromisoformat(date).isoformat()
        except ValueError:
            raise ValueError(f"date must be an ISO 8601 date, got {date!r}") from None
    raise TypeError(f"date must be a datetime, an ISO 8601 string or None, got {date!r}")


class ResultsStore:
    """Architectures and benchmark results in one SQLite file (see the module docstring).

    Args:
        path (str | os.PathLike): The database file.
        create (bool): Create the file if it does not exist. Default: ``True``.
        timeout (float): Seconds a write waits for other writers before raising
            ``sqlite3.OperationalError``. Default: ``30.0``.

    Raises:
        FileNotFoundError: If ``create`` is false and there is no file at ``path``.
        StoreError: If the file is not SQLite or is corrupt, is another application's database,
            or has a newer schema than this ncps-mlx reads.

    Attributes:
        path (str): The database file.
    """

    def __init__(self, path: str | os.PathLike, create: bool = True, timeout: float = 30.0):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            if not create:
                raise FileNotFoundError(errno.ENOENT, "no ncps-mlx results store", self.path)
        else:
            with open(self.path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
            if header and header != _SQLITE_HEADER:
                raise StoreError(f"{self.path!r} is not an ncps-mlx results store (not SQLite)")
        self._timeout = timeout
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            with self._errors():
                self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        version = self._identify()
        if version == SCHEMA_VERSION:
            self._check_tables()
        self._use_wal()
        self._db.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode
        self._db.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            with self._transaction():
                version = self._pragma("user_version")  # another process may have migrated
                self._check_version(version)
                for migrate in _MIGRATIONS[version:]:
                    migrate(self._db)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._check_tables()

    def _use_wal(self) -> None:
        """Switch to WAL mode. The switch needs every other connection to be idle and does not
        wait for them (SQLite's busy timeout does not apply), so retry until the timeout."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                mode = self._pragma("journal_mode = WAL")
            except sqlite3.OperationalError:  # "database is locked"
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            if mode not in ("wal", "memory"):  # ":memory:" stores need no sharing
                raise StoreError(f"{self.path!r}: SQLite cannot use WAL mode for this file")
            return

    def _identify(self) -> int:
        """The file's schema version (0 for a new, empty file), checked without writing."""
        # One statement, so one snapshot: another process may be creating the store right now.
        application_id, version, tables = self._db.execute(
            "SELECT (SELECT application_id FROM pragma_application_id()), "
            "(SELECT user_version FROM pragma_user_version()), "
            "(SELECT count(*) FROM sqlite_master WHERE type = 'table')"
        ).fetchone()
        if not tables and version == 0 and application_id in (0, APPLICATION_ID):
            return 0
        if application_id != APPLICATION_ID or version < 1:
            raise StoreError(
                f"{self.path!r} is a foreign SQLite database (application_id {application_id:#x}"
                f", not {APPLICATION_ID:#x}), not an ncps-mlx results store; it was not changed"
            )
        self._check_version(version)
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            problems = "; ".join(problems).replace("\n", "; ")
            raise StoreError(f"{self.path!r} is a corrupt ncps-mlx results store ({problems})")
        return version

    def _check_tables(self) -> None:
        for table, columns in _TABLES.items():
            found = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if not columns <= found:
                lacks = f"lacks columns {sorted(columns - found)}" if found else "is missing"
                raise StoreError(
                    f"{self.path!r} is a foreign database: it is marked as an ncps-mlx results "
                    f"store but its table {table!r} {lacks}"
                )

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path!r} has results schema version {version}, newer than the version "
                f"{SCHEMA_VERSION} this ncps-mlx reads: upgrade ncps-mlx to open it"
            )

    def _pragma(self, name: str):
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite's "not a database" and "malformed" errors into :class:`StoreError`."""
        try:
            yield
        except sqlite3.DatabaseError as error:
            if type(error) is not sqlite3.DatabaseError:  # locked, constraint, misuse, ...
                raise
            raise StoreError(
                f"{self.path!r} is not an ncps-mlx results store or is corrupt (SQLite: {error})"
            ) from error

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock at once (waiting up to the timeout)."""
        with self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, parameters=()) -> list[tuple]:
        with self._errors():
            return self._db.execute(sql, parameters).fetchall()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({self.path!r})"

    # ------------------------------------------------------------------ architectures
    def add_architecture(self, architecture: Architecture) -> int:
        """Store ``architecture`` unless an equivalent one is stored; return its row id.

        Args:
            architecture (Architecture): The architecture; it is stored canonically, under its
                :meth:`~Architecture.key` (a UNIQUE column, so concurrent inserts of one
                architecture also give one row).
        """
        if not isinstance(architecture, Architecture):
            raise TypeError(f"expected an Architecture, got {type(architecture).__name__}")
        key = architecture.key()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO architectures (key, description) VALUES (?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, architecture.canonical_json()),
            )
            return db.execute("SELECT id FROM architectures WHERE key = ?", (key,)).fetchone()[0]

    def find(self, architecture: Architecture) -> int | None:
        """The row id of ``architecture`` (or of an equivalent one), or None.

        Args:
            architecture (Architecture): The architecture to look up.
        """
        rows = self._query("SELECT id FROM architectures WHERE key = ?", (architecture.key(),))
        return rows[0][0] if rows else None

    def architecture(self, architecture_id: int) -> Architecture:
        """The architecture stored as ``architecture_id``.

        Args:
            architecture_id (int): Its row id.

        Raises:
            KeyError: If there is no such row.
            StoreError: If its stored description is malformed.
        """
        rows = self._query("SELECT description FROM architectures WHERE id = ?", (architecture_id,))
        if not rows:
            raise KeyError(f"no architecture with id {architecture_id!r} in {self.path!r}")
        return self._parse(architecture_id, rows[0][0])

    def architectures(self) -> list[tuple[int, Architecture]]:
        """All ``(id, architecture)`` pairs, in insertion order."""
        rows = self._query("SELECT id, description FROM architectures ORDER BY id")
        return [(row_id, self._parse(row_id, description)) for row_id, description in rows]

    def _parse(self, architecture_id: int, description) -> Architecture:
        try:
            return Architecture.from_json(description)
        except (TypeError, ValueError) as error:
            raise StoreError(
                f"{self.path!r}: architecture {architecture_id} has a malformed description "
                f"({error})"
            ) from None

    def dedup(self) -> int:
        """Re-canonicalise every stored description with the current :class:`Architecture`
        rules and merge rows that now coincide: the oldest row survives and the others'
        results move to it. Returns the number of rows merged away."""
        merged, changed, survivors = 0, [], {}
        with self._transaction() as db:
            rows = db.execute("SELECT id, key, description FROM architectures ORDER BY id")
            for row_id, key, description in rows.fetchall():
                architecture = self._parse(row_id, description)
                new_key = architecture.key()
                if new_key in survivors:
                    db.execute(
                        "UPDATE results SET architecture_id = ? WHERE architecture_id = ?",
                        (survivors[new_key], row_id),
                    )
                    db.execute("DELETE FROM architectures WHERE id = ?", (row_id,))
                    merged += 1
                    continue
                survivors[new_key] = row_id
                text = architecture.canonical_json()
                if (key, description) != (new_key, text):
                    changed.append((new_key, text, row_id))
            # Two passes, so that no intermediate state has a key twice ("~id" is not hex).
            db.executemany(
                "UPDATE architectures SET key = '~' || id WHERE id = ?", [(c[2],) for c in changed]
            )
            db.executemany(
                "UPDATE architectures SET key = ?, description = ? WHERE id = ?", changed
            )
        return merged

    # ------------------------------------------------------------------ results
    def add_result(
        self,
        architecture_id: int,
        task: str,
        metric: str,
        value: float,
        higher_is_better: bool,
        params: int,
        seconds: float,
        seed: int = 0,
        epochs: int | None = None,
        date: datetime | str | None = None,
    ) -> int:
        """Record one run; returns the result's row id.

        Args:
            architecture_id (int): Row id from :meth:`add_architecture`.
            task (str): Benchmark task name.
            metric (str): Metric name.
            value (float): The metric's value (±inf allowed, e.g. for a diverged loss; NaN is
                rejected).
            higher_is_better (bool): Direction of the metric; must agree with the task's
                earlier results for the same metric.
            params (int): Parameter count (>= 0).
            seconds (float): Wall time (>= 0).
            seed (int): Random seed (>= 0). Default: ``0``.
            epochs (int | None): Training epochs (>= 0), or None. Default: ``None``.
            date (datetime | str | None): When the run finished, as a datetime or ISO 8601
                string. Default: ``None`` (now, UTC).

        Raises:
            KeyError: If ``architecture_id`` is not stored.
            TypeError, ValueError: On an invalid argument or a ``higher_is_better`` that
                contradicts the stored results of ``task`` and ``metric``.
        """
        architecture_id = check_int(architecture_id, "architecture_id")
        if higher_is_better not in (True, False):
            raise TypeError(f"higher_is_better must be a bool, got {higher_is_better!r}")
        row = (
            architecture_id,
            _check_name(task, "task"),
            _check_name(metric, "metric"),
            _check_real(value, "value"),
            int(bool(higher_is_better)),
            check_int(params, "params", 0),
            _check_real(seconds, "seconds", 0.0, math.inf),
            _check_date(date),
            check_int(seed, "seed", 0),
            None if epochs is None else check_int(epochs, "epochs", 0),
        )
        with self._transaction() as db:
            known = db.execute("SELECT 1 FROM architectures WHERE id = ?", (architecture_id,))
            if known.fetchone() is None:
                raise KeyError(f"no architecture with id {architecture_id} in {self.path!r}")
            stored = db.execute(
                "SELECT higher_is_better FROM results WHERE task = ? AND metric = ? LIMIT 1",
                (task, metric),
            ).fetchone()
            if stored is not None and stored[0] != row[4]:
                raise ValueError(
                    f"{task!r}/{metric!r} results are stored with higher_is_better="
                    f"{bool(stored[0])}, got {bool(row[4])}"
                )
            cursor = db.execute(
                f"INSERT INTO results ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return cursor.lastrowid

    def results(
        self, task: str | None = None, architecture_id: int | None = None, metric: str | None = None
    ) -> list[Result]:
        """Stored results in insertion order.

        Args:
            task (str | None): Only this task's results. Default: ``None`` (all).
            architecture_id (int | None): Only this architecture's results. Default: ``None``.
            metric (str | None): Only this metric's results. Default: ``None``.
        """
        filters = {"task": task, "architecture_id": architecture_id, "metric": metric}
        filters = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join([f"{column} = ?" for column in filters] or ["1"])
        rows = self._query(
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE {where} ORDER BY id",
            tuple(filters.values()),
        )
        return [Result(*row[:5], bool(row[5]), *row[6:]) for row in rows]

    def has_result(
        self, architecture_id: int, task: str, seed: int = 0, epochs: int | None = None
    ) -> bool:
        """Whether this run is stored (for any metric), so that a resumed search can skip it.

        Args:
            architecture_id (int): The architecture's row id.
            task (str): Task name.
            seed (int): The run's seed. Default: ``0``.
            epochs (int | None): The run's epochs (None matches only runs stored without).
                Default: ``None``.
        """
        rows = self._query(
            "SELECT 1 FROM results WHERE architecture_id = ? AND task = ? AND seed = ? "
            "AND epochs IS ? LIMIT 1",
            (architecture_id, task, seed, epochs),
        )
        return bool(rows)

    def tasks(self) -> list[str]:
        """Names of the tasks with results, sorted."""
        return [row[0] for row in self._query("SELECT DISTINCT task FROM results ORDER BY task")]

    def leaderboard(
        self, task: str, metric: str | None = None, limit: int | None = 10
    ) -> list[LeaderboardRow]:
        """The best run of each architecture on ``task``, best first.

        "Best" is the largest value if the metric's ``higher_is_better``, else the smallest.
        Ties between architectures go to fewer parameters, then less time, then the older
        architecture; ties within one architecture to its earliest run.

        Args:
            task (str): Task name.
            metric (str | None): Metric name; None for the task's only metric.
            limit (int | None): Number of rows (>= 1), or None for all. Default: ``10``.

        Returns:
            list[LeaderboardRow]: Empty if ``task`` has no results for ``metric``.

        Raises:
            ValueError: If ``metric`` is None and the task has several metrics.
        """
        limit = -1 if limit is None else check_int(limit, "limit", 1)
        metrics = dict(
            self._query(
                "SELECT DISTINCT metric, higher_is_better FROM results WHERE task = ?", (task,)
            )
        )
        if metric is None and len(metrics) > 1:
            raise ValueError(f"task {task!r} has metrics {sorted(metrics)}: pass metric=")
        metric = next(iter(metrics), None) if metric is None else metric
        if metric not in metrics:
            return []
        order = "DESC" if metrics[metric] else "ASC"
        rows = self._query(
            f"""WITH runs AS (
                SELECT architecture_id, value, params, seconds, date,
                    ROW_NUMBER() OVER (PARTITION BY architecture_id ORDER BY value {order}, id)
                        AS pick,
                    COUNT(*) OVER (PARTITION BY architecture_id) AS runs,
                    AVG(value) OVER (PARTITION BY architecture_id) AS mean
                FROM results WHERE task = ? AND metric = ?)
            SELECT architecture_id, description, value, params, seconds, runs, date, mean
            FROM runs JOIN architectures ON architectures.id = runs.architecture_id
            WHERE pick = 1
            ORDER BY value {order}, params, seconds, architecture_id LIMIT ?""",
            (task, metric, limit),
        )
        return [
            LeaderboardRow(rank, row_id, self._parse(row_id, description), *rest)
            for rank, (row_id, description, *rest) in enumerate(rows, 1)
        ]

    # ------------------------------------------------------------------ compatibility
    def set_compatibility(self, first: str, second: str, score: float) -> None:
        """Store (or replace) a compatibility override.

        Args:
            first (str): First component of the (ordered) pair; the component registry gives
                pairs their meaning.
            second (str): Second component.
            score (float): Compatibility in [0, 1].

        Raises:
            TypeError, ValueError: On empty names or a score that is not a number in [0, 1].
        """
        pair = (_check_name(first, "first"), _check_name(second, "second"))
        score = _check_real(score, "score", 0.0, 1.0)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO compatibility (first, second, score) VALUES (?, ?, ?) "
                "ON CONFLICT (first, second) DO UPDATE SET score = excluded.score",
                (*pair, score),
            )

    def remove_compatibility(self, first: str, second: str) -> bool:
        """Delete an override; returns whether there was one.

        Args:
            first (str): First component of the pair.
            second (str): Second component.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM compatibility WHERE first = ? AND second = ?", (first, second)
            )
            return cursor.rowcount > 0

    def compatibility(self) -> dict[tuple[str, str], float]:
        """All overrides as ``{(first, second): score}``."""
        rows = self._query("SELECT first, second, score FROM compatibility ORDER BY first, second")
        return {(first, second): score for first, second, score in rows}
