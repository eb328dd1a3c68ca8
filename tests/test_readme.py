"""The README's Python examples run as written (in a scratch directory), and it lists every
example script (with the time its docstring states) and every tutorial, so it stays truthful."""

import os
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.py"))
TUTORIALS = sorted(path.stem for path in (ROOT / "docs" / "tutorials").glob("*.rst"))
STATED_TIME = re.compile(r"~\d+ (?:s|min)\b")


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": "__readme__"})
    assert os.getcwd() == str(tmp_path)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_is_listed_with_the_time_its_docstring_states(name):
    command = f"python examples/{name}"
    listed = [line for line in README.read_text().splitlines() if f"`{command}`" in line]
    assert listed, f"the README does not list {command}"
    stated = STATED_TIME.findall(listed[0])
    assert stated, f"the README states no time (~N s or ~N min) for {command}"
    # The docstring's usage line of the default run states the same time.
    docstring = (ROOT / "examples" / name).read_text().splitlines()
    default_run = next(line for line in docstring if line.strip().startswith(command))
    assert STATED_TIME.findall(default_run) == stated[:1], (name, default_run)


@pytest.mark.parametrize("stem", TUTORIALS)
def test_every_tutorial_is_linked_from_the_readme_and_the_docs_index(stem):
    assert f"(docs/tutorials/{stem}.rst)" in README.read_text()
    assert f"tutorials/{stem}\n" in (ROOT / "docs" / "index.rst").read_text()
