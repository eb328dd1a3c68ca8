"""ResultsStore: architectures stored once, results, leaderboards, dedup, compatibility overrides,
clear errors for files that are not results stores, migration and concurrent writers."""

import json
import math
import multiprocessing
import os
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from ncps_mlx.explore.architecture import Architecture
from ncps_mlx.explore.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    LeaderboardRow,
    Result,
    ResultsStore,
    StoreError,
)

MAMBA = Architecture(("mamba", "ffn"), 16)
ATTENTION = Architecture(("attention", "ffn"), 16, {"attention_num_heads": 2})
GLA = Architecture(("gla", "ffn"), 32)
DATE = "2025-01-02T03:04:05+00:00"


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "results.db") as store:
        yield store


def _run(store, architecture_id, value, task="copy", metric="accuracy", higher=True, **kwargs):
    kwargs = {"params": 1000, "seconds": 1.0, "date": DATE, **kwargs}
    return store.add_result(architecture_id, task, metric, value, higher, **kwargs)


# ---------------------------------------------------------------------- architectures
def test_architectures_are_equal_after_reopening(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        ids = [store.add_architecture(a) for a in (MAMBA, ATTENTION, GLA)]
    with ResultsStore(tmp_path / "r.db", create=False) as store:
        assert store.architectures() == list(zip(ids, [MAMBA, ATTENTION, GLA], strict=True))
        assert store.architecture(ids[1]) == ATTENTION
        assert [store.find(a) for a in (MAMBA, ATTENTION, GLA)] == ids


def test_equivalent_descriptions_are_one_row(store):
    unread_and_default_options = {"attention_num_heads": 4, "mamba_state_size": 16}
    same = Architecture(("mamba", "ffn"), 16, unread_and_default_options, shared=("ffn",))
    first = store.add_architecture(MAMBA)
    assert store.add_architecture(same) == first
    assert store.find(same) == first
    assert store.architectures() == [(first, MAMBA)]


def test_unknown_architectures(store):
    assert store.find(GLA) is None
    with pytest.raises(KeyError, match="no architecture with id 7"):
        store.architecture(7)
    with pytest.raises(TypeError, match="Architecture"):
        store.add_architecture(MAMBA.canonical())


def test_new_store_is_marked_and_in_wal_mode(tmp_path):
    ResultsStore(tmp_path / "r.db").close()
    db = sqlite3.connect(tmp_path / "r.db")
    pragmas = [
        db.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("application_id", "user_version", "journal_mode")
    ]
    db.close()
    assert pragmas == [APPLICATION_ID, SCHEMA_VERSION, "wal"]


# ---------------------------------------------------------------------- results
def test_results_round_trip_and_filters(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        mamba, gla = store.add_architecture(MAMBA), store.add_architecture(GLA)
        first = store.add_result(
            mamba, "copy", "accuracy", 0.75, True, 1234, 2.5, seed=3, epochs=10, date=DATE
        )
        second = store.add_result(gla, "copy", "loss", 0.5, False, 99, 1.0, date="2025-01-02")
        third = store.add_result(
            gla, "parity", "accuracy", 1.0, True, 99, 0.0, date=datetime(2025, 1, 3, 12)
        )
    with ResultsStore(tmp_path / "r.db") as store:
        expected = [
            Result(first, mamba, "copy", "accuracy", 0.75, True, 1234, 2.5, DATE, 3, 10),
            Result(
                second, gla, "copy", "loss", 0.5, False, 99, 1.0, "2025-01-02T00:00:00", 0, None
            ),
            Result(
                third, gla, "parity", "accuracy", 1.0, True, 99, 0.0, "2025-01-03T12:00:00", 0, None
            ),
        ]
        assert store.results() == expected
        assert store.results(task="copy") == expected[:2]
        assert store.results(architecture_id=gla) == expected[1:]
        assert store.results(task="copy", metric="loss") == [expected[1]]
        assert store.tasks() == ["copy", "parity"]


def test_result_date_defaults_to_now_in_utc(store):
    _run(store, store.add_architecture(MAMBA), 0.5, date=None)
    date = datetime.fromisoformat(store.results()[0].date)
    assert abs(datetime.now(timezone.utc) - date) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"task": ""}, TypeError),
        ({"metric": 3}, TypeError),
        ({"value": math.nan}, ValueError),
        ({"value": "0.5"}, TypeError),
        ({"higher_is_better": "yes"}, TypeError),
        ({"params": -1}, ValueError),
        ({"params": 1.5}, TypeError),
        ({"seconds": -0.1}, ValueError),
        ({"seed": -1}, ValueError),
        ({"epochs": 2.0}, TypeError),
        ({"date": "yesterday"}, ValueError),
        ({"date": 20250102}, TypeError),
        ({"architecture_id": 99}, KeyError),
        ({"higher_is_better": False}, ValueError),  # contradicts the stored copy/accuracy run
    ],
)
def test_invalid_results_are_rejected_and_not_stored(store, change, error):
    architecture_id = store.add_architecture(MAMBA)
    _run(store, architecture_id, 0.5)
    arguments = {
        "architecture_id": architecture_id,
        "task": "copy",
        "metric": "accuracy",
        "value": 0.5,
        "higher_is_better": True,
        "params": 10,
        "seconds": 1.0,
    }
    with pytest.raises(error):
        store.add_result(**{**arguments, **change})
    assert len(store.results()) == 1


def test_infinite_values_are_stored(store):
    _run(store, store.add_architecture(MAMBA), math.inf, metric="loss", higher=False)
    assert store.results()[0].value == math.inf


def test_has_result_matches_architecture_task_seed_and_epochs(store):
    mamba, gla = store.add_architecture(MAMBA), store.add_architecture(GLA)
    _run(store, mamba, 0.5, seed=1, epochs=5)
    _run(store, mamba, 0.5)
    assert store.has_result(mamba, "copy", seed=1, epochs=5)
    assert store.has_result(mamba, "copy")
    assert not store.has_result(mamba, "copy", seed=1)  # epochs None was not run with seed 1
    assert not store.has_result(mamba, "copy", seed=1, epochs=6)
    assert not store.has_result(mamba, "parity")
    assert not store.has_result(gla, "copy")


# ---------------------------------------------------------------------- leaderboard
def test_leaderboard_keeps_the_highest_run_per_architecture(store):
    mamba, attention, gla = (store.add_architecture(a) for a in (MAMBA, ATTENTION, GLA))
    _run(store, mamba, 0.6, params=10, seconds=1.0, date="2025-01-01")
    _run(store, mamba, 0.9, params=11, seconds=2.0, date="2025-01-02")
    _run(store, mamba, 0.3, params=12, seconds=3.0, date="2025-01-03")
    _run(store, attention, 0.95, params=20, seconds=4.0, date="2025-01-04")
    _run(store, gla, 0.7, params=30, seconds=5.0, date="2025-01-05")
    _run(store, gla, 0.8, params=31, seconds=6.0, date="2025-01-06")
    _run(store, gla, 0.99, metric="other", params=1, seconds=1.0)  # another metric: ignored
    board = store.leaderboard("copy", metric="accuracy")
    assert board == [
        LeaderboardRow(1, attention, ATTENTION, 0.95, 20, 4.0, 1, "2025-01-04T00:00:00", 0.95),
        LeaderboardRow(2, mamba, MAMBA, 0.9, 11, 2.0, 3, "2025-01-02T00:00:00", 0.6),
        LeaderboardRow(3, gla, GLA, 0.8, 31, 6.0, 2, "2025-01-06T00:00:00", 0.75),
    ]
    assert store.leaderboard("copy", metric="accuracy", limit=2) == board[:2]
    assert store.leaderboard("copy", metric="accuracy", limit=None) == board


def test_leaderboard_keeps_the_lowest_run_when_lower_is_better(store):
    mamba, attention, gla = (store.add_architecture(a) for a in (MAMBA, ATTENTION, GLA))
    for architecture_id, losses in (
        (mamba, [0.4, 0.2, 0.3]),
        (attention, [0.5]),
        (gla, [math.inf, 0.1]),
    ):
        for loss in losses:
            _run(store, architecture_id, loss, metric="loss", higher=False)
    board = store.leaderboard("copy")
    assert [(r.rank, r.architecture_id, r.value, r.runs) for r in board] == [
        (1, gla, 0.1, 2),
        (2, mamba, 0.2, 3),
        (3, attention, 0.5, 1),
    ]
    assert board[1].mean == pytest.approx(0.3)
    assert [r.architecture_id for r in store.leaderboard("copy", limit=1)] == [gla]


def test_leaderboard_ties_go_to_fewer_parameters_then_less_time(store):
    mamba, attention, gla = (store.add_architecture(a) for a in (MAMBA, ATTENTION, GLA))
    _run(store, mamba, 0.5, params=200, seconds=1.0)
    _run(store, attention, 0.5, params=100, seconds=9.0)
    _run(store, gla, 0.5, params=100, seconds=3.0)
    assert [r.architecture_id for r in store.leaderboard("copy")] == [gla, attention, mamba]


def test_leaderboard_metric_choice(store):
    mamba = store.add_architecture(MAMBA)
    assert store.leaderboard("copy") == []
    _run(store, mamba, 0.5)
    _run(store, mamba, 0.1, metric="loss", higher=False)
    with pytest.raises(ValueError, match=r"metrics \['accuracy', 'loss'\]"):
        store.leaderboard("copy")
    assert [r.value for r in store.leaderboard("copy", metric="loss")] == [0.1]
    assert store.leaderboard("copy", metric="bleu") == []
    assert store.leaderboard("parity") == []
    with pytest.raises(ValueError, match="limit"):
        store.leaderboard("copy", metric="loss", limit=0)


# ---------------------------------------------------------------------- dedup
def test_dedup_merges_rows_that_now_canonicalise_together(store):
    """An older release stored MAMBA with a default option kept (under another key) and GLA
    with an unread option and a one-use shared name; dedup rewrites both canonically and merges
    the MAMBA copy added since."""
    old_mamba = {
        "pattern": ["mamba", "ffn"],
        "hidden_size": 16,
        "options": {"mamba_state_size": 16},
        "wiring": None,
        "shared": [],
    }
    old_gla = {
        "shared": ["gla"],
        "pattern": ["gla", "ffn"],
        "hidden_size": 32,
        "wiring": None,
        "options": {"attention_num_heads": 2},
    }
    db = sqlite3.connect(store.path)
    with db:
        db.execute(
            "INSERT INTO architectures (id, key, description) VALUES (1, 'old1', ?), "
            "(2, 'old2', ?)",
            (json.dumps(old_mamba), json.dumps(old_gla)),
        )
    db.close()
    old_run = _run(store, 1, 0.5)
    new_id = store.add_architecture(MAMBA)
    new_run = _run(store, new_id, 0.7)
    assert new_id == 3

    assert store.dedup() == 1
    assert store.architectures() == [(1, MAMBA), (2, GLA)]
    assert [(r.id, r.architecture_id) for r in store.results()] == [(old_run, 1), (new_run, 1)]
    assert (store.find(MAMBA), store.find(GLA)) == (1, 2)
    db = sqlite3.connect(store.path)
    rows = db.execute("SELECT key, description FROM architectures ORDER BY id").fetchall()
    db.close()
    assert rows == [(MAMBA.key(), MAMBA.canonical_json()), (GLA.key(), GLA.canonical_json())]
    assert store.dedup() == 0


def _write_rows(path, *rows):
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO architectures (id, key, description) VALUES (?, ?, ?)", rows)
    db.close()


def test_dedup_rewrites_keys_that_trade_places(store):
    """Row 2 holds, under an old key, the key row 1 canonicalises to: no UNIQUE clash."""
    gla = {**GLA.canonical(), "options": {"attention_num_heads": 2}}
    _write_rows(store.path, (1, "old1", MAMBA.canonical_json()), (2, MAMBA.key(), json.dumps(gla)))
    assert store.dedup() == 0
    assert store.architectures() == [(1, MAMBA), (2, GLA)]
    assert (store.find(MAMBA), store.find(GLA)) == (1, 2)


def test_in_memory_store(tmp_path):
    with ResultsStore(":memory:") as store:
        _run(store, store.add_architecture(MAMBA), 0.5)
        assert [row.architecture for row in store.leaderboard("copy")] == [MAMBA]
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- compatibility
def test_compatibility_overrides_persist_and_replace(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        store.set_compatibility("mamba", "attention", 0.25)
        store.set_compatibility("attention", "mamba", 1)
        store.set_compatibility("mamba", "attention", 0.5)
        store.set_compatibility("ffn", "ffn", 0.0)
        assert store.remove_compatibility("ffn", "ffn")
        assert not store.remove_compatibility("ffn", "ffn")
    with ResultsStore(tmp_path / "r.db") as store:
        assert store.compatibility() == {("attention", "mamba"): 1.0, ("mamba", "attention"): 0.5}


@pytest.mark.parametrize(
    "first, second, score, error",
    [
        ("mamba", "ffn", 1.5, ValueError),
        ("mamba", "ffn", -0.1, ValueError),
        ("mamba", "ffn", math.nan, ValueError),
        ("mamba", "ffn", True, TypeError),
        ("mamba", "ffn", "0.5", TypeError),
        ("", "ffn", 0.5, TypeError),
        ("mamba", None, 0.5, TypeError),
    ],
)
def test_invalid_compatibility_is_rejected(store, first, second, score, error):
    with pytest.raises(error):
        store.set_compatibility(first, second, score)
    assert store.compatibility() == {}


# ---------------------------------------------------------------------- foreign and corrupt files
def _filled_store(path):
    with ResultsStore(path) as store:
        for width in range(8, 48):
            architecture_id = store.add_architecture(Architecture(("mamba", "ffn"), width))
            for seed in range(5):
                _run(store, architecture_id, 0.5, seed=seed)
    return path.read_bytes()  # closing folded the WAL back into the file


def _sqlite_file(path, *statements):
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def _random_bytes(path):
    path.write_bytes(os.urandom(8192))


def _text_file(path):
    path.write_text("task,metric,value\ncopy,accuracy,0.9\n")


def _truncated(path):
    path.write_bytes(_filled_store(path)[: 3 * 4096])


def _header_only(path):
    path.write_bytes(_filled_store(path)[:50])


def _overwritten_page(path):
    data = bytearray(_filled_store(path))
    data[4 * 4096 : 5 * 4096] = b"\xa5" * 4096  # page 5, a b-tree page of the results
    path.write_bytes(bytes(data))


def _other_application(path):
    _sqlite_file(path, "CREATE TABLE users (name TEXT)", "INSERT INTO users VALUES ('ada')")


def _other_application_id(path):
    _sqlite_file(path, "PRAGMA application_id = 1234")


def _our_id_without_tables(path):
    _sqlite_file(
        path,
        f"PRAGMA application_id = {APPLICATION_ID}",
        "PRAGMA user_version = 2",
        "CREATE TABLE results (id INTEGER)",
    )


def _newer_schema(path):
    _filled_store(path)
    _sqlite_file(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


@pytest.mark.parametrize(
    "make, message",
    [
        (_random_bytes, "not an ncps-mlx results store"),
        (_text_file, "not an ncps-mlx results store"),
        (_truncated, "or is corrupt .SQLite: database disk image is malformed"),
        (_header_only, "or is corrupt"),
        # SQLite's integrity report says "Page 5: ..." or "Tree 5 page 5: ..." by version
        (_overwritten_page, r"corrupt ncps-mlx results store .* (?i:page 5)\b"),
        (_other_application, "foreign SQLite database"),
        (_other_application_id, "foreign SQLite database"),
        (_our_id_without_tables, "foreign database.*table 'architectures' is missing"),
        (_newer_schema, f"schema version {SCHEMA_VERSION + 1}.*upgrade ncps-mlx"),
    ],
    ids=lambda value: value.__name__[1:] if callable(value) else "",
)
def test_files_that_are_not_results_stores_raise_and_stay_unchanged(tmp_path, make, message):
    path = tmp_path / "results.db"
    make(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=message) as raised:
        ResultsStore(path)
    assert str(path) in str(raised.value)
    assert path.read_bytes() == before


def test_missing_file_without_create(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.db"):
        ResultsStore(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_malformed_stored_description_raises_store_error(store):
    _run(store, store.add_architecture(MAMBA), 0.5)
    db = sqlite3.connect(store.path)
    with db:
        db.execute("UPDATE architectures SET description = ?", ('{"pattern": ["nope"]}',))
    db.close()
    for read in (
        lambda: store.architecture(1),
        store.architectures,
        store.dedup,
        lambda: store.leaderboard("copy"),
    ):
        with pytest.raises(StoreError, match="architecture 1 has a malformed description"):
            read()


# ---------------------------------------------------------------------- migration
def test_version_1_store_is_migrated(tmp_path):
    path = tmp_path / "v1.db"
    _sqlite_file(
        path,
        f"PRAGMA application_id = {APPLICATION_ID}",
        "PRAGMA user_version = 1",
        "CREATE TABLE architectures (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, "
        "description TEXT NOT NULL)",
        "CREATE TABLE results (id INTEGER PRIMARY KEY, architecture_id INTEGER NOT NULL "
        "REFERENCES architectures(id), task TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT "
        "NULL, higher_is_better INTEGER NOT NULL, params INTEGER NOT NULL, seconds REAL NOT NULL, "
        "date TEXT NOT NULL)",
        "CREATE TABLE compatibility (first TEXT NOT NULL, second TEXT NOT NULL, score REAL NOT "
        "NULL, PRIMARY KEY (first, second))",
        f"INSERT INTO architectures VALUES (1, '{MAMBA.key()}', '{MAMBA.canonical_json()}')",
        f"INSERT INTO results VALUES (1, 1, 'copy', 'loss', 0.25, 0, 500, 3.5, '{DATE}')",
    )
    with ResultsStore(path) as store:
        assert store.results() == [
            Result(1, 1, "copy", "loss", 0.25, False, 500, 3.5, DATE, 0, None)
        ]
        assert store.architectures() == [(1, MAMBA)]
        _run(store, 1, 0.2, metric="loss", higher=False, seed=4, epochs=2)
        assert store.has_result(1, "copy", seed=4, epochs=2)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    db.close()


# ---------------------------------------------------------------------- concurrency
def _width(worker, i):
    """Width of worker's i-th architecture: both add widths 8..32 first, then 25 of their own."""
    return 8 + i if i < 25 else 8 + 25 * (worker + 1) + (i - 25)


def _write_concurrently(path, worker, barrier):
    """50 architectures and 100 results (seeds tagged by worker), started together twice: to
    create the file and, once it is open, to write."""
    barrier.wait()
    with ResultsStore(path) as store:
        barrier.wait()
        for i in range(50):
            architecture_id = store.add_architecture(
                Architecture(("mamba", "ffn"), _width(worker, i))
            )
            for run in range(2):
                _run(store, architecture_id, float(i), seed=1000 * worker + 2 * i + run)


def test_two_processes_write_one_store(tmp_path):
    path = tmp_path / "shared.db"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_write_concurrently, args=(path, worker, barrier))
        for worker in (0, 1)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0, 0]

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    with ResultsStore(path) as store:
        widths = {i: a.hidden_size for i, a in store.architectures()}
        assert sorted(widths.values()) == list(range(8, 83))
        results = store.results()
    expected = {
        1000 * worker + 2 * i + run: _width(worker, i)
        for worker in (0, 1)
        for i in range(50)
        for run in range(2)
    }
    assert len(results) == len(expected) == 200
    assert {r.seed: widths[r.architecture_id] for r in results} == expected
