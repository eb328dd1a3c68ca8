"""The migrating guide's examples run when pasted into a fresh Python session.

Issue 18, point 7. Every Python example of ``docs/tutorials/migrating_from_ncps.rst`` (the
contents of ``.. code-block:: python``, ``.. testcode::`` and ``.. doctest::`` directives, and
``>>>`` paragraphs) is run alone, in page order, by a fresh ``python`` process in an empty
directory: nothing may come from Sphinx's doctest setup (``doctest_global_setup`` in
``docs/conf.py``), from hidden blocks or from an earlier example. Examples that import ``torch``
or ``ncps`` are skipped when those are not installed (the ``parity`` extra). Sphinx's doctest
builder checks the printed outputs; this checks that the page's code is complete.
"""

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = [DOCS / "tutorials" / "migrating_from_ncps.rst"]

#: A directive line, also after list-table bullets (``* - .. code-block:: python``).
DIRECTIVE = re.compile(r"^(?P<lead>\s*(?:[*-]\s+)*)\.\. (?P<name>[\w-]+)::\s*(?P<argument>\S*)")
CODE_DIRECTIVES = ("testcode", "doctest")
#: Literal blocks: Python when their language is.
LITERAL_DIRECTIVES = ("code-block", "code", "sourcecode")
#: Directives whose code runs but is not shown to the reader.
HIDDEN_DIRECTIVES = ("testsetup", "testcleanup")
#: ``import torch`` / ``from ncps.wirings import ...`` (not ``ncps_mlx``).
PARITY_IMPORT = re.compile(r"^\s*(?:import|from)\s+(torch|ncps)\b(?!_)", re.MULTILINE)


class Block(NamedTuple):
    page: Path
    line: int  # of the directive, 1-based
    directive: str
    options: tuple[str, ...]
    source: str


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _doctest_source(text: str) -> str:
    """The Python of a doctest: its ``>>>`` and ``...`` lines, without prompts or outputs."""
    return "\n".join(
        line[4:] if len(line) > 3 else ""
        for line in textwrap.dedent(text).splitlines()
        if line.rstrip() in (">>>", "...") or line.startswith((">>> ", "... "))
    )


def _block_end(lines: list[str], start: int, column: int) -> int:
    """The line after the block that line ``start`` opens: the following lines that are blank
    or indented further than ``column``."""
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > column):
        end += 1
    return end


def blocks(page: Path) -> list[Block]:
    """Every block of Python on ``page``, in order (hidden ones included).

    Directives that hold other blocks (a ``list-table`` of code blocks) are scanned inside;
    literal blocks (any other ``code-block``, ``testoutput``, ``::`` paragraphs) are skipped.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = DIRECTIVE.match(line)
        if match is None and line.lstrip().startswith(">>> "):  # a doctest paragraph
            end = index
            while end < len(lines) and lines[end].strip():
                end += 1
            source = _doctest_source("\n".join(lines[index:end]))
            found.append(Block(page, index + 1, ">>>", (), source + "\n"))
            index = end
        elif match is None:
            if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
                index = _block_end(lines, index, _indent(line))  # a literal block follows
            else:
                index += 1
        else:
            name, argument = match["name"], match["argument"]
            end = _block_end(lines, index, len(match["lead"]))
            body = lines[index + 1 : end]
            options = []
            while body and body[0].strip().startswith(":"):
                options.append(body.pop(0).strip())
            if name in CODE_DIRECTIVES + HIDDEN_DIRECTIVES or (
                name in LITERAL_DIRECTIVES and argument in ("python", "py", "python3")
            ):
                text = textwrap.dedent("\n".join(body)).strip("\n")
                if name == "doctest" or text.lstrip().startswith(">>>"):
                    text = _doctest_source(text)
                found.append(Block(page, index + 1, name, tuple(options), text + "\n"))
                index = end
            elif name in LITERAL_DIRECTIVES + ("testoutput",):
                index = end
            else:
                index += 1  # e.g. a list-table: its code blocks are found by the scan
    return found


def _block_id(block: Block) -> str:
    return f"{block.page.name}:{block.line}"


def _parity_modules(block: Block) -> list[str]:
    """The reference modules (``ncps``, ``torch``) the block imports."""
    return sorted(set(PARITY_IMPORT.findall(block.source)))


ALL_BLOCKS = [
    pytest.param(
        block,
        id=_block_id(block),
        marks=[pytest.mark.parity] if _parity_modules(block) else [],
    )
    for page in PAGES
    for block in blocks(page)
]


def test_the_guide_has_examples_of_each_kind_the_scanner_reads():
    """The scan is not vacuous: the guide's ncps-free and parity examples, and the code blocks
    nested in its training-loop table, are all found."""
    page_blocks = blocks(PAGES[0])
    directives = {block.directive for block in page_blocks}
    assert {"testcode", "code-block"} <= directives
    assert any(PARITY_IMPORT.search(block.source) for block in page_blocks)
    assert any(not PARITY_IMPORT.search(block.source) for block in page_blocks)
    table_blocks = [block for block in page_blocks if block.directive == "code-block"]
    assert any("optimizer.step()" in block.source for block in table_blocks)  # ncps's side
    assert any("optimizer.update(" in block.source for block in table_blocks)  # ours


def test_the_scanner_reads_doctests_and_nested_code_blocks(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(
        textwrap.dedent(
            """\
            .. doctest::
               :skipif: x

               >>> a = 1
               >>> for i in range(2):
               ...     a += i
               >>> a
               2

            * - .. code-block:: python

                   b = 2

              - .. code-block:: console

                   $ ls

            >>> c = 3
            >>> c
            3
            """
        ),
        encoding="utf-8",
    )
    found = blocks(page)
    assert [(block.line, block.directive, block.options) for block in found] == [
        (1, "doctest", (":skipif: x",)),
        (10, "code-block", ()),
        (18, ">>>", ()),
    ]
    assert found[0].source == "a = 1\nfor i in range(2):\n    a += i\na\n"
    assert found[1].source == "b = 2\n"
    assert found[2].source == "c = 3\nc\n"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_no_example_depends_on_hidden_code(page):
    """No ``testsetup``/``testcleanup`` and no ``:hide:`` code: the reader sees all of it."""
    hidden = [
        block.line
        for block in blocks(page)
        if block.directive in HIDDEN_DIRECTIVES or ":hide:" in block.options
    ]
    assert hidden == []


@pytest.mark.parametrize("block", ALL_BLOCKS)
def test_the_example_runs_alone_in_a_fresh_python(block, tmp_path):
    for module in _parity_modules(block):  # the parity extra: ncps 1.0.1 and torch
        pytest.importorskip(module)
    script = tmp_path / "example.py"
    script.write_text(block.source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,  # files the example writes land here
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"the example at {_block_id(block)} fails when run alone:\n{block.source}\n"
        f"{result.stderr[-3000:]}"
    )
