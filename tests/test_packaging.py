"""The version is written once (``ncps_mlx/_version.py``) and every place that reports it agrees:
the ``ncps-mlx --version`` entry point, ``ncps_mlx.__version__``, the installed metadata, and the
newest entry of the CHANGELOG. (CI checks the built sdist and wheel themselves: ``.ci/run``.)
"""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ncps_mlx

ROOT = Path(__file__).resolve().parents[1]


def written_version() -> str:
    """The version as ``ncps_mlx/_version.py`` spells it, read as text (nothing imported)."""
    source = (Path(ncps_mlx.__file__).parent / "_version.py").read_text()
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', source, flags=re.M)
    return version


def test_the_package_reports_the_written_version():
    assert ncps_mlx.__version__ == written_version()


def test_the_version_command_of_the_installed_entry_point_prints_it():
    script = Path(sys.executable).parent / "ncps-mlx"
    assert script.exists(), f"the ncps-mlx entry point is not installed beside {sys.executable}"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ncps-mlx {written_version()}\n"


def test_the_installed_metadata_has_it():
    # An editable install records the version when it is installed: after changing
    # _version.py, reinstall (pip install -e .) and this holds again.
    assert importlib.metadata.version("ncps-mlx") == written_version()


def test_pyproject_reads_the_version_from_the_version_module():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "ncps_mlx._version.__version__"


def test_no_other_module_writes_a_version():
    package = Path(ncps_mlx.__file__).parent
    writers = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"^\s*__version__\s*=", path.read_text(), flags=re.M)
    ]
    assert writers == ["_version.py"]


def test_the_newest_changelog_entry_is_the_current_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = [
        name
        for name in re.findall(r"^## \[([^\]]+)\]", changelog, flags=re.M)
        if name != "Unreleased"
    ]
    assert releases and releases[0] == written_version()
    assert re.search(rf"^\[{re.escape(written_version())}\]: https://", changelog, flags=re.M)
