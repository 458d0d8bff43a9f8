"""The state database: the run ledger (one row per run) and, later, health and alert state.

Only the runner writes runs (:class:`Ledger`); jobs and the CLI read them through
:class:`LedgerView`. A ``running`` row whose process is gone, or whose heartbeat is stale, is
reported as ``abandoned``; the next run of the same job, which holds that job's lock and so knows
no other copy is alive, records it as abandoned for good.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from peewee import BooleanField, FloatField, IntegerField, Model, SqliteDatabase, TextField

from tcgjobs.times import from_text, to_text
from tcgjobs.db.sqlite import (Migration, check_schema, ensure_writable_parent, migrate,
                               open_sqlite, pid_alive, statements)


class RunStatus(str, Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"
    ABANDONED = "abandoned"


#: Outcomes that count as a failure of the job (consecutive-failure counts, alerts).
FAILURE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.INTERRUPTED,
                              RunStatus.ABANDONED})

STATE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "run ledger", statements(
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            job TEXT NOT NULL,
            trigger TEXT NOT NULL,
            dry_run INTEGER NOT NULL DEFAULT 0,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT,
            deadline_at TEXT,
            finished_at TEXT,
            status TEXT NOT NULL,
            exit_code INTEGER,
            duration_s REAL,
            metrics TEXT,
            error TEXT,
            version TEXT)""",
        "CREATE INDEX idx_runs_job_started ON runs(job, started_at)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
    )),
    # Issue 6: health-check results, alert state (what Slack was last told), level changes, silences.
    Migration(2, "health checks, alert state and silences", statements(
        """CREATE TABLE health_checks (
            name TEXT PRIMARY KEY,
            level TEXT NOT NULL,
            detail TEXT NOT NULL,
            value REAL,
            data TEXT,
            checked_at TEXT NOT NULL,
            level_since TEXT NOT NULL,
            run_id TEXT)""",
        """CREATE TABLE alert_state (
            key TEXT PRIMARY KEY,
            level TEXT NOT NULL,
            detail TEXT,
            bad_since TEXT,
            observed_at TEXT NOT NULL,
            notified_level TEXT NOT NULL DEFAULT 'ok',
            notified_at TEXT)""",
        """CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            at TEXT NOT NULL,
            from_level TEXT NOT NULL,
            to_level TEXT NOT NULL,
            detail TEXT,
            silenced INTEGER NOT NULL DEFAULT 0,
            summarized INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX idx_alert_events_pending ON alert_events(silenced, summarized)",
        """CREATE TABLE silences (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            starts_at TEXT NOT NULL,
            until TEXT NOT NULL,
            reason TEXT,
            created_at TEXT NOT NULL,
            ended_at TEXT)""",
    )),
)

LABEL = "state database"


class _RunModel(Model):
    run_id = TextField(primary_key=True)
    job = TextField()
    trigger = TextField()
    dry_run = BooleanField(default=False)
    host = TextField()
    pid = IntegerField()
    started_at = TextField()
    heartbeat_at = TextField(null=True)
    deadline_at = TextField(null=True)
    finished_at = TextField(null=True)
    status = TextField()
    exit_code = IntegerField(null=True)
    duration_s = FloatField(null=True)
    metrics = TextField(null=True)
    error = TextField(null=True)
    version = TextField(null=True)

    class Meta:
        table_name = "runs"


def _bound(db: SqliteDatabase) -> type[_RunModel]:
    """The run model bound to ``db`` alone (no global binding, so threads cannot interfere)."""
    meta = type("Meta", (), {"database": db, "table_name": "runs"})
    return type("Run", (_RunModel,), {"Meta": meta, "__module__": __name__})


@dataclass(frozen=True)
class RunRecord:
    """One ledger row, as read."""

    run_id: str
    job: str
    trigger: str
    dry_run: bool
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime | None
    deadline_at: datetime | None
    finished_at: datetime | None
    status: RunStatus
    exit_code: int | None
    duration_s: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    version: str | None = None

    def effective_status(self, now: datetime, stale_after: timedelta) -> RunStatus:
        """``abandoned`` for a running row whose process is gone or whose heartbeat is stale."""
        if self.status is not RunStatus.RUNNING:
            return self.status
        beat = self.heartbeat_at or self.started_at
        if now - beat > stale_after:
            return RunStatus.ABANDONED
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return RunStatus.ABANDONED
        return RunStatus.RUNNING

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "job": self.job, "trigger": self.trigger, "dry_run": self.dry_run,
            "host": self.host, "pid": self.pid, "started_at": to_text(self.started_at),
            "heartbeat_at": to_text(self.heartbeat_at), "finished_at": to_text(self.finished_at),
            "status": self.status.value, "exit_code": self.exit_code, "duration_s": self.duration_s,
            "metrics": self.metrics, "error": self.error, "version": self.version,
        }


def _record(row: _RunModel) -> RunRecord:
    return RunRecord(
        run_id=row.run_id, job=row.job, trigger=row.trigger, dry_run=bool(row.dry_run),
        host=row.host, pid=row.pid, started_at=from_text(row.started_at),
        heartbeat_at=from_text(row.heartbeat_at), deadline_at=from_text(row.deadline_at),
        finished_at=from_text(row.finished_at), status=RunStatus(row.status),
        exit_code=row.exit_code, duration_s=row.duration_s,
        metrics=json.loads(row.metrics) if row.metrics else {}, error=row.error, version=row.version)


class LedgerView:
    """Read-only access to the run ledger. Works on a missing state database (no runs yet)."""

    def __init__(self, db: SqliteDatabase | None, stale_after: timedelta) -> None:
        self.db = db
        self.stale_after = stale_after
        self._run = _bound(db) if db is not None else None

    def created_at(self) -> datetime | None:
        if self.db is None:
            return None
        row = self.db.execute_sql("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
        return from_text(row[0]) if row else None

    def runs(self, job: str | None = None, limit: int | None = 20,
             statuses: Iterable[RunStatus] | None = None) -> list[RunRecord]:
        """Newest first."""
        if self._run is None:
            return []
        query = self._run.select().order_by(self._run.started_at.desc())
        if job is not None:
            query = query.where(self._run.job == job)
        if statuses is not None:
            query = query.where(self._run.status.in_([s.value for s in statuses]))
        if limit is not None:
            query = query.limit(limit)
        return [_record(row) for row in query]

    def get(self, run_id: str) -> RunRecord | None:
        if self._run is None:
            return None
        row = self._run.get_or_none(self._run.run_id == run_id)
        return _record(row) if row else None

    def last_run(self, job: str) -> RunRecord | None:
        runs = self.runs(job, limit=1)
        return runs[0] if runs else None

    def last_success(self, job: str, since: datetime | None = None) -> RunRecord | None:
        """The newest succeeded (never dry-run) run, optionally started at or after ``since``."""
        if self._run is None:
            return None
        query = (self._run.select()
                 .where((self._run.job == job) & (self._run.status == RunStatus.SUCCEEDED.value))
                 .order_by(self._run.started_at.desc()).limit(1))
        if since is not None:
            query = query.where(self._run.started_at >= to_text(since))
        row = query.first()
        return _record(row) if row else None

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


class Ledger:
    """Writes the run ledger. Owned by the runner."""

    def __init__(self, db: SqliteDatabase, stale_after: timedelta) -> None:
        self.db = db
        self._run = _bound(db)
        self.view = LedgerView(db, stale_after)

    @classmethod
    def open(cls, path: Path, *, busy_timeout_ms: int, stale_after: timedelta) -> Ledger:
        """Open (creating and migrating) the state database at ``path``. Raises ConfigError."""
        ensure_writable_parent(path, create=True)
        db = open_sqlite(path, busy_timeout_ms=busy_timeout_ms)
        migrate(db, STATE_MIGRATIONS, f"{LABEL} {path}")
        return cls(db, stale_after)

    def close(self) -> None:
        self.db.close()

    def insert(self, **values: Any) -> None:
        for key in ("started_at", "heartbeat_at", "deadline_at", "finished_at"):
            if isinstance(values.get(key), datetime):
                values[key] = to_text(values[key])
        if isinstance(values.get("metrics"), dict):
            values["metrics"] = json.dumps(values["metrics"], default=str)
        values.setdefault("host", socket.gethostname())
        values.setdefault("pid", os.getpid())
        with self.db.atomic():
            self._run.insert(**values).execute()

    def finish(self, run_id: str, *, status: RunStatus, exit_code: int, finished_at: datetime,
               duration_s: float, metrics: dict[str, Any], error: str | None) -> None:
        with self.db.atomic():
            (self._run.update(status=status.value, exit_code=exit_code, finished_at=to_text(finished_at),
                              duration_s=round(duration_s, 6), metrics=json.dumps(metrics, default=str),
                              error=error)
             .where(self._run.run_id == run_id).execute())

    def heartbeat(self, run_id: str, at: datetime) -> None:
        with self.db.atomic():
            self._run.update(heartbeat_at=to_text(at)).where(self._run.run_id == run_id).execute()

    def mark_abandoned(self, job: str, now: datetime) -> list[str]:
        """Record every still-``running`` row of ``job`` as abandoned. Call only while holding the
        job's lock, which proves none of them is alive. Returns their run ids."""
        rows = list(self._run.select(self._run.run_id)
                    .where((self._run.job == job) & (self._run.status == RunStatus.RUNNING.value)))
        if rows:
            with self.db.atomic():
                (self._run.update(status=RunStatus.ABANDONED.value,
                                  error="the process running it disappeared (crash, kill -9 or "
                                        "node loss); found by a later run")
                 .where(self._run.run_id.in_([r.run_id for r in rows])).execute())
        return [r.run_id for r in rows]

    def prunable(self, before: datetime) -> list[str]:
        """Run ids finished before ``before``, except each job's newest run and newest success."""
        keep: set[str] = set()
        for (job,) in self.db.execute_sql("SELECT DISTINCT job FROM runs").fetchall():
            last = self.view.last_run(job)
            success = self.view.last_success(job)
            keep.update(r.run_id for r in (last, success) if r is not None)
        rows = (self._run.select(self._run.run_id)
                .where((self._run.started_at < to_text(before))
                       & (self._run.status != RunStatus.RUNNING.value)))
        return [r.run_id for r in rows if r.run_id not in keep]

    def prune(self, run_ids: list[str]) -> int:
        deleted = 0
        with self.db.atomic():
            for start in range(0, len(run_ids), 500):
                chunk = run_ids[start:start + 500]
                deleted += self._run.delete().where(self._run.run_id.in_(chunk)).execute()
        return deleted


def open_view(path: Path, *, busy_timeout_ms: int, stale_after: timedelta) -> LedgerView:
    """A read-only view of the ledger at ``path``; empty when the file does not exist yet."""
    if not path.exists():
        return LedgerView(None, stale_after)
    db = open_sqlite(path, readonly=True, busy_timeout_ms=busy_timeout_ms)
    if db.execute_sql("SELECT count(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0] == 0:
        db.close()
        return LedgerView(None, stale_after)
    check_schema(db, STATE_MIGRATIONS, f"{LABEL} {path}")
    return LedgerView(db, stale_after)
