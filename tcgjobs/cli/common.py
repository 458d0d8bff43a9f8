"""What every command shares: loading settings at the edge, output mode, JSON, exits.

The rich consoles are created, and rich imported, on first use (a table or a progress bar on a
terminal, a message on stderr): results, JSON and piped output are plain writes that never load it.

Failing, the same way everywhere: :func:`fail` (or :func:`exit_with` for a TcgjobsError) prints
``error: ...`` on stderr and exits with the code; when the command line asked for ``--json`` it
also prints ``{"schema_version", "error", "exit_code"}`` on stdout, so a script always has a
document to parse. A command whose JSON result goes with a non-zero exit (a corrupt backup, a
failed run) adds the same two keys to that result (:func:`print_json` with ``exit_code``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from tcgjobs.config import Settings, load_settings
from tcgjobs.errors import ConfigError, ExitCode, TcgjobsError
from tcgjobs.logging import redact

if TYPE_CHECKING:
    from rich.console import Console

JSON_SCHEMA_VERSION = 1

#: ``--json`` of every command that has one: its failures print JSON too (:func:`fail`).
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (also an error, with its exit code).")]
#: ``--wide`` of every table a narrow terminal would squeeze (:func:`tcgjobs.cli.output.print_table`).
WideOption = Annotated[bool, typer.Option("--wide", help="Every column, however wide the table gets "
                                          "(on a terminal; piped output always has every column).")]


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


@cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, highlight=False)


def is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    """stderr is a tty (as for the log format) and rich takes it for a terminal too. The tty is
    asked first, so that piped output does not load rich."""
    return sys.stderr.isatty() and stderr().is_terminal


def settings() -> Settings:
    """Settings from the process environment. Exits 78 listing every problem."""
    try:
        return load_settings(os.environ)
    except ConfigError as exc:
        exit_with(exc)


class _Mode:
    """How this invocation reports: set from its command line before any command runs."""

    json = False
    quiet = False


def set_quiet(quiet: bool) -> None:
    """``-q``: no progress bars (the log level is set with the sinks)."""
    _Mode.quiet = quiet


def quiet() -> bool:
    return _Mode.quiet


def set_json_mode(args: Sequence[str]) -> None:
    """JSON errors when ``--json`` is among ``args`` (before a ``--``), as every command that
    prints JSON spells it; known before the command's own options are parsed, so usage errors
    (an unknown job, a bad value) are reported as JSON too."""
    arguments = list(args)
    if "--" in arguments:
        arguments = arguments[:arguments.index("--")]
    _Mode.json = "--json" in arguments


def json_mode() -> bool:
    return _Mode.json


def fail(message: str, code: ExitCode | int) -> NoReturn:
    """Report a failure (stderr, and a JSON error object on stdout in JSON mode) and exit."""
    text = redact(message)
    stderr().print(f"error: {text}", markup=False)
    if _Mode.json:
        print_json({}, exit_code=code, error=text)
    raise typer.Exit(int(code))


def exit_with(exc: TcgjobsError) -> NoReturn:
    """:func:`fail` with ``exc``'s message and exit code."""
    fail(str(exc), exc.exit_code)


def exit_code(code: ExitCode | int) -> NoReturn:
    raise typer.Exit(int(code))


def print_json(payload: dict[str, Any], *, exit_code: ExitCode | int = 0, error: str | None = None) -> None:
    """One JSON document on stdout, tagged with the schema version; with a non-zero ``exit_code``
    it also carries ``error`` and ``exit_code``, the keys of every failure's document."""
    document = {"schema_version": JSON_SCHEMA_VERSION, **payload}
    if int(exit_code):
        meaning = next((code.meaning for code in ExitCode if code == int(exit_code)), "failed")
        document.update(error=error or meaning, exit_code=int(exit_code))
    sys.stdout.write(redact(json.dumps(document, indent=2, default=str, ensure_ascii=False)) + "\n")
    sys.stdout.flush()


def print_text(text: str) -> None:
    """Plain text on stdout, as is (no markup, no tab expansion): parseable when piped."""
    sys.stdout.write(redact(text) + "\n")
    sys.stdout.flush()


@contextmanager
def errors_exit() -> Iterator[None]:
    """Turn a TcgjobsError escaping the block into its exit code."""
    try:
        yield
    except TcgjobsError as exc:
        exit_with(exc)
