"""The recorded check results in the state database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tcgjobs.db.sqlite import schema_version
from tcgjobs.db.state import STATE_MIGRATIONS, Ledger
from tcgjobs.levels import Level
from tcgjobs.health.store import CheckResult, HealthStore, open_state

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_state_migration_2_adds_the_health_tables_to_an_existing_ledger(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    Ledger.open(path, busy_timeout_ms=1000, stale_after=timedelta(minutes=1)).close()
    db = open_state(path, 1000)
    assert schema_version(db) == STATE_MIGRATIONS[-1].version >= 2
    tables = {row[0] for row in db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    assert {"runs", "health_checks", "alert_state", "alert_events", "silences"} <= tables


def test_level_since_survives_runs_with_the_same_level_and_resets_on_change(tmp_path: Path):
    store = HealthStore(open_state(tmp_path / "state.sqlite3", 1000))
    store.record([CheckResult("wal-size", Level.OK, "1 MiB", 1.0)], T0, "r1")
    store.record([CheckResult("wal-size", Level.OK, "2 MiB", 2.0)], T0 + timedelta(minutes=15), "r2")
    current = store.current()["wal-size"]
    assert (current.level_since, current.checked_at, current.detail, current.run_id) == \
        (T0, T0 + timedelta(minutes=15), "2 MiB", "r2")
    store.record([CheckResult("wal-size", Level.WARNING, "200 MiB", 200.0)], T0 + timedelta(minutes=30), "r3")
    assert store.current()["wal-size"].level_since == T0 + timedelta(minutes=30)


def test_checks_that_no_longer_run_are_dropped_and_data_round_trips(tmp_path: Path):
    store = HealthStore(open_state(tmp_path / "state.sqlite3", 1000))
    store.record([CheckResult("postgres", Level.OK, "up"),
                  CheckResult("card-counts", Level.OK, "2 sets", 10, {"sets": 2, "cards": 10})], T0, "r1")
    store.record([CheckResult("card-counts", Level.OK, "2 sets", 10, {"sets": 2, "cards": 10})], T0, "r2")
    current = store.current()
    assert list(current) == ["card-counts"]
    assert current["card-counts"].data == {"sets": 2, "cards": 10}


def test_reading_a_state_database_without_the_table_gives_nothing(tmp_path: Path):
    from tcgjobs.db.sqlite import open_sqlite

    db = open_sqlite(tmp_path / "old.sqlite3")
    assert HealthStore(db).current() == {}
