"""What a job gets from the runner: its settings, options, cancellation, history and resources,
and the one place where it says what it has committed so far."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import SqliteDatabase

from tcgjobs.cancel import CancelScope
from tcgjobs.config import JobConfig, Settings
from tcgjobs.db.cards import open_card_database
from tcgjobs.db.state import Ledger, StateView
from tcgjobs.registry import Job
from tcgjobs.reporting import NullReporter, Reporter


@dataclass(frozen=True)
class Committed:
    """What a run has committed so far, as it should be reported if the run stops now."""

    text: str
    metrics: Mapping[str, float | int] = field(default_factory=dict)


@dataclass
class JobContext:
    """Everything one run of a job may use. Jobs never read ``os.environ`` or print."""

    job: Job
    run_id: str
    settings: Settings
    config: JobConfig
    options: Mapping[str, Any]
    dry_run: bool
    trigger: str
    started_at: datetime
    cancel: CancelScope
    history: StateView
    reporter: Reporter = field(default_factory=NullReporter)
    _ledger: Ledger | None = None
    _resources: ExitStack = field(default_factory=ExitStack)
    progress: Committed | None = None
    _busy: dict[SqliteDatabase, int] = field(default_factory=dict)  # open databases' busy timeouts

    def committed(self, text: str, metrics: Mapping[str, float | int] | None = None) -> None:
        """Record what this run has committed so far (replacing the previous record), e.g.
        "98 of 172 sets, each whole". Call it right after each commit. A run that is cancelled
        or fails later reports the latest record (the result block, ``--json``, the ledger and the
        log) instead of claiming that its work was rolled back; a run that finishes reports its
        own result instead."""
        self.progress = Committed(text, dict(metrics or {}))

    def check_cancelled(self) -> None:
        """Raise Cancelled if the deadline passed or a signal arrived. Call between work units."""
        self.cancel.check()
        self._tighten_busy_timeouts()

    def card_db(self, *, create: bool = False, readonly: bool = False) -> SqliteDatabase:
        """The card database, open for this run and closed when it ends.

        Long statements on it are interrupted when the run is cancelled. ``create`` is for the
        sync jobs only. Raises ConfigError if the database is missing (and not ``create``) or its
        directory is unwritable, SchemaError if its schema is newer than this code.
        """
        db = open_card_database(self.settings.database_path, create=create, readonly=readonly,
                                busy_timeout_ms=self._busy_timeout_ms())
        self.watch_sqlite(db)
        return db

    def watch_sqlite(self, db: SqliteDatabase) -> None:
        """Close ``db`` when the run ends and interrupt its statements when it is cancelled."""
        self._resources.callback(db.close)
        self._resources.callback(self.cancel.on_cancel(db.connection().interrupt))
        self._busy[db] = self.settings.busy_timeout_ms
        self._resources.callback(self._busy.pop, db, None)
        self._tighten_busy_timeouts()

    def _busy_timeout_ms(self) -> int:
        return int(self.cancel.bound(self.settings.busy_timeout_ms / 1000) * 1000)

    def _tighten_busy_timeouts(self) -> None:
        """SQLite's busy wait (a statement waiting for another process's lock) ignores
        ``sqlite3_interrupt``: a cancel cannot end it. So once less of the deadline is left than
        TCGJOBS_BUSY_TIMEOUT_MS, every open database waits at most what is left."""
        limit = self._busy_timeout_ms()
        for db, current in list(self._busy.items()):
            if limit < current:
                db.execute_sql(f"PRAGMA busy_timeout = {limit}")
                self._busy[db] = limit

    def postgres(self, *, connect_timeout: int | None = None) -> Any:
        """A connection to the primary, bounded by the run: connecting waits at most what is
        left of the deadline (and ``connect_timeout``, default TCGJOBS_POSTGRES_CONNECT_TIMEOUT)
        and stops at once when the run is cancelled; the running statement is cancelled with the
        run; the connection is closed when the run ends. Raises ConfigError (no primary),
        ServiceUnavailable (unreachable), ServiceRefused (it refuses us) or Cancelled."""
        from tcgjobs.services import postgres

        connection = postgres.connect(self.settings, cancel=self.cancel, timeout=connect_timeout)
        self._resources.callback(connection.close)
        self.on_cancel(connection.cancel)
        return connection

    def on_cancel(self, callback: Any) -> None:
        """Call ``callback`` (e.g. a PostgreSQL connection's ``cancel``) if the run is cancelled."""
        self._resources.callback(self.cancel.on_cancel(callback))

    def prunable_runs(self, before: datetime) -> list[str]:
        """Ledger rows older than ``before`` that may be pruned (each job's newest run and newest
        success are always kept)."""
        assert self._ledger is not None
        return self._ledger.prunable(before)

    def prune_runs(self, run_ids: list[str]) -> int:
        """Delete the given ledger rows (cleanup-stale-data's retention). Returns rows deleted."""
        assert self._ledger is not None
        return self._ledger.prune(run_ids)

    def close(self) -> None:
        self._resources.close()
