"""The state database: files written by earlier versions, the models, the view and the stores."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tcgjobs.db.sqlite import schema_version
from tcgjobs.db.state import (
    STATE_MIGRATIONS,
    AlertStore,
    HealthStore,
    Ledger,
    LevelChange,
    RunStatus,
    StateDatabase,
    open_state,
    open_view,
)
from tcgjobs.db.state.tables import MODELS
from tcgjobs.errors import SchemaError
from tcgjobs.health.checks import CheckResult
from tcgjobs.levels import Level

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=1)

# The DDL of state migrations 1 and 2 exactly as released: they stand for files already on disk,
# so they are copies on purpose and must never be edited.
RELEASED_V1 = [
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
]
RELEASED_V2 = [
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
]
# Rows as the raw-SQL code of those releases wrote them.
RELEASED_RUN = ("INSERT INTO runs (run_id, job, trigger, dry_run, host, pid, started_at, heartbeat_at, "
                "deadline_at, finished_at, status, exit_code, duration_s, metrics, error, version) VALUES "
                "('r1', 'backup-database', 'schedule', 0, 'old-host', 41, '2026-11-28T12:00:00.000000+00:00', "
                "'2026-11-28T12:00:05.000000+00:00', '2026-11-28T13:00:00.000000+00:00', "
                "'2026-11-28T12:00:09.500000+00:00', 'succeeded', 0, 9.5, '{\"backup_verified\": 1}', NULL, "
                "'0.9.0')")
RELEASED_V2_ROWS = [
    "INSERT INTO health_checks VALUES ('card-counts', 'warning', '2 sets', 10.0, '{\"sets\": 2}', "
    "'2026-11-28T12:15:00.000000+00:00', '2026-11-28T12:00:00.000000+00:00', 'r1')",
    "INSERT INTO health_checks VALUES ('postgres', 'ok', 'up', NULL, NULL, "
    "'2026-11-28T12:15:00.000000+00:00', '2026-11-28T11:00:00.000000+00:00', 'r1')",
    "INSERT INTO alert_state (key, level, detail, bad_since, observed_at, notified_level, notified_at) VALUES "
    "('check:card-counts', 'warning', '2 sets', '2026-11-28T12:00:00.000000+00:00', "
    "'2026-11-28T12:15:00.000000+00:00', 'warning', '2026-11-28T12:00:01.000000+00:00')",
    "INSERT INTO alert_events (key, at, from_level, to_level, detail, silenced) VALUES "
    "('check:card-counts', '2026-11-28T12:00:00.000000+00:00', 'ok', 'warning', '2 sets', 1)",
    "INSERT INTO silences (starts_at, until, reason, created_at) VALUES ('2026-11-28T11:00:00.000000+00:00', "
    "'2026-11-28T14:00:00.000000+00:00', 'disk swap', '2026-11-28T11:00:00.000000+00:00')",
]


RELEASED_V3 = ["ALTER TABLE runs ADD COLUMN summary TEXT"]


def released_file(path: Path, version: int) -> Path:
    """A state database as the released code left it at ``version`` (1, 2 or 3), with rows."""
    connection = sqlite3.connect(path)
    with connection:
        statements = RELEASED_V1 + [RELEASED_RUN]
        if version >= 2:
            statements += RELEASED_V2 + RELEASED_V2_ROWS
        if version >= 3:
            statements += RELEASED_V3
        for statement in statements:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {version}")
    connection.close()
    return path


def schema_sql(path: Path) -> dict[str, str]:
    connection = sqlite3.connect(path)
    try:
        return dict(connection.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())
    finally:
        connection.close()


def schema_version_of(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA user_version").fetchone()[0]
    finally:
        connection.close()


def test_a_new_file_has_exactly_the_released_ddl(tmp_path: Path):
    open_state(tmp_path / "new.sqlite3", busy_timeout_ms=1000).close()
    assert schema_sql(tmp_path / "new.sqlite3") == schema_sql(released_file(tmp_path / "old.sqlite3", 3))


def test_every_model_matches_its_table_in_a_migrated_file(tmp_path: Path):
    affinity = {"TEXT": "TEXT", "INT": "INTEGER", "BOOL": "INTEGER", "AUTO": "INTEGER", "FLOAT": "REAL"}
    with open_state(tmp_path / "state.sqlite3", busy_timeout_ms=1000) as state:
        tables = {row[0] for row in state.db.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall()}
        assert {model._meta.table_name for model in MODELS} == tables
        for model in MODELS:
            declared = [(f.column_name, affinity[f.field_type], f.null or f.primary_key, f.primary_key)
                        for f in model._meta.sorted_fields]
            actual = [(c[1], c[2], not c[3] or bool(c[5]), bool(c[5]))
                      for c in state.db.execute_sql(f"PRAGMA table_info({model._meta.table_name})").fetchall()]
            assert declared == actual, model.__name__


def test_a_version_1_file_is_migrated_and_its_runs_are_read_by_name(tmp_path: Path):
    path = released_file(tmp_path / "state.sqlite3", 1)
    created = schema_sql(path)
    ledger = Ledger.open(path, busy_timeout_ms=1000, stale_after=STALE)
    assert schema_version(ledger.state.db) == STATE_MIGRATIONS[-1].version == 3
    migrated = schema_sql(path)
    assert migrated["runs"] == created["runs"][:-1] + ", summary TEXT)"  # migration 3 adds a column
    assert {name: sql for name, sql in migrated.items() if name in created and name != "runs"} == \
        {name: sql for name, sql in created.items() if name != "runs"}
    [run] = ledger.view.runs()
    assert run.summary is None
    assert (run.run_id, run.job, run.host, run.pid, run.dry_run, run.status, run.exit_code) == \
        ("r1", "backup-database", "old-host", 41, False, RunStatus.SUCCEEDED, 0)
    assert (run.started_at, run.finished_at, run.duration_s) == (T0, T0 + timedelta(seconds=9.5), 9.5)
    assert (run.metrics, run.version) == ({"backup_verified": 1}, "0.9.0")
    assert ledger.view.created_at() is not None and ledger.view.checks() == {}
    HealthStore(ledger.state).record([CheckResult("wal-size", Level.OK, "1 MiB", 1.0)], T0, "r2")
    assert list(ledger.view.checks()) == ["wal-size"]
    ledger.close()


def test_a_view_of_a_version_1_file_has_its_runs_but_no_checks_or_silences(tmp_path: Path):
    view = open_view(released_file(tmp_path / "state.sqlite3", 1), busy_timeout_ms=1000, stale_after=STALE)
    assert [(run.run_id, run.summary) for run in view.runs()] == [("r1", None)]  # no summary column yet
    assert view.get("r1").run_id == view.last_success("backup-database").run_id == "r1"
    assert (view.checks(), view.silences(T0)) == ({}, [])
    view.close()
    assert schema_version_of(tmp_path / "state.sqlite3") == 1  # a view never migrates


def test_a_version_2_file_reads_every_table_by_name(tmp_path: Path):
    path = released_file(tmp_path / "state.sqlite3", 2)
    view = open_view(path, busy_timeout_ms=1000, stale_after=STALE)
    checks = view.checks()
    assert list(checks) == ["card-counts", "postgres"]
    counts = checks["card-counts"]
    assert (counts.level, counts.detail, counts.value, counts.data, counts.run_id) == \
        (Level.WARNING, "2 sets", 10.0, {"sets": 2}, "r1")
    assert (counts.checked_at, counts.level_since) == (T0 + timedelta(minutes=15), T0)
    assert checks["postgres"].data == {} and checks["postgres"].value is None
    [silence] = view.silences(T0)
    assert (silence.id, silence.reason, silence.until, silence.ended_at) == (
        1, "disk swap", T0 + timedelta(hours=2), None)
    assert view.silences(T0 + timedelta(hours=2)) == []
    view.close()
    with open_state(path, busy_timeout_ms=1000) as state:
        alerts = AlertStore(state)
        subject = alerts.subject("check:card-counts")
        assert subject is not None
        assert (subject.level, subject.notified_level, subject.bad_since, subject.notified_at) == \
            (Level.WARNING, Level.WARNING, T0, T0 + timedelta(seconds=1))
        assert alerts.subject("check:postgres") is None
        assert alerts.unsummarized_silenced_changes(["check:card-counts"]) == \
            [LevelChange(1, "check:card-counts", T0, Level.OK, Level.WARNING)]


def test_a_missing_file_is_an_empty_view_and_stays_missing(tmp_path: Path):
    view = open_view(tmp_path / "none.sqlite3", busy_timeout_ms=1000, stale_after=STALE)
    assert (view.runs(), view.get("x"), view.last_success("j"), view.created_at()) == ([], None, None, None)
    assert (view.checks(), view.silences(T0), view.consecutive_failures("j", T0)) == ({}, [], 0)
    view.close()
    assert not (tmp_path / "none.sqlite3").exists()


def test_a_file_newer_than_the_code_is_refused_by_writers_and_readers(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    open_state(path, busy_timeout_ms=1000).close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 50")
    connection.close()
    with pytest.raises(SchemaError, match="schema version 50"):
        open_state(path, busy_timeout_ms=1000)
    with pytest.raises(SchemaError, match="schema version 50"):
        open_view(path, busy_timeout_ms=1000, stale_after=STALE)


def test_the_ledger_stores_times_as_fixed_width_utc_text_and_metrics_as_json(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    ledger = Ledger.open(path, busy_timeout_ms=1000, stale_after=STALE)
    local = datetime(2026, 11, 28, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    ledger.insert(run_id="r1", job="j", trigger="cli", started_at=local, status=RunStatus.RUNNING)
    ledger.finish("r1", status=RunStatus.FAILED, exit_code=1, finished_at=local + timedelta(seconds=2),
                  duration_s=2.0000004, metrics={"rows": 3}, error="boom")
    ledger.close()
    connection = sqlite3.connect(path)
    row = connection.execute(
        "SELECT started_at, finished_at, status, metrics, duration_s, dry_run FROM runs").fetchone()
    connection.close()
    assert row == ("2026-11-28T13:00:00.000000+00:00", "2026-11-28T13:00:02.000000+00:00", "failed",
                   '{"rows": 3}', 2.0, 0)


def test_abandoned_runs_are_marked_and_old_runs_pruned_except_the_newest_and_last_success(tmp_path: Path):
    ledger = Ledger.open(tmp_path / "state.sqlite3", busy_timeout_ms=1000, stale_after=STALE)
    for run_id, status, days in (("a", "succeeded", 30), ("b", "failed", 20), ("c", "failed", 10),
                                 ("d", "running", 5)):
        ledger.insert(run_id=run_id, job="j", trigger="schedule", started_at=T0 - timedelta(days=days),
                      status=status)
    assert ledger.mark_abandoned("j", T0) == ["d"]
    assert ledger.view.get("d").status is RunStatus.ABANDONED
    assert sorted(ledger.prunable(T0 - timedelta(days=1))) == ["b", "c"]  # a: last success, d: newest
    assert ledger.prune(["b", "c"]) == 2
    assert [run.run_id for run in ledger.view.runs()] == ["d", "a"]
    ledger.close()


def test_level_since_survives_runs_with_the_same_level_and_resets_on_change(tmp_path: Path):
    store = HealthStore(open_state(tmp_path / "state.sqlite3", busy_timeout_ms=1000))
    store.record([CheckResult("wal-size", Level.OK, "1 MiB", 1.0)], T0, "r1")
    store.record([CheckResult("wal-size", Level.OK, "2 MiB", 2.0)], T0 + timedelta(minutes=15), "r2")
    current = store.current()["wal-size"]
    assert (current.level_since, current.checked_at, current.detail, current.run_id) == \
        (T0, T0 + timedelta(minutes=15), "2 MiB", "r2")
    store.record([CheckResult("wal-size", Level.WARNING, "200 MiB", 200.0)], T0 + timedelta(minutes=30), "r3")
    assert store.current()["wal-size"].level_since == T0 + timedelta(minutes=30)


def test_checks_that_no_longer_run_are_dropped_and_data_round_trips(tmp_path: Path):
    store = HealthStore(open_state(tmp_path / "state.sqlite3", busy_timeout_ms=1000))
    store.record([CheckResult("postgres", Level.OK, "up"),
                  CheckResult("card-counts", Level.OK, "2 sets", 10, {"sets": 2, "cards": 10})], T0, "r1")
    store.record([CheckResult("card-counts", Level.OK, "2 sets", 10, {"sets": 2, "cards": 10})], T0, "r2")
    current = store.current()
    assert list(current) == ["card-counts"]
    assert current["card-counts"].data == {"sets": 2, "cards": 10}


def alert_store(tmp_path: Path) -> AlertStore:
    return AlertStore(open_state(tmp_path / "state.sqlite3", busy_timeout_ms=1000))


def test_observing_a_subject_keeps_what_slack_was_last_told(tmp_path: Path):
    alerts = alert_store(tmp_path)
    alerts.observe("job:j", Level.CRITICAL, "failed", T0, T0)
    alerts.mark_notified("job:j", Level.CRITICAL, T0)
    alerts.observe("job:j", Level.OK, "succeeded", T0, T0 + timedelta(hours=1))
    subject = alerts.subject("job:j")
    assert subject is not None
    assert (subject.level, subject.detail, subject.observed_at) == (Level.OK, "succeeded", T0 + timedelta(hours=1))
    assert (subject.notified_level, subject.notified_at, subject.bad_since) == (Level.CRITICAL, T0, T0)


@pytest.mark.parametrize(("observed", "bad_since_after"), [(Level.OK, None), (Level.WARNING, T0)])
def test_a_recovery_ends_the_outage_only_when_the_subject_is_ok(tmp_path: Path, observed, bad_since_after):
    alerts = alert_store(tmp_path)
    alerts.observe("check:c", observed, "now", T0, T0)
    alerts.mark_notified("check:c", Level.CRITICAL, T0)
    alerts.mark_recovered("check:c", T0 + timedelta(hours=1))
    subject = alerts.subject("check:c")
    assert subject is not None
    assert (subject.notified_level, subject.notified_at, subject.bad_since) == \
        (Level.OK, T0 + timedelta(hours=1), bad_since_after)


def test_old_level_changes_are_forgotten_unless_a_silence_summary_still_needs_them(tmp_path: Path):
    alerts = alert_store(tmp_path)
    alerts.record_change("check:a", T0, Level.OK, Level.WARNING, "w", silenced=False)
    alerts.record_change("check:a", T0, Level.WARNING, Level.OK, "ok", silenced=True)
    alerts.record_change("check:b", T0, Level.OK, Level.CRITICAL, "c", silenced=True)
    pending = alerts.unsummarized_silenced_changes(["check:b"])
    assert [(c.key, c.from_level, c.to_level) for c in pending] == [("check:b", Level.OK, Level.CRITICAL)]
    alerts.mark_summarized(pending)
    assert alerts.forget_changes(before=T0 + timedelta(days=31)) == 2  # kept: a's unsummarised silenced change
    assert [c.key for c in alerts.unsummarized_silenced_changes(["check:a", "check:b"])] == ["check:a"]
    assert alerts.unsummarized_silenced_changes([]) == []


def test_silences_end_one_or_all_and_stay_listed_as_past(tmp_path: Path):
    alerts = alert_store(tmp_path)
    first = alerts.add_silence(T0 + timedelta(hours=1), "swap", T0)
    second = alerts.add_silence(T0 + timedelta(hours=2), None, T0)
    assert (first.id, second.id, first.reason, first.until) == (1, 2, "swap", T0 + timedelta(hours=1))
    assert alerts.end_silences(T0 + timedelta(minutes=1), silence_id=first.id) == 1
    assert [s.id for s in alerts.silences(now=T0 + timedelta(minutes=2))] == [2]
    assert alerts.end_silences(T0 + timedelta(minutes=3)) == 1
    assert alerts.silences(now=T0 + timedelta(minutes=4)) == []
    listed = alerts.silences(include_past=True)
    assert [(s.id, s.ended_at) for s in listed] == [(1, T0 + timedelta(minutes=1)), (2, T0 + timedelta(minutes=3))]


def test_two_open_files_in_one_process_keep_their_own_tables(tmp_path: Path):
    first = open_state(tmp_path / "one.sqlite3", busy_timeout_ms=1000)
    second = open_state(tmp_path / "two.sqlite3", busy_timeout_ms=1000)
    AlertStore(first).add_silence(T0 + timedelta(hours=1), "one", T0)
    assert AlertStore(second).silences(include_past=True) == []
    assert isinstance(first, StateDatabase) and first.silences is not second.silences
    first.close()
    second.close()
