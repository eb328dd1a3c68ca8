"""The ncps-mlx command line: demo, wiring and hybrid commands, exit code 2 on bad input."""

import json
import re
import subprocess
import sys

import pytest
from mlx.utils import tree_flatten

from ncps_mlx.apps import cli
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
            "input_dim must be >= 1",
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


def test_hybrid_command_masks_projections_with_a_saved_wiring(tmp_path, capsys):
    wiring = AutoNCP(32, 8, seed=1)
    wiring.build(32)
    wiring.save(tmp_path / "w.json")
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
        (["hybrid", "mamba", "transformer"], "unknown layer types ['transformer']"),
        (["hybrid", "mamba", "heads=4"], "unknown options ['heads']"),
        (["hybrid", "mamba", "--hidden-size", "0"], "hidden_size must be >= 1"),
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


def test_unwritable_output_gives_one_line_and_exit_code_1(tmp_path, capsys):
    argv = [
        "wiring",
        "AutoNCP",
        "units=28",
        "output_size=4",
        "--input-dim",
        "16",
        "--plot",
        str(tmp_path / "missing" / "x.png"),
    ]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "No such file" in err


@pytest.mark.parametrize("command", ["demo", "wiring", "hybrid"])
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
