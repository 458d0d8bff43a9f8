"""The command line. ``tcgjobs.cli:main`` is the console script; ``tcgjobs.cli.app.app`` is the
whole Typer application."""

from tcgjobs.cli.app import main

__all__ = ["main"]
