"""What every command shares: loading settings at the edge, output mode, JSON, exits.

The rich consoles are created, and rich imported, on first use (a table or a progress bar on a
terminal, a message on stderr): results, JSON and piped output are plain writes that never load it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from tcgjobs.config import Settings, load_settings
from tcgjobs.errors import ConfigError, ExitCode, TcgjobsError
from tcgjobs.logging import redact

if TYPE_CHECKING:
    from rich.console import Console

JSON_SCHEMA_VERSION = 1


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


def exit_with(exc: TcgjobsError) -> NoReturn:
    """Print ``exc`` on stderr and exit with its code."""
    stderr().print(f"error: {redact(str(exc))}", markup=False)
    raise typer.Exit(int(exc.exit_code))


def exit_code(code: ExitCode | int) -> NoReturn:
    raise typer.Exit(int(code))


def print_json(payload: dict[str, Any]) -> None:
    """One JSON document on stdout, tagged with the schema version."""
    document = {"schema_version": JSON_SCHEMA_VERSION, **payload}
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
