"""Check results and their storage in the state database (table ``health_checks``, state migration 2).

The health check writes here through its own connection to the state database; the run ledger
(table ``runs``) stays the runner's alone. ``tcgjobs status`` and the metrics observer read it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peewee import SqliteDatabase

from tcgjobs.db.sqlite import ensure_writable_parent, migrate, open_sqlite
from tcgjobs.db.state import LABEL, STATE_MIGRATIONS
from tcgjobs.times import from_text, to_text
from tcgjobs.levels import Level


@dataclass
class CheckResult:
    """The outcome of one named check. ``value`` is its main number (MiB, hours, ms, count)."""

    name: str
    level: Level
    detail: str
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "level": self.level.value, "detail": self.detail,
                "value": self.value, **({"data": self.data} if self.data else {})}


@dataclass(frozen=True)
class StoredCheck:
    """A check result as recorded, with when it was checked and since when it has had its level."""

    name: str
    level: Level
    detail: str
    value: float | None
    data: dict[str, Any]
    checked_at: datetime
    level_since: datetime
    run_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "level": self.level.value, "detail": self.detail,
                "value": self.value, "checked_at": to_text(self.checked_at),
                "level_since": to_text(self.level_since), "run_id": self.run_id}


def open_state(path: Path, busy_timeout_ms: int) -> SqliteDatabase:
    """A writable connection to the state database, migrated (creating it if needed).

    Raises ConfigError when it cannot be opened, SchemaError when it is newer than this code.
    """
    ensure_writable_parent(path, create=True)
    db = open_sqlite(path, busy_timeout_ms=busy_timeout_ms)
    try:
        migrate(db, STATE_MIGRATIONS, f"{LABEL} {path}")
    except BaseException:
        db.close()
        raise
    return db


def has_table(db: SqliteDatabase, name: str) -> bool:
    return db.execute_sql("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (name,)).fetchone()[0] > 0


class HealthStore:
    """Reads and writes ``health_checks``. Reading tolerates a state database without the table."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def current(self) -> dict[str, StoredCheck]:
        """The last recorded result of each check, by name."""
        if not has_table(self.db, "health_checks"):
            return {}
        rows = self.db.execute_sql(
            "SELECT name, level, detail, value, data, checked_at, level_since, run_id "
            "FROM health_checks ORDER BY rowid").fetchall()
        return {row[0]: StoredCheck(row[0], Level(row[1]), row[2], row[3], json.loads(row[4] or "{}"),
                                    from_text(row[5]), from_text(row[6]), row[7]) for row in rows}

    def record(self, results: Sequence[CheckResult], now: datetime, run_id: str) -> None:
        """Replace the recorded results by ``results``; a check keeps its ``level_since`` while its
        level is unchanged. Checks that no longer run (PostgreSQL unconfigured) are dropped."""
        previous = self.current()
        with self.db.atomic():
            self.db.execute_sql("DELETE FROM health_checks")
            for result in results:
                before = previous.get(result.name)
                since = before.level_since if before and before.level is result.level else now
                self.db.execute_sql(
                    "INSERT INTO health_checks (name, level, detail, value, data, checked_at, "
                    "level_since, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (result.name, result.level.value, result.detail, result.value,
                     json.dumps(result.data, default=str) if result.data else None,
                     to_text(now), to_text(since), run_id))
