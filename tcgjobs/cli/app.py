"""The Typer application: global options, logging set-up and the command groups."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from tcgjobs import __version__
from tcgjobs import logging as tcg_logging
from tcgjobs.cli import common
from tcgjobs.config import load_settings
from tcgjobs.errors import ConfigError

app = typer.Typer(
    name="tcgjobs",
    help="One-shot maintenance jobs for the Pokemon TCG card-data platform. Each invocation runs "
         "one job and exits with a status code; see `tcgjobs list`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        common.print_text(f"tcgjobs {__version__}")
        raise typer.Exit(0)


@app.callback()
def callback(
    version: Annotated[Optional[bool], typer.Option(  # noqa: UP007 (Typer needs Optional)
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Configure logging once, from the settings when they are valid (commands report them)."""
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
    tcg_logging.configure(level=level, fmt=fmt, secrets=secrets)
    if loaded is not None:
        from loguru import logger

        for warning in loaded.warnings:
            logger.warning(warning)


def _register_commands() -> None:
    from tcgjobs.cli import backup, config_cmd, deploy, notify, run, status

    app.add_typer(run.run_app, name="run")
    status.register(app)
    config_cmd.register(app)
    backup.register(app)
    notify.register(app)
    deploy.register(app)


_register_commands()


def main() -> None:
    app()
