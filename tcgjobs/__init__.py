"""tcgjobs: one-shot maintenance jobs for the Pokemon TCG card-data platform."""

__version__ = "0.1.0"
