"""The recorded health checks (table ``health_checks``): the last result of each check.

The health check writes them through its own connection (:func:`tcgjobs.db.state.open_state`);
``tcgjobs status`` and the metrics read them through a view (:meth:`StateView.checks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from peewee import SQL

from tcgjobs.db.state.records import StoredCheck
from tcgjobs.db.state.tables import StateDatabase, values
from tcgjobs.levels import Level


class CheckOutcome(Protocol):
    """What is recorded of a check's result (``tcgjobs.health.checks.CheckResult`` is one)."""

    name: str
    level: Level
    detail: str
    value: float | None
    data: dict[str, Any]


class HealthStore:
    """Reads and writes ``health_checks`` on a migrated state database."""

    def __init__(self, state: StateDatabase) -> None:
        self.state = state

    def current(self) -> dict[str, StoredCheck]:
        """The last recorded result of each check, by name, in the order they were recorded."""
        table = self.state.health_checks
        return {row.name: StoredCheck(**values(row)) for row in table.select().order_by(SQL("rowid"))}

    def record(self, results: Sequence[CheckOutcome], now: datetime, run_id: str) -> None:
        """Replace the recorded results by ``results``; a check keeps its ``level_since`` while its
        level is unchanged. Checks that no longer run (PostgreSQL unconfigured) are dropped."""
        table = self.state.health_checks
        previous = self.current()
        with self.state.atomic():
            table.delete().execute()
            for result in results:
                before = previous.get(result.name)
                since = before.level_since if before and before.level is result.level else now
                table.insert(name=result.name, level=result.level, detail=result.detail,
                             value=result.value, data=result.data or None, checked_at=now,
                             level_since=since, run_id=run_id).execute()
