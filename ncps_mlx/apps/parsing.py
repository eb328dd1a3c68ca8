"""How the ``ncps-mlx`` commands fail: one line on stderr, exit code 2, before any work is done.

:class:`CommandParser` is the parser of the program and of every command (the ``explore``
actions included): all failures end in its :meth:`~CommandParser.error`, whether argparse's own,
the numeric ranges of :func:`check_ranges`, the output paths and plot formats of
:meth:`~CommandParser.output_path`, or the exceptions that :meth:`~CommandParser.reporting`
turns into messages.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager

from .._validation import _SEED_BOUND

__all__ = ["SEED_RANGE", "CommandParser", "check_ranges", "one_line"]

#: The range of every ``--seed`` option (that of :func:`ncps_mlx._validation.normalize_seed`).
SEED_RANGE = (0, _SEED_BOUND - 1)


def one_line(text) -> str:
    """``text`` with its lines joined by ``"; "`` (blank lines dropped)."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _describe(error: BaseException) -> str:
    """A user-facing message for ``error``: ``No such file or directory: 'x.json'`` rather than
    ``[Errno 2] ...``, a KeyError's text without its quotes."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename!r}" if error.filename else error.strerror
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose failures are one line on stderr and exit code 2."""

    def error(self, message):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def fail(self, error: BaseException, prefix: str = "", hint: str = ""):
        """:meth:`error` with the message of exception ``error``.

        Args:
            error: What went wrong.
            prefix: What failed, e.g. the option (``"--wiring"``); the message follows a colon.
            hint: A sentence appended after a semicolon.
        """
        message = f"{prefix}: {_describe(error)}" if prefix else _describe(error)
        self.error(f"{message}; {hint}" if hint else message)

    @contextmanager
    def reporting(self, prefix: str = "", hint: str = "", errors=(OSError, ValueError, TypeError)):
        """:meth:`fail` on the ``errors`` raised in the block (the user's input failing).

        Args:
            prefix: As in :meth:`fail`.
            hint: As in :meth:`fail`.
            errors: The exception types to report.
        """
        try:
            yield
        except errors as error:
            self.fail(error, prefix, hint)

    def output_path(self, path, option: str, kind: str = "file"):
        """Check, before any work is done, that ``path`` can be written; return it.

        Args:
            path: The path given, or None (returned as is).
            option: The option, for the message (``"--save"``).
            kind: ``"file"``; ``"plot"``, a file whose suffix is a format matplotlib writes;
                or ``"dir"``, a folder that exists or can be created with its parents.
        """
        if path is None:
            return None
        problem = _plot_format_problem(path) if kind == "plot" else None
        if problem is None and kind == "dir":
            target = os.path.abspath(path)
            while not os.path.exists(target):
                target = os.path.dirname(target)
            if not os.path.isdir(target):
                problem = f"{target!r} is not a directory"
        elif problem is None:
            target = os.path.dirname(os.path.abspath(path))
            if os.path.isdir(path):
                problem = "it is a directory"
            elif not os.path.isdir(target):
                exists = os.path.exists(target)
                problem = (
                    f"{target!r} is not a directory"
                    if exists
                    else f"directory {target!r} does not exist"
                )
            elif os.path.exists(path):
                target = path
        if problem is None and not os.access(target, os.W_OK):
            problem = f"{target!r} is not writable"
        if problem:
            self.error(f"{option}: cannot write {os.fspath(path)!r}: {problem}")
        return path


def _plot_format_problem(path) -> str | None:
    """Why matplotlib would not write a plot to ``path`` (its suffix picks the format)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = os.path.splitext(path)[1][1:].lower()
    if suffix in formats:
        return None
    return f"unknown plot format {suffix or '(no suffix)'!r}; use one of {', '.join(formats)}"


def check_ranges(args: argparse.Namespace, parser: CommandParser) -> None:
    """One-line errors for numbers outside ``args.ranges``, a dict that a command sets with
    ``set_defaults``: dest -> ``(low, high)``, inclusive, ``high`` None for no upper bound."""
    for name, (low, high) in getattr(args, "ranges", {}).items():
        value, option = getattr(args, name, None), "--" + name.replace("_", "-")
        if value is None or (value >= low and (high is None or value <= high)):
            continue
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        parser.error(f"{option} must be {bounds}, got {value}")
