"""search(): proposals trained, stored, ranked; resumable; and the `ncps-mlx explore` CLI."""

import importlib.util
import re

import pytest

from ncps_mlx.apps import cli
from ncps_mlx.explore import Architecture, LongMemoryTask, ResultsStore, search
from ncps_mlx.explore import searcher as search_module

TINY = LongMemoryTask(length=4, train_size=64, test_size=32, epochs=1, batch_size=32)


class CountingTask(LongMemoryTask):
    """The tiny long-memory task, counting evaluations (and failing on request)."""

    calls: int = 0
    fail_at: int | None = None

    def evaluate(self, architecture, epochs=None, seed=0, batch_size=None, progress=False):
        type(self).calls += 1
        if type(self).calls == self.fail_at:
            raise KeyboardInterrupt
        return super().evaluate(architecture, epochs, seed, batch_size, progress)


@pytest.fixture
def counting():
    CountingTask.calls, CountingTask.fail_at = 0, None
    return CountingTask(length=4, train_size=64, test_size=32, epochs=1, batch_size=32)


def quiet(*_):
    pass


def run_search(task, db, **kwargs):
    options = dict(
        strategy="random", budget=3, db=str(db), hidden_size=8, length=2, progress=False, log=quiet
    )
    options.update(kwargs)
    return search(task, **options)


def test_search_trains_records_and_ranks_every_candidate(tmp_path, counting):
    rows = run_search(counting, tmp_path / "x.db")
    assert counting.calls == 3 and len(rows) == 3
    assert [row.rank for row in rows] == [1, 2, 3]
    assert rows[0].value >= rows[1].value >= rows[2].value
    with ResultsStore(tmp_path / "x.db") as store:
        results = store.results("long_memory")
        assert len(results) == 3 and {r.metric for r in results} == {"accuracy"}
        for row in rows:
            assert row.params == next(
                r.params for r in results if r.architecture_id == row.architecture_id
            )


def test_a_rerun_skips_what_is_stored_and_an_interrupted_search_resumes(tmp_path, counting):
    db = tmp_path / "x.db"
    counting.fail_at = 3
    with pytest.raises(KeyboardInterrupt):
        run_search(counting, db)
    with ResultsStore(db) as store:
        assert len(store.results()) == 2
    counting.fail_at = None
    rows = run_search(counting, db)
    assert counting.calls == 4  # two stored, the interrupted one retrained
    again = run_search(counting, db)
    assert counting.calls == 4 and [r.architecture_id for r in again] == [
        r.architecture_id for r in rows
    ]


@pytest.mark.parametrize(
    "strategy,uses_parents",
    [("mutate", True), ("crossover", True), ("random", False), ("greedy", False)],
)
def test_mutate_and_crossover_start_from_the_leaderboard(
    strategy, uses_parents, tmp_path, monkeypatch
):
    db = tmp_path / "x.db"
    ranked = [row.architecture for row in run_search(TINY, db, budget=3)]
    seen = {}
    original = search_module.propose

    def recording(*args, **kwargs):
        seen["parents"] = list(kwargs["parents"])
        return original(*args, **kwargs)

    monkeypatch.setattr(search_module, "propose", recording)
    rows = run_search(TINY, db, strategy=strategy, budget=2, rate=0.5, seed=1)
    assert seen["parents"] == (ranked if uses_parents else [])
    assert len(rows) == 5


def test_search_rejects_unknown_tasks_and_strategies(tmp_path):
    with pytest.raises(ValueError, match="digits"):
        search("sudoku", db=str(tmp_path / "x.db"), progress=False)
    with pytest.raises(ValueError, match="strategy"):
        search(TINY, strategy="annealing", db=str(tmp_path / "x.db"), progress=False)


# ---------------------------------------------------------------------------- command line
def explore(*argv, db):
    return cli.main(["explore", *argv, "--db", str(db)])


def test_cli_init_dream_store_leaderboard_dedup(tmp_path, capsys):
    db = tmp_path / "e.db"
    assert explore("init", db=db) == 0
    assert "schema version 2, 0 architectures, 0 results" in capsys.readouterr().out
    assert explore("dream", "--count", "3", "--hidden-size", "16", "--store", db=db) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(re.match(r"[0-9a-f]{16} +[\d,]+ params", line) for line in lines)
    assert explore("dream", "--count", "3", "--hidden-size", "16", "--store", db=db) == 0
    assert capsys.readouterr().out.strip().splitlines() == lines  # seeded, deduplicated
    assert explore("init", db=db) == 0
    assert "3 architectures" in capsys.readouterr().out
    assert explore("leaderboard", "--task", "long_memory", db=db) == 0
    assert "(no results yet)" in capsys.readouterr().out
    assert explore("dedup", db=db) == 0
    assert "merged 0" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_search_then_export_a_module_that_rebuilds_the_model(tmp_path, capsys):
    db, module = tmp_path / "e.db", tmp_path / "best.py"
    argv = [
        "search",
        "--task",
        "long_memory",
        "--count",
        "1",
        "--epochs",
        "1",
        "--hidden-size",
        "8",
        "--length",
        "2",
        "--no-progress",
    ]
    assert explore(*argv, db=db) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "accuracy" in out
    assert explore("export", "1", "--task", "long_memory", "--out", str(module), db=db) == 0
    spec = importlib.util.spec_from_file_location("best", module)
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    with ResultsStore(db) as store:
        architecture = store.architecture(1)
        params = store.results()[0].params
    model = generated.build_model()
    from mlx.utils import tree_flatten

    assert sum(v.size for _, v in tree_flatten(model.parameters())) == params
    assert isinstance(architecture, Architecture)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["leaderboard"], "no results store at"),
        (["export", "7"], "no results store at"),
        (["dream", "--count", "0"], "--count must be >= 1"),
        (["search", "--hidden-size", "-8"], "--hidden-size must be >= 1"),
        (["search", "--strategy", "annealing"], "invalid choice"),
        (["bogus"], "invalid choice"),
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_code_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        explore(*argv, db=tmp_path / "missing.db")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.parametrize("content", [b"garbage", b"SQLite format 3\x00" + b"\x00" * 50])
def test_cli_refuses_corrupt_stores_with_one_line(content, tmp_path, capsys):
    db = tmp_path / "bad.db"
    db.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        explore("leaderboard", db=db)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.db" in err
    assert db.read_bytes() == content


def test_cli_export_by_key_prefix_and_unknown_ids(tmp_path, capsys):
    db = tmp_path / "e.db"
    assert explore("dream", "--count", "2", "--hidden-size", "8", "--store", db=db) == 0
    key = capsys.readouterr().out.split()[0]
    assert explore("export", key[:6], "--task", "long_memory", db=db) == 0
    assert "def build_model()" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        explore("export", "99", db=db)
    assert "99" in capsys.readouterr().err
