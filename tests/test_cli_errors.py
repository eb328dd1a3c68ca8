"""Every failure of the installed ``ncps-mlx`` command is one line on stderr naming what was
wrong, exit code 2, no traceback, nothing on stdout and no file written; and the commands of
issue 19 work. Each invocation runs the entry point in a subprocess (two at a time)."""

import json
import os
import sqlite3
import subprocess
import sys
from multiprocessing.pool import ThreadPool
from pathlib import Path

import pytest

from ncps_mlx.explore import Architecture, ResultsStore
from ncps_mlx.explore.codegen import export_module
from ncps_mlx.explore.tasks import get_task
from ncps_mlx.wirings import AutoNCP

ENTRY_POINT = Path(sys.executable).parent / "ncps-mlx"
COMMANDS = ("demo", "wiring", "hybrid", "explore", "bench")
ACTIONS = ("init", "dream", "search", "leaderboard", "export", "dedup")
NCP = ["wiring", "AutoNCP", "units=28", "output_size=4", "--input-dim", "4"]
STORE = ["--db", "store.db"]  # digits leaderboard, best first: rows 2, 3, 1

#: (argv, a part of the error line, paths that must not exist afterwards); run in the workspace.
BAD = [
    # the commands of issue 19
    (
        [*NCP, "--plot", "out.xyz"],
        "--plot: cannot write 'out.xyz': unknown plot format 'xyz'",
        ["out.xyz"],
    ),
    (
        [*NCP, "--save", "/nonexistent/dir/x.json"],
        "directory '/nonexistent/dir' does not exist",
        [],
    ),
    (["hybrid", "jamba_lik", "mamba"], "build_pattern", []),
    # top level
    ([], "required: command", []),
    (["frobnicate"], "invalid choice: 'frobnicate'", []),
    (["--frob"], "required: command", []),
    # demo
    (["demo", "--epochs", "x"], "argument --epochs: invalid int value: 'x'", []),
    (["demo", "--epochs", "0"], "--epochs must be >= 1, got 0", []),
    (["demo", "--batch-size", "-4"], "--batch-size must be >= 1, got -4", []),
    (["demo", "--seed", "-1"], "--seed must be in [0, 4294967295], got -1", []),
    (["demo", "--out-dir", "a_file.txt/plots"], "--out-dir: cannot write 'a_file.txt/plots'", []),
    (["demo", "--frobnicate"], "unrecognized arguments: --frobnicate", []),
    # wiring
    ([*NCP, "--plot", "out"], "unknown plot format '(no suffix)'", ["out", "out.png"]),
    ([*NCP, "--save", "a_dir"], "--save: cannot write 'a_dir': it is a directory", []),
    ([*NCP, "--plot", "a_file.txt/x.png"], "a_file.txt' is not a directory", []),
    ([*NCP, "--save", "ok.json", "--plot", "bad.docx"], "unknown plot format 'docx'", ["ok.json"]),
    ([*NCP, "--layout", "hexagonal"], "argument --layout: invalid choice: 'hexagonal'", []),
    (["wiring", "Hexagon", "--input-dim", "3"], "unknown wiring 'Hexagon'", []),
    (["wiring", "AutoNCP", "units=-5", "output_size=2", "--input-dim", "3"], "AutoNCP: units", []),
    (["wiring", "AutoNCP", "units=[1]", "output_size=2", "--input-dim", "3"], "AutoNCP: units", []),
    (
        ["wiring", "AutoNCP", "units=28", "output_size=4", "--input-dim", "-2"],
        "--input-dim must",
        [],
    ),
    (["wiring", "AutoNCP", "units=28", "--input-dim", "2.5"], "invalid int value: '2.5'", []),
    (["wiring", "AutoNCP", "units28", "--input-dim", "3"], "name=value, got 'units28'", []),
    (["wiring", "AutoNCP", "units=28", "output_size=4"], "NAME and --input-dim are required", []),
    (["wiring", "--load", "missing.json"], "--load: No such file or directory: 'missing.json'", []),
    (["wiring", "--load", "corrupt.json"], "'corrupt.json' is not a JSON wiring file", []),
    (["wiring", "--load", "foreign.json"], "--load: config is neither", []),
    (["wiring", "--load", "list.json"], "--load:", []),
    (["wiring", "--load", "a_dir"], "--load: Is a directory: 'a_dir'", []),
    (["wiring", "@missing.json"], "--load: No such file or directory: 'missing.json'", []),
    (["wiring", "--load", "ncp.json", "--input-dim", "5"], "built for 4 inputs", []),
    (["wiring", "--load", "ncp.json", "AutoNCP"], "--load FILE takes no NAME", []),
    (["wiring", "--load", "ncp.json", "--plot", "x.bmp"], "unknown plot format 'bmp'", []),
    (["wiring", "--load", "ncps_auto.json", "--plot", "u.png"], "give --input-dim N", ["u.png"]),
    (
        ["wiring", "AdaptiveWiring", "base_wiring_or_units=@corrupt.json", "--input-dim", "3"],
        "base_wiring_or_units: 'corrupt.json' is not a JSON wiring file",
        [],
    ),
    # hybrid
    (["hybrid", "mamba", "transformer"], "unknown layer types or patterns ['transformer']", []),
    (["hybrid", "mamba", "--hidden-size", "0"], "--hidden-size must be >= 1, got 0", []),
    (["hybrid", "mamba", "--embed-size", "-1"], "--embed-size must be >= 1, got -1", []),
    (["hybrid", "mamba", "--hidden-size", "wide"], "invalid int value: 'wide'", []),
    (["hybrid", "mamba", "heads=4"], "unknown options ['heads']", []),
    (["hybrid", "mamba", 'mamba_state_size="big"'], "state_size must be an integer", []),
    (["hybrid", "attention", "attention_num_heads=5"], "divisible", []),
    (["hybrid", "mamba", "--wiring", "missing.json"], "--wiring: No such file", []),
    (["hybrid", "mamba", "--wiring", "corrupt.json"], "--wiring: 'corrupt.json' is not a JSON", []),
    (["hybrid", "mamba", "--wiring", "a_dir"], "--wiring: Is a directory", []),
    (["hybrid", "mamba", "wiring=@foreign.json"], "wiring: config is neither", []),
    (["hybrid", "jamba_like", "--layers", "0"], "--layers must be >= 1, got 0", []),
    (["hybrid", "mamba", "--layers", "3"], "--layers sets the depth of one named pattern", []),
    (["hybrid", "mamba", "--shared", "attention"], "--shared ['attention']", []),
    (["hybrid", "--embed-size", "8", "heads=4"], "give layer types or a named pattern", []),
    # explore
    (["explore"], "required: action", []),
    (["explore", "frob"], "invalid choice: 'frob'", []),
    (["explore", "leaderboard", "--db", "missing.db"], "no results store at missing.db", []),
    (["explore", "leaderboard", "--db", "a_file.txt"], "is not an ncps-mlx results store", []),
    (["explore", "leaderboard", "--db", "foreign.db"], "foreign SQLite database", []),
    (["explore", "leaderboard", "--db", "a_dir"], "--db: Is a directory: 'a_dir'", []),
    (["explore", "leaderboard", *STORE, "--limit", "0"], "--limit must be >= 1, got 0", []),
    (
        ["explore", "init", "--db", "/nonexistent/x.db"],
        "--db: cannot write '/nonexistent/x.db'",
        [],
    ),
    (["explore", "export", *STORE, "--rank", "0"], "--rank must be >= 1, got 0", []),
    (["explore", "export", *STORE, "--rank", "-2"], "--rank must be >= 1, got -2", []),
    (["explore", "export", *STORE, "--rank", "4"], "the 'digits' leaderboard has 3 rows", []),
    (["explore", "export", *STORE, "--rank", "one"], "invalid int value: 'one'", []),
    (["explore", "export", "1", *STORE, "--rank", "2"], "a row id or key, or --rank, not both", []),
    (["explore", "export", "999", *STORE], "no architecture with id 999 in 'store.db'", []),
    (["explore", "export", *STORE, "--out", "no_dir/best.py"], "--out: cannot write", []),
    (["explore", "export", *STORE, "--out", "a_dir"], "it is a directory", []),
    (["explore", "export", *STORE, "--task", "long_memory"], "no 'long_memory' results", []),
    (["explore", "export", *STORE, "--task", "sudoku"], "invalid choice: 'sudoku'", []),
    (["explore", "dream", "--db", "new.db", "--count", "0"], "--count must be >= 1", ["new.db"]),
    (["explore", "dream", *STORE, "--strategy", "annealing"], "invalid choice: 'annealing'", []),
    (["explore", "dream", *STORE, "--rate", "2"], "rate must be a number in [0, 1]", []),
    (["explore", "dream", *STORE, "--temperature", "-1"], "temperature must be positive", []),
    (["explore", "search", "--db", "new.db", "--hidden-size", "-8"], "--hidden-size", ["new.db"]),
    # bench
    (["bench", "--only", "nonsense"], "--only: unknown family nonsense", ["bench_results"]),
    (["bench", "--repeats", "0"], "--repeats must be >= 1, got 0", ["bench_results"]),
    (["bench", "--quick", "--out", "a_file.txt"], "--out: cannot write 'a_file.txt'", []),
    (["bench", "--torch-device", "tpu"], "argument --torch-device: invalid choice", []),
]

#: Commands that must work: (argv, a part of stdout).
GOOD = [
    (["wiring", "@ncp.json"], "AutoNCP(units=28, input_dim=4"),
    (["wiring", "--load", "ncp.json", "--plot", "loaded.png"], "wrote plot to loaded.png"),
    (
        ["hybrid", "jamba_like", "mamba", "--hidden-size", "32"],
        "Layers: 3 (mamba, attention, mamba)",
    ),
    (["hybrid", "mamba", "--hidden-size", "64", "--wiring", "ncp22.json"], "Parameters:"),
    (["hybrid", "ffn", "wiring=@ncp.json", "--hidden-size", "28"], "Parameters:"),
    (["explore", "export", "--rank", "1", *STORE, "--out", "best.py"], "wrote best.py"),
    (["explore", "export", "--rank", "2", *STORE], "def build_model"),
]


def _command_line(argv) -> str:
    return " ".join(["ncps-mlx", *argv])


def _make_workspace(folder: Path) -> None:
    """The files the invocations name: wirings (ours, ncps's, corrupt, foreign), stores."""
    (folder / "a_dir").mkdir()
    (folder / "a_file.txt").write_text("not a folder, not a store\n")
    (folder / "corrupt.json").write_text('{"class_name": "AutoNCP", ')
    (folder / "foreign.json").write_text(json.dumps({"name": "a package.json, say"}))
    (folder / "list.json").write_text("[1, 2, 3]")
    config = {"units": 12, "output_size": 3, "sparsity_level": 0.5, "seed": 4}
    (folder / "ncps_auto.json").write_text(json.dumps(config))  # ncps's AutoNCP.get_config()
    for units, path in ((28, "ncp.json"), (22, "ncp22.json")):
        wiring = AutoNCP(units, 4, seed=1)
        wiring.build(4)
        wiring.save(folder / path)
    with ResultsStore(folder / "store.db") as store:
        for pattern, accuracy in ((("mamba",), 0.5), (("ffn",), 0.9), (("gla",), 0.7)):
            row = store.add_architecture(Architecture(pattern, 16))
            store.add_result(row, "digits", "accuracy", accuracy, True, params=100, seconds=1.0)
    with sqlite3.connect(folder / "foreign.db") as db:
        db.execute("CREATE TABLE notes (text TEXT)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{command line: (workspace, CompletedProcess)}`` of every invocation of BAD and GOOD."""
    assert ENTRY_POINT.exists(), f"the ncps-mlx entry point is not installed at {ENTRY_POINT}"
    workspace = tmp_path_factory.mktemp("cli")
    _make_workspace(workspace)
    environment = {**os.environ, "MPLBACKEND": "Agg"}

    def run(argv):
        command = [str(ENTRY_POINT), *argv]
        return subprocess.run(
            command, cwd=workspace, env=environment, capture_output=True, text=True, timeout=120
        )

    argvs = [argv for argv, *_ in BAD + GOOD]
    with ThreadPool(2) as pool:
        results = pool.map(run, argvs)
    return workspace, {
        _command_line(argv): result for argv, result in zip(argvs, results, strict=True)
    }


def test_the_table_covers_every_command_with_enough_bad_invocations():
    assert len(BAD) >= 30
    assert {argv[0] for argv, *_ in BAD if argv} >= set(COMMANDS)
    assert len({_command_line(argv) for argv, *_ in BAD + GOOD}) == len(BAD + GOOD)


@pytest.mark.parametrize("argv,message,absent", BAD, ids=[_command_line(c[0]) for c in BAD])
def test_a_bad_invocation_is_one_line_exit_code_2_and_no_output(argv, message, absent, runs):
    workspace, results = runs
    result = results[_command_line(argv)]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{_prog(argv)}: error: ") and message in lines[0], lines[0]
    assert result.stdout == ""
    assert [path for path in absent if (workspace / path).exists()] == []


def _prog(argv) -> str:
    """The program name that an error of ``argv`` starts with: ``ncps-mlx explore export``."""
    words = ["ncps-mlx"]
    if argv and argv[0] in COMMANDS:
        words.append(argv[0])
        if argv[0] == "explore" and len(argv) > 1 and argv[1] in ACTIONS:
            words.append(argv[1])
    return " ".join(words)


@pytest.mark.parametrize("argv,expected", GOOD, ids=[_command_line(c[0]) for c in GOOD])
def test_the_commands_of_the_issue_work(argv, expected, runs):
    result = runs[1][_command_line(argv)]
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_a_loaded_wiring_is_plotted_and_the_best_rank_exported(runs):
    workspace, _ = runs
    assert (workspace / "loaded.png").read_bytes()[:4] == b"\x89PNG"
    task = get_task("digits")
    best = Architecture(("ffn",), 16)  # accuracy 0.9, row 2
    assert (workspace / "best.py").read_text() == export_module(
        best, task.input_size, task.num_classes
    )


def test_a_resampled_wiring_is_noted_on_one_stderr_line(runs):
    argv = ["hybrid", "mamba", "--hidden-size", "64", "--wiring", "ncp22.json"]
    [note] = runs[1][_command_line(argv)].stderr.splitlines()
    assert note.startswith("ncps-mlx hybrid: note: ") and "from 22 to 64 units" in note
