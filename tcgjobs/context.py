"""What a job gets from the runner: its settings, options, cancellation, history and resources."""

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

    def check_cancelled(self) -> None:
        """Raise Cancelled if the deadline passed or a signal arrived. Call between work units."""
        self.cancel.check()

    def card_db(self, *, create: bool = False, readonly: bool = False) -> SqliteDatabase:
        """The card database, open for this run and closed when it ends.

        Long statements on it are interrupted when the run is cancelled. ``create`` is for the
        sync jobs only. Raises ConfigError if the database is missing (and not ``create``) or its
        directory is unwritable, SchemaError if its schema is newer than this code.
        """
        db = open_card_database(self.settings.database_path, create=create, readonly=readonly,
                                busy_timeout_ms=self.settings.busy_timeout_ms)
        self.watch_sqlite(db)
        return db

    def watch_sqlite(self, db: SqliteDatabase) -> None:
        """Close ``db`` when the run ends and interrupt its statements when it is cancelled."""
        self._resources.callback(db.close)
        self._resources.callback(self.cancel.on_cancel(db.connection().interrupt))

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
