"""Opening the state database: :func:`open_state` for writers, :func:`open_view` for readers.

Both check the schema version (a file newer than this code is refused); only :func:`open_state`
creates the file and migrates it. A view works on whatever an earlier tcgjobs left: a missing file
reads as no runs, a version-1 file as no health checks and no silences, a file before version 3
as runs without summaries.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tcgjobs.db.sqlite import check_schema, ensure_writable_parent, migrate, open_sqlite
from tcgjobs.db.state.alert_store import AlertStore
from tcgjobs.db.state.health_store import HealthStore
from tcgjobs.db.state.records import FAILURE_STATUSES, RunRecord, RunStatus, Silence, StoredCheck
from tcgjobs.db.state.tables import LABEL, STATE_MIGRATIONS, StateDatabase, values
from tcgjobs.times import from_text

#: The migration that created the health and alert tables.
HEALTH_TABLES_VERSION = 2
#: The migration that added ``runs.summary``.
RUN_SUMMARY_VERSION = 3


def open_state(path: Path, *, busy_timeout_ms: int) -> StateDatabase:
    """A writable connection to the state database at ``path``, created and migrated if needed.

    Raises ConfigError when it cannot be opened, SchemaError when it is newer than this code.
    """
    ensure_writable_parent(path, create=True)
    db = open_sqlite(path, busy_timeout_ms=busy_timeout_ms)
    try:
        migrate(db, STATE_MIGRATIONS, f"{LABEL} {path}")
    except BaseException:
        db.close()
        raise
    return StateDatabase(db)


def open_view(path: Path, *, busy_timeout_ms: int, stale_after: timedelta) -> StateView:
    """A read-only view of the state database at ``path``; empty when the file does not exist yet.

    Raises ConfigError when it cannot be opened, SchemaError when it is newer than this code.
    """
    if not path.exists():
        return StateView(None, stale_after)
    db = open_sqlite(path, readonly=True, busy_timeout_ms=busy_timeout_ms)
    try:
        version = check_schema(db, STATE_MIGRATIONS, f"{LABEL} {path}")
    except BaseException:
        db.close()
        raise
    if version == 0:  # created, never migrated: nothing recorded yet
        db.close()
        return StateView(None, stale_after)
    return StateView(StateDatabase(db), stale_after, version)


class StateView:
    """Reads the state database: the run ledger, the recorded health checks, the silences.

    Jobs get one through their context (``ctx.history``) and never write the ledger. ``state`` is
    None for a file that does not exist yet; ``version`` is the file's schema version.
    """

    def __init__(self, state: StateDatabase | None, stale_after: timedelta,
                 version: int = STATE_MIGRATIONS[-1].version) -> None:
        self.state = state
        self.stale_after = stale_after
        self.version = version

    def close(self) -> None:
        if self.state is not None:
            self.state.close()

    def created_at(self) -> datetime | None:
        """When the state database was created: when tcgjobs started tracking runs here."""
        if self.state is None:
            return None
        table = self.state.meta
        row = table.select(table.value).where(table.key == "created_at").first()
        return from_text(row.value) if row else None

    def _select_runs(self) -> Any:
        """A query on ``runs`` for every column the file has (``summary`` only from version 3)."""
        assert self.state is not None
        table = self.state.runs
        if self.version >= RUN_SUMMARY_VERSION:
            return table.select()
        return table.select(*[field for field in table._meta.sorted_fields if field.name != "summary"])

    def runs(self, job: str | None = None, limit: int | None = 20,
             statuses: Iterable[RunStatus] | None = None) -> list[RunRecord]:
        """Newest first."""
        if self.state is None:
            return []
        table = self.state.runs
        query = self._select_runs().order_by(table.started_at.desc())
        if job is not None:
            query = query.where(table.job == job)
        if statuses is not None:
            query = query.where(table.status.in_(list(statuses)))
        if limit is not None:
            query = query.limit(limit)
        return [RunRecord(**values(row)) for row in query]

    def get(self, run_id: str) -> RunRecord | None:
        if self.state is None:
            return None
        table = self.state.runs
        row = self._select_runs().where(table.run_id == run_id).first()
        return RunRecord(**values(row)) if row else None

    def last_run(self, job: str) -> RunRecord | None:
        runs = self.runs(job, limit=1)
        return runs[0] if runs else None

    def last_success(self, job: str, since: datetime | None = None) -> RunRecord | None:
        """The newest succeeded (never dry-run) run, optionally started at or after ``since``."""
        if self.state is None:
            return None
        table = self.state.runs
        query = (self._select_runs().where((table.job == job) & (table.status == RunStatus.SUCCEEDED))
                 .order_by(table.started_at.desc()).limit(1))
        if since is not None:
            query = query.where(table.started_at >= since)
        row = query.first()
        return RunRecord(**values(row)) if row else None

    def consecutive_failures(self, job: str, now: datetime) -> int:
        """Failures since the last success, newest first; dry runs and skips don't count."""
        count = 0
        for run in self.runs(job, limit=200):
            if run.dry_run or run.status in (RunStatus.SKIPPED, RunStatus.DRY_RUN):
                continue
            status = run.effective_status(now, self.stale_after)
            if status in FAILURE_STATUSES:
                count += 1
            elif status is RunStatus.SUCCEEDED:
                break
        return count

    def checks(self) -> dict[str, StoredCheck]:
        """The last recorded result of each health check, by name."""
        if self.state is None or self.version < HEALTH_TABLES_VERSION:
            return {}
        return HealthStore(self.state).current()

    def silences(self, now: datetime) -> list[Silence]:
        """The stored silences active at ``now`` (TCGJOBS_SILENCE_UNTIL is a setting, not stored)."""
        if self.state is None or self.version < HEALTH_TABLES_VERSION:
            return []
        return AlertStore(self.state).silences(now=now)
