"""How a job reports progress without printing: the CLI decides how (or whether) to show it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Progress(Protocol):
    def advance(self, amount: int = 1) -> None: ...


class Reporter(Protocol):
    def progress(self, description: str, total: int | None) -> AbstractContextManager[Progress]:
        """A context manager yielding a :class:`Progress` for one unit of work."""
        ...


class _NullProgress:
    def advance(self, amount: int = 1) -> None:
        return None


class NullReporter:
    """Shows nothing: piped output, JSON mode, tests."""

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Progress]:
        yield _NullProgress()
