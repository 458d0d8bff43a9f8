"""The state database's tables: their migrations (the DDL as shipped) and their peewee models.

The migrations are history: a file written by any earlier tcgjobs is brought forward by the steps
it lacks, so a shipped step never changes. The models map the same tables column for column
(tests/db/test_state.py compares them with a migrated file) and convert on the way in and out:
timestamps are fixed-width UTC text (:func:`tcgjobs.times.to_text`), levels and run statuses
their enum values, JSON objects text.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from peewee import AutoField, BooleanField, FloatField, IntegerField, Model, SqliteDatabase, TextField

from tcgjobs.db.sqlite import Migration, statements
from tcgjobs.db.state.records import RunStatus
from tcgjobs.levels import Level
from tcgjobs.times import from_text, to_text

LABEL = "state database"

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
    # Health-check results, alert state (what Slack was last told), level changes, silences.
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
    # What each run did, in one line (the result's summary): for an operation such as a restore,
    # the only record of which backup it restored and where its safety snapshot went.
    Migration(3, "run summaries", statements("ALTER TABLE runs ADD COLUMN summary TEXT")),
)


class UtcField(TextField):
    """A timezone-aware UTC datetime, stored as :func:`~tcgjobs.times.to_text` (text order is
    time order, so comparisons in SQL are comparisons in time)."""

    def db_value(self, value: Any) -> Any:
        return to_text(value) if isinstance(value, datetime) else value

    def python_value(self, value: Any) -> datetime | None:
        return from_text(value)


class EnumField(TextField):
    """A string enum (:class:`~tcgjobs.levels.Level`, :class:`RunStatus`), stored as its value."""

    def __init__(self, enum: type[Enum], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.enum = enum

    def db_value(self, value: Any) -> Any:
        return value.value if isinstance(value, Enum) else value

    def python_value(self, value: Any) -> Any:
        return None if value is None else self.enum(value)


class JsonField(TextField):
    """A JSON object stored as text; NULL (or empty) reads as an empty dict."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else json.dumps(value, default=str)

    def python_value(self, value: Any) -> dict[str, Any]:
        return json.loads(value) if value else {}


class RunRow(Model):
    """``runs``: one row per run of a job (migrations 1 and 3). Written by the runner only."""

    run_id = TextField(primary_key=True)
    job = TextField()
    trigger = TextField()
    dry_run = BooleanField(default=False)
    host = TextField()
    pid = IntegerField()
    started_at = UtcField()
    heartbeat_at = UtcField(null=True)
    deadline_at = UtcField(null=True)
    finished_at = UtcField(null=True)
    status = EnumField(RunStatus)
    exit_code = IntegerField(null=True)
    duration_s = FloatField(null=True)
    metrics = JsonField(null=True)
    error = TextField(null=True)
    version = TextField(null=True)
    summary = TextField(null=True)  # migration 3

    class Meta:
        table_name = "runs"


class MetaRow(Model):
    """``meta``: facts about the file itself, e.g. ``created_at`` (migration 1)."""

    key = TextField(primary_key=True)
    value = TextField()

    class Meta:
        table_name = "meta"


class HealthCheckRow(Model):
    """``health_checks``: the last result of each health check (migration 2)."""

    name = TextField(primary_key=True)
    level = EnumField(Level)
    detail = TextField()
    value = FloatField(null=True)
    data = JsonField(null=True)
    checked_at = UtcField()
    level_since = UtcField()
    run_id = TextField(null=True)

    class Meta:
        table_name = "health_checks"


class AlertStateRow(Model):
    """``alert_state``: per alert subject, its observed level and what Slack last accepted."""

    key = TextField(primary_key=True)
    level = EnumField(Level)
    detail = TextField(null=True)
    bad_since = UtcField(null=True)
    observed_at = UtcField()
    notified_level = EnumField(Level, default=Level.OK)
    notified_at = UtcField(null=True)

    class Meta:
        table_name = "alert_state"


class AlertEventRow(Model):
    """``alert_events``: level changes of alert subjects, flagged when they happened silenced."""

    id = AutoField()
    key = TextField()
    at = UtcField()
    from_level = EnumField(Level)
    to_level = EnumField(Level)
    detail = TextField(null=True)
    silenced = BooleanField(default=False)
    summarized = BooleanField(default=False)

    class Meta:
        table_name = "alert_events"


class SilenceRow(Model):
    """``silences``: maintenance windows set with ``tcgjobs notify silence``."""

    id = AutoField()
    starts_at = UtcField()
    until = UtcField()
    reason = TextField(null=True)
    created_at = UtcField()
    ended_at = UtcField(null=True)

    class Meta:
        table_name = "silences"


#: Every table of the state database, by the migration that created it.
MODELS: tuple[type[Model], ...] = (RunRow, MetaRow, HealthCheckRow, AlertStateRow, AlertEventRow, SilenceRow)

RowT = TypeVar("RowT", bound=Model)


def _bound(model: type[RowT], db: SqliteDatabase) -> type[RowT]:
    """A subclass of ``model`` bound to ``db`` alone. ``Model.bind`` would rebind the class for
    every connection in the process (the runner's heartbeat thread, tests opening two files)."""
    meta = type("Meta", (), {"database": db, "table_name": model._meta.table_name})
    return type(model.__name__, (model,), {"Meta": meta, "__module__": __name__})


def values(row: Model) -> dict[str, Any]:
    """The columns selected into ``row``, by field name, already converted (datetimes, levels,
    dicts): the keyword arguments of the matching record type."""
    return dict(row.__data__)


class StateDatabase:
    """An open connection to the state database and every table's model bound to it.

    Made by :func:`tcgjobs.db.state.open_state` (writable, migrated) or
    :func:`tcgjobs.db.state.open_view` (read-only); the stores and the view work through it.
    """

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.runs = _bound(RunRow, db)
        self.meta = _bound(MetaRow, db)
        self.health_checks = _bound(HealthCheckRow, db)
        self.alert_state = _bound(AlertStateRow, db)
        self.alert_events = _bound(AlertEventRow, db)
        self.silences = _bound(SilenceRow, db)

    def atomic(self) -> Any:
        """A transaction (a savepoint when nested)."""
        return self.db.atomic()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> StateDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
