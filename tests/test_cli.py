"""The ncps-mlx command line: wiring summaries, plots, JSON files, exit code 2 on bad input."""

import subprocess
import sys

import pytest

from ncps_mlx import cli
from ncps_mlx.wirings import AutoNCP, Wiring


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
