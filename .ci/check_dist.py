"""Check the sdist and the wheel that ``python -m build`` made, before installing the wheel.

* the wheel holds every file of the package (``ncps_mlx/``, data files such as ``py.typed``
  included) and nothing else of ours, the license, and metadata with the written version, the
  SPDX license and the console script;
* the sdist holds the package and what a release needs beside it: README, LICENSE, CHANGELOG,
  pyproject.toml.

Usage, from the repository root: ``python .ci/check_dist.py DIST_DIR``.
"""

import re
import sys
import tarfile
import zipfile
from pathlib import Path


def package_files() -> set[str]:
    """The checkout's package files, as paths relative to the repository root."""
    return {
        path.as_posix()
        for path in Path("ncps_mlx").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"check_dist: {message}")


def main(dist: Path) -> None:
    source = Path("ncps_mlx/_version.py").read_text()
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', source, flags=re.M)
    expected = package_files()

    (wheel,) = dist.glob(f"ncps_mlx-{version}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"ncps_mlx-{version}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    packaged = {name for name in names if not name.startswith(f"{info}/")}
    missing, unexpected = sorted(expected - packaged), sorted(packaged - expected)
    check(not missing and not unexpected, f"wheel: missing {missing}, unexpected {unexpected}")
    check(f"{info}/licenses/LICENSE" in names, "wheel: no LICENSE")
    for line in (f"Version: {version}", "License-Expression: Apache-2.0", "License-File: LICENSE"):
        check(f"\n{line}\n" in metadata, f"wheel METADATA lacks {line!r}")
    check("ncps-mlx = ncps_mlx.apps.cli:main" in entry_points, "wheel: no ncps-mlx console script")

    (sdist,) = dist.glob(f"ncps_mlx-{version}.tar.gz")
    with tarfile.open(sdist) as archive:
        top = f"ncps_mlx-{version}/"
        names = {name.removeprefix(top) for name in archive.getnames()}
    needed = expected | {"README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"}
    check(needed <= names, f"sdist: missing {sorted(needed - names)}")
    print(f"check_dist: {wheel.name} ({len(packaged)} package files) and {sdist.name} are complete")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
