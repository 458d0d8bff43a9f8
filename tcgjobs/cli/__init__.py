"""The command line. ``tcgjobs.cli:main`` is the console script."""

from tcgjobs.cli.app import app, main

__all__ = ["app", "main"]
