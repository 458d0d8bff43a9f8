"""The Typer application: global options, logging set-up and the commands.

Each command module adds its commands to an app with ``register(app)``. ``main()`` builds the app
with only the module of the command on its command line, so ``tcgjobs run JOB`` (every cron
invocation) imports neither the other commands nor the services behind them. ``app`` is the whole
application, built on first use.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from tcgjobs import __version__
from tcgjobs import logging as tcg_logging
from tcgjobs.cli import common
from tcgjobs.config import load_settings
from tcgjobs.errors import ConfigError

# Every command and the module of tcgjobs.cli that registers it, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "list": "status",
    "status": "status",
    "history": "status",
    "config": "config_cmd",
    "run": "run",
    "backup": "backup",
    "notify": "notify",
    "deploy": "deploy",
}


def _version(value: bool) -> None:
    if value:
        common.print_text(f"tcgjobs {__version__}")
        raise typer.Exit(0)


def callback(
    version: Annotated[bool | None, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
    verbose: Annotated[bool, typer.Option(
        "-v", "--verbose", help="Log debug lines too (over TCGJOBS_LOG_LEVEL, for this invocation).")] = False,
    quiet: Annotated[bool, typer.Option(
        "-q", "--quiet", help="Log warnings and errors only, no progress bar (over TCGJOBS_LOG_LEVEL, "
                              "for this invocation); results are printed as always.")] = False,
) -> None:
    """Configure logging once, from the settings when they are valid (commands report them)."""
    if verbose and quiet:
        raise typer.BadParameter("give --verbose or --quiet, not both", param_hint="-v/--verbose, -q/--quiet")
    common.set_quiet(quiet)
    level, fmt, secrets = "info", "auto", []
    try:
        loaded = load_settings(os.environ)
    except ConfigError:
        loaded = None
    if loaded is not None:
        level, fmt, secrets = loaded.log_level, loaded.log_format, loaded.secret_values()
        if loaded.tmpdir:
            # SQLite's own temporary files (VACUUM, large sorts) follow TCGJOBS_TMPDIR too.
            os.environ.setdefault("SQLITE_TMPDIR", str(loaded.tmpdir))
    level = "debug" if verbose else "warning" if quiet else level
    tcg_logging.configure(level=level, fmt=fmt, secrets=secrets)
    if loaded is not None:
        from loguru import logger

        for warning in loaded.warnings:
            logger.warning(warning)


class RootGroup(TyperGroup):
    """The top-level command: reads ``--json`` from the command line first, and reports click's
    usage errors (unknown command or option, bad value: exit 2) like every other failure."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        arguments = list(sys.argv[1:] if args is None else args)
        common.set_json_mode(arguments)
        try:
            code = super().main(arguments, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            exc.show()
            if common.json_mode():
                common.print_json({}, exit_code=exc.exit_code, error=exc.format_message())
            code = exc.exit_code
        except click.Abort:
            common.stderr().print("Aborted!", markup=False)
            code = 1
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def build_app(only: Iterable[str] | None = None) -> typer.Typer:
    """The application with the commands named in ``only`` (every command when None)."""
    app = typer.Typer(
        cls=RootGroup,
        name="tcgjobs",
        help="One-shot maintenance jobs for the Pokemon TCG card-data platform. Each invocation runs "
             "one job and exits with a status code; see `tcgjobs list`.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish)
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(callback)
    modules = dict.fromkeys(COMMANDS[name] for name in (COMMANDS if only is None else only))
    for module in modules:
        importlib.import_module(f"tcgjobs.cli.{module}").register(app)
    return app


def commands_needed(args: Sequence[str]) -> list[str] | None:
    """The commands an invocation of ``tcgjobs ARGS`` can reach; None for all of them.

    The first argument that is not an option names the command (the app's own options take no
    value). Help asked for before it, no command at all, or an unknown one get the whole app, so
    that help and click's errors read as always; a bare ``--version`` exits before any command.
    """
    command = next((arg for arg in args if not arg.startswith("-")), None)
    leading = args if command is None else args[:args.index(command)]
    if "--help" in leading:
        return None
    if command in COMMANDS:
        return [command]
    if command is None and "--version" in leading:
        return []
    return None


@cache
def _whole_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    """``app``: every command (for tests and tools; ``main()`` builds only what it runs)."""
    if name == "app":
        return _whole_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    build_app(commands_needed(sys.argv[1:]))()
