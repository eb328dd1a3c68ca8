"""The ncps-mlx command line: its commands, help texts, checks and exit code 2 on bad input
(the table of bad invocations through the installed entry point: test_cli_errors.py)."""

import argparse
import json
import re
import subprocess
import sys

import pytest
from mlx.utils import tree_flatten

from ncps_mlx.apps import cli
from ncps_mlx.apps.parsing import CommandParser, one_line
from ncps_mlx.explore import Architecture, ResultsStore
from ncps_mlx.explore.codegen import export_module
from ncps_mlx.explore.tasks import get_task
from ncps_mlx.hybrid import HybridBuilder
from ncps_mlx.wirings import AutoNCP, Wiring
from ncps_mlx.wirings.gallery import example_wirings


def test_wiring_command_prints_summary_and_writes_plot_and_json(tmp_path, capsys):
    plot, saved = tmp_path / "ncp.png", tmp_path / "ncp.json"
    argv = ["wiring", "AutoNCP", "units=28", "output_size=4", "--input-dim", "16"]
    assert cli.main([*argv, "--plot", str(plot), "--save", str(saved)]) == 0
    expected = AutoNCP(28, 4)
    expected.build(16)
    out = capsys.readouterr().out
    assert repr(expected) in out
    assert "motor=4, command=9, inter=15" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    restored = Wiring.load(saved)
    assert type(restored) is AutoNCP
    assert (restored.adjacency_matrix == expected.adjacency_matrix).all()
    assert (restored.sensory_adjacency_matrix == expected.sensory_adjacency_matrix).all()


def test_wiring_command_parses_json_values(capsys):
    assert (
        cli.main(
            [
                "wiring",
                "Random",
                "units=10",
                "sparsity_level=0.5",
                "random_seed=3",
                "--input-dim",
                "2",
            ]
        )
        == 0
    )
    assert (
        "Random(units=10, input_dim=2, output_dim=10, synapses=50, sensory_synapses=10)"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["wiring", "Hexagon", "--input-dim", "3"], "unknown wiring 'Hexagon'"),
        (
            ["wiring", "AutoNCP", "units=3", "output_size=1", "--input-dim", "3"],
            "units must be >= 4",
        ),
        (["wiring", "AutoNCP", "units28", "--input-dim", "3"], "name=value"),
        (["wiring", "AutoNCP", "units=28", "outputs=4", "--input-dim", "3"], "outputs"),
        (
            ["wiring", "AutoNCP", "units=28", "output_size=4", "--input-dim", "0"],
            "--input-dim must be >= 1, got 0",
        ),
        (["wiring", "AutoNCP", "units=28", "output_size=4"], "--input-dim"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_a_one_line_error_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_python_dash_m_runs_the_cli_with_help():
    result = subprocess.run(
        [sys.executable, "-m", "ncps_mlx", "wiring", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--input-dim" in result.stdout and "--plot" in result.stdout


def test_wiring_list_shows_every_wiring_class_with_its_arguments(capsys):
    assert cli.main(["wiring", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("AutoNCP(units, output_size", "MultiScaleWiring(fast_neurons", "MetaWiring("):
        assert name in out


@pytest.mark.parametrize("name", sorted(example_wirings()))
def test_wiring_command_builds_every_wiring_class(name, tmp_path, capsys):
    """Each gallery wiring, rebuilt from its config's arguments on the command line."""
    wiring = example_wirings()[name]
    config = wiring.get_config()
    arguments = []
    for key, value in config["args"].items():
        if isinstance(value, dict):  # a wrapped wiring: passed as @file.json
            path = tmp_path / f"{key}.json"
            Wiring.from_config(value).save(path)
            arguments.append(f"{key}=@{path}")
        else:
            arguments.append(f"{key}={json.dumps(value)}")
    saved = tmp_path / "out.json"
    assert (
        cli.main(
            ["wiring", name, *arguments, "--input-dim", str(wiring.input_dim), "--save", str(saved)]
        )
        == 0
    )
    assert f"{name}(units={wiring.units}" in capsys.readouterr().out
    assert Wiring.load(saved).units == wiring.units


def test_wiring_arguments_may_follow_the_options(capsys):
    assert cli.main(["wiring", "AutoNCP", "--input-dim", "16", "units=28", "output_size=4"]) == 0
    assert "synapses=86" in capsys.readouterr().out


def test_hybrid_command_prints_the_diagram_and_the_exact_parameter_count(capsys):
    argv = [
        "hybrid",
        "mamba",
        "attention",
        "ffn",
        "--embed-size",
        "16",
        "--hidden-size",
        "64",
        "attention_num_heads=4",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    built = HybridBuilder.build(["mamba", "attention", "ffn"], 16, 64, attention_num_heads=4)
    count = sum(v.size for _, v in tree_flatten(built.parameters()))
    assert "Layer pattern: M → A → F" in out
    assert f"Parameters: {count:,}" in out


def test_hybrid_command_expands_named_patterns_with_shared_layers(capsys):
    assert (
        cli.main(
            ["hybrid", "zamba_like", "--layers", "6", "--embed-size", "8", "--hidden-size", "32"]
        )
        == 0
    )
    out = capsys.readouterr().out
    pattern, shared = HybridBuilder.named_pattern("zamba_like", 6)
    assert "shared: ['attention']" in out
    assert f"Parameters: {HybridBuilder.param_count(pattern, 8, 32, shared=shared):,}" in out


def saved_autoncp(path, units: int, motors: int):
    """An ``AutoNCP(units, motors)`` built on ``units`` inputs, saved to ``path``; returned."""
    wiring = AutoNCP(units, motors, seed=1)
    wiring.build(units)
    wiring.save(path)
    return wiring


def test_hybrid_command_masks_projections_with_a_saved_wiring(tmp_path, capsys):
    saved_autoncp(tmp_path / "w.json", 32, 8)
    assert (
        cli.main(
            [
                "hybrid",
                "ffn",
                "--embed-size",
                "8",
                "--hidden-size",
                "32",
                "--wiring",
                str(tmp_path / "w.json"),
            ]
        )
        == 0
    )
    assert "Parameters:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["hybrid", "mamba", "transformer"], "['transformer']"),
        (["hybrid", "mamba", "heads=4"], "unknown options ['heads']"),
        (["hybrid", "mamba", "--hidden-size", "0"], "--hidden-size must be >= 1, got 0"),
        (["hybrid", "mamba", "--wiring", "missing.json"], "--wiring"),
        (["hybrid", "mamba", "--frob"], "unrecognized arguments: --frob"),
        (["wiring", "AutoNCP", "units=28", "--input-dim", "3", "--frob"], "--frob"),
        (
            ["wiring", "AdaptiveWiring", "base_wiring_or_units=@missing.json", "--input-dim", "3"],
            "No such file",
        ),
        (["wiring", "--input-dim", "3"], "NAME and --input-dim are required"),
        (["demo", "--epochs", "0"], "--epochs must be >= 1"),
        (["demo", "--batch-size", "-1"], "--batch-size must be >= 1"),
        (["demo", "more"], "unrecognized arguments: more"),
        ([], "required: command"),
    ],
)
def test_bad_arguments_of_every_command_give_one_line_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_unwritable_output_is_refused_before_any_work_with_exit_code_2(tmp_path, capsys):
    plot, saved = tmp_path / "missing" / "x.png", tmp_path / "ok.json"
    argv = ["wiring", "AutoNCP", "units=28", "output_size=4", "--input-dim", "16"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--save", str(saved), "--plot", str(plot)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not saved.exists()
    assert captured.err == (
        f"ncps-mlx wiring: error: --plot: cannot write {str(plot)!r}: directory "
        f"{str(plot.parent)!r} does not exist (see ncps-mlx wiring --help)\n"
    )


@pytest.mark.parametrize("command", ["demo", "wiring", "hybrid", "explore", "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: ncps-mlx " + command in capsys.readouterr().out


@pytest.mark.slow
def test_demo_reaches_90_percent_test_accuracy_in_its_default_setting(tmp_path):
    """The README's main job: ``ncps-mlx demo`` (default fast setting, seed 0)."""
    result = subprocess.run(
        [sys.executable, "-m", "ncps_mlx", "demo", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", result.stdout).group(1))
    assert accuracy >= 90.0
    assert "epoch 30/30" in result.stderr and "test_accuracy=" in result.stderr  # progress bar
    for name in ("demo_wiring.png", "demo_training.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------- help texts
def _arguments_of(parser, path=()):
    """``(command path, argparse action)`` for every argument of every (sub-)command."""
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # the sub-commands' one-line helps
                yield (*path, choice.dest), choice
            for name, sub in action.choices.items():
                yield from _arguments_of(sub, (*path, name))


def test_every_option_of_every_command_has_help_text():
    arguments = list(_arguments_of(cli.build_parser()))
    commands = {" ".join(path) for path, _ in arguments}
    assert {"demo", "wiring", "hybrid", "bench", "explore export", "explore search"} <= commands
    undocumented = [
        f"{' '.join(path)}: {action.option_strings or action.dest}"
        for path, action in arguments
        if not action.help
    ]
    assert undocumented == []


# ---------------------------------------------------------------------------- output checks
def test_output_paths_and_plot_formats_are_checked_without_creating_anything(tmp_path, capsys):
    parser = CommandParser(prog="ncps-mlx test")
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")
    new_folder = tmp_path / "new" / "deeper"
    assert parser.output_path(str(new_folder), "--out", kind="dir") == str(new_folder)
    assert not (tmp_path / "new").exists()
    assert parser.output_path(str(tmp_path / "p.PDF"), "--plot", kind="plot") == str(
        tmp_path / "p.PDF"
    )
    assert parser.output_path(None, "--save") is None
    refused = [
        (a_file / "sub", "dir", f"{str(a_file)!r} is not a directory"),
        (tmp_path, "file", "it is a directory"),
        (tmp_path / "missing" / "x.json", "file", "does not exist"),
        (tmp_path / "x.docx", "plot", "unknown plot format 'docx'; use one of "),
        (tmp_path / "x", "plot", "unknown plot format '(no suffix)'"),
    ]
    for path, kind, problem in refused:
        with pytest.raises(SystemExit) as exit_info:
            parser.output_path(str(path), "--opt", kind=kind)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ncps-mlx test: error: --opt: cannot write {str(path)!r}: ")
        assert problem in err and err.count("\n") == 1


def test_multi_line_messages_become_one_line():
    assert one_line("first\n\n  second  \nthird") == "first; second; third"


# ---------------------------------------------------------------------------- wiring --load
def test_a_saved_wiring_is_inspected_and_plotted_with_load_or_at_file(tmp_path, capsys):
    wiring = AutoNCP(28, 4, seed=2)
    wiring.build(16)
    wiring.save(tmp_path / "ncp.json")
    plot = tmp_path / "ncp.svg"
    assert cli.main(["wiring", "--load", str(tmp_path / "ncp.json"), "--plot", str(plot)]) == 0
    assert capsys.readouterr().out == f"{cli.wiring_summary(wiring)}\nwrote plot to {plot}\n"
    assert "<svg" in plot.read_text()
    assert cli.main(["wiring", f"@{tmp_path / 'ncp.json'}"]) == 0
    assert capsys.readouterr().out == cli.wiring_summary(wiring) + "\n"


def test_an_ncps_config_loads_unbuilt_and_builds_with_input_dim(tmp_path, capsys):
    config = {"units": 12, "output_size": 3, "sparsity_level": 0.5, "seed": 4}
    (tmp_path / "auto.json").write_text(json.dumps(config))  # ncps 1.0.1's AutoNCP.get_config()
    assert cli.main(["wiring", "--load", str(tmp_path / "auto.json")]) == 0
    assert "input_dim=None" in capsys.readouterr().out
    saved = tmp_path / "ours.json"
    argv = ["wiring", "--load", str(tmp_path / "auto.json"), "--input-dim", "5"]
    assert cli.main([*argv, "--save", str(saved)]) == 0
    expected = AutoNCP(12, 3, sparsity_level=0.5, seed=4)
    expected.build(5)
    assert repr(expected) in capsys.readouterr().out
    assert (Wiring.load(saved).sensory_adjacency_matrix == expected.sensory_adjacency_matrix).all()


# ---------------------------------------------------------------------------- hybrid
def test_named_patterns_in_a_layer_list_stand_for_one_cycle_of_them(capsys):
    argv = ["hybrid", "jamba_like", "mamba", "--embed-size", "8", "--hidden-size", "32"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    built = HybridBuilder.build(["mamba", "attention", "mamba"], 8, 32)
    assert "Layers: 3 (mamba, attention, mamba)" in out
    assert f"Parameters: {sum(v.size for _, v in tree_flatten(built.parameters())):,}" in out


def test_a_resampled_wiring_is_one_note_line_on_stderr(tmp_path, capsys):
    saved_autoncp(tmp_path / "ncp22.json", 22, 4)
    argv = ["hybrid", "mamba", "ffn", "--embed-size", "8", "--hidden-size", "64"]
    assert cli.main([*argv, "--wiring", str(tmp_path / "ncp22.json")]) == 0
    captured = capsys.readouterr()
    assert "Parameters:" in captured.out
    [note] = captured.err.splitlines()
    assert note.startswith("ncps-mlx hybrid: note: ") and "from 22 to 64 units" in note


# ---------------------------------------------------------------------------- explore export --rank
@pytest.fixture
def ranked_store(tmp_path):
    """A results store whose digits leaderboard is row 2, row 3, row 1 (best first)."""
    db = tmp_path / "ranked.db"
    architectures = [Architecture(pattern, 16) for pattern in (("mamba",), ("ffn",), ("gla",))]
    with ResultsStore(db) as store:
        for architecture, accuracy in zip(architectures, (0.5, 0.9, 0.7), strict=True):
            row = store.add_architecture(architecture)
            store.add_result(row, "digits", "accuracy", accuracy, True, params=100, seconds=1.0)
    return db, architectures


@pytest.mark.parametrize("rank_argv,index", [([], 1), (["--rank", "2"], 2), (["--rank", "3"], 0)])
def test_explore_export_writes_the_architecture_of_a_rank(rank_argv, index, ranked_store, tmp_path):
    db, architectures = ranked_store
    out = tmp_path / "best.py"
    assert cli.main(["explore", "export", *rank_argv, "--db", str(db), "--out", str(out)]) == 0
    task = get_task("digits")
    assert out.read_text() == export_module(architectures[index], task.input_size, task.num_classes)


def test_explore_export_refuses_a_rank_beyond_the_leaderboard(ranked_store, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explore", "export", "--rank", "4", "--db", str(ranked_store[0])])
    assert exit_info.value.code == 2
    assert "--rank 4: the 'digits' leaderboard has 3 rows" in capsys.readouterr().err
