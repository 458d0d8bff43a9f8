"""Restoring a backup (through ``tcgjobs backup restore``): the rows come back, the target holds
nothing or all of it, readers of a live database see old or new, and the safety snapshot taken
first is kept apart from the backups."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from tcgjobs.backups.catalog import Backup, describe, list_backups, list_safety_snapshots, newest_verified
from tcgjobs.backups.names import sidecars
from tcgjobs.backups.verify import verify_file
from tests.conftest import invoke
from tests.health.support import run_health
from tests.support.backups import flip_byte, make_backup, make_original_backup, rows

WHEN = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)
TABLES = ("pokemon_card_sets", "pokemon_cards", "users")


def live_rows(settings, table):
    conn = sqlite3.connect(settings.database_path)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
    finally:
        conn.close()


def test_restore_to_a_new_path_round_trips_every_row(cli, filled, tmp_path):
    path = make_backup(filled, WHEN)
    target = tmp_path / "restored" / "cards.sqlite3.db"
    result = invoke(cli, "backup", "restore", path.name, "--to", str(target), "--json")
    assert result.exit_code == 0, result.output
    for table in TABLES:
        assert rows(target, table) == live_rows(filled, table)
    assert [p.name for p in target.parent.iterdir()] == ["cards.sqlite3.db"]
    report = json.loads(result.stdout)["restore"]
    assert report["safety_snapshot"] is None and "renamed atomically" in report["method"]


def test_restore_of_a_zstd_backup_and_an_original_backup_round_trip(cli, filled, tmp_path):
    for index, path in enumerate([make_backup(filled, WHEN, "zstd"),
                                  make_original_backup(filled, WHEN - timedelta(days=1))]):
        target = tmp_path / f"r{index}.db"
        result = invoke(cli, "backup", "restore", str(path), "--to", str(target))
        assert result.exit_code == 0, result.output
        assert rows(target, "pokemon_cards") == live_rows(filled, "pokemon_cards")


def test_restore_of_a_corrupt_backup_exits_3_and_changes_nothing(cli, filled, tmp_path):
    path = make_backup(filled, WHEN)
    flip_byte(path)
    target = tmp_path / "new.db"
    result = invoke(cli, "backup", "restore", path.name, "--to", str(target))
    assert result.exit_code == 3, result.output
    assert not target.exists()
    assert not any(p.name.startswith(".tcgjobs-tmp-") for p in tmp_path.iterdir())
    assert describe(path).status == "corrupt"


def test_restore_over_the_live_database_takes_a_safety_snapshot_and_readers_see_old_or_new(cli, filled):
    path = make_backup(filled, WHEN)
    conn = sqlite3.connect(filled.database_path)
    with conn:
        conn.execute("DELETE FROM pokemon_cards WHERE set_id = 'set0'")
        conn.execute("INSERT INTO pokemon_card_sets (id, name, series) VALUES ('late', 'Late', 'T')")
    changed = live_rows(filled, "pokemon_card_sets")
    reader = sqlite3.connect(filled.database_path)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM pokemon_cards").fetchone()[0] == 10

    result = invoke(cli, "backup", "restore", path.name, "--force", "--json")

    assert result.exit_code == 0, result.output
    assert reader.execute("SELECT count(*) FROM pokemon_cards").fetchone()[0] == 10  # its snapshot
    reader.rollback()
    assert reader.execute("SELECT count(*) FROM pokemon_cards").fetchone()[0] == 15  # the restored state
    reader.close()
    report = json.loads(result.stdout)["restore"]
    assert "backup API" in report["method"]
    safety = describe(filled.backup_dir / report["safety_snapshot"].rsplit("/", 1)[1])
    assert safety.status == "verified" and safety.is_safety_snapshot
    assert safety.name.startswith("pre-restore-pokemon-data-") and safety.name.endswith(".sqlite3.db.gz")
    assert safety.manifest["origin"].startswith("safety snapshot")
    safety_copy = verify_file(safety.path, filled.temp_dir, keep_copy=True).restored_copy
    assert rows(safety_copy, "pokemon_card_sets") == changed
    safety_copy.unlink()
    restored = verify_file(path, filled.temp_dir, keep_copy=True).restored_copy
    for table in TABLES:
        assert live_rows(filled, table) == rows(restored, table)
    restored.unlink()


def restore_with_safety_snapshot(cli, settings, backup) -> Backup:
    """Change the live database, restore ``backup`` over it with --force; the safety snapshot."""
    conn = sqlite3.connect(settings.database_path)
    with conn:
        conn.execute("INSERT INTO pokemon_card_sets (id, name, series) VALUES ('late', 'Late', 'T')")
    conn.close()
    result = invoke(cli, "backup", "restore", backup.name, "--force")
    assert result.exit_code == 0, result.output
    [safety] = list_safety_snapshots(settings.backup_dir)
    return safety


def test_a_safety_snapshot_is_not_the_newest_verified_backup_nor_listed_as_a_backup(cli, filled):
    old = make_backup(filled, datetime.now(UTC) - timedelta(hours=60))
    safety = restore_with_safety_snapshot(cli, filled, old)
    assert [item.name for item in list_backups(filled.backup_dir)] == [old.name]
    assert newest_verified(list_backups(filled.backup_dir)).path == old
    assert {p.name for p in filled.backup_dir.iterdir()} == {
        name + suffix for name in (old.name, safety.name) for suffix in ("", ".sha256", ".manifest.json")}
    assert safety.manifest["kind"] == "safety-snapshot"
    listed = json.loads(invoke(cli, "backup", "list", "--json").stdout)
    assert [item["name"] for item in listed["backups"]] == [old.name]
    assert [(item["name"], item["kind"], item["status"]) for item in listed["safety_snapshots"]] == [
        (safety.name, "safety-snapshot", "verified")]
    assert listed["safety_snapshots"][0]["retention"].startswith("safety snapshot: never rotated")
    table = invoke(cli, "backup", "list").stdout.splitlines()
    assert table[2].startswith(safety.name) and "safety snapshot: never rotated" in table[2]


def test_a_safety_snapshot_does_not_hide_a_missed_backup_from_the_health_check(cli, filled):
    old = make_backup(filled, datetime.now(UTC) - timedelta(hours=60))
    restore_with_safety_snapshot(cli, filled, old)
    code, checks, _ = run_health(cli)
    assert checks["backup-age"]["level"] == "critical", checks["backup-age"]
    assert old.name in checks["backup-age"]["detail"]
    assert code == 3


def test_rotation_neither_counts_nor_deletes_safety_snapshots(cli, filled):
    now = datetime.now(UTC)
    older = make_backup(filled, now - timedelta(days=2))
    newer = make_backup(filled, now - timedelta(days=1))
    safety = restore_with_safety_snapshot(cli, filled, newer)
    result = invoke(cli, "run", "rotate-backups", "--ignore-deps", "--json", "--daily", "1", "--weekly", "0",
                    "--monthly", "0", "--minimum", "1")
    assert result.exit_code == 0, result.output
    assert [item.name for item in list_backups(filled.backup_dir)] == [newer.name]
    assert not older.exists()
    assert [item.name for item in list_safety_snapshots(filled.backup_dir)] == [safety.name]
    assert all(side.exists() for side in sidecars(safety.path))
    assert safety.name not in {r["name"] for r in json.loads(result.stdout)["run"]["details"]["backups"]}


def test_a_safety_snapshot_can_be_verified_and_restored(cli, filled, tmp_path):
    backup = make_backup(filled, WHEN)
    conn = sqlite3.connect(filled.database_path)
    with conn:
        conn.execute("INSERT INTO pokemon_card_sets (id, name, series) VALUES ('late', 'Late', 'T')")
    conn.close()
    before = live_rows(filled, "pokemon_card_sets")
    assert invoke(cli, "backup", "restore", backup.name, "--force").exit_code == 0
    [safety] = list_safety_snapshots(filled.backup_dir)
    verified = invoke(cli, "backup", "verify", "--all", "--json")
    assert verified.exit_code == 0, verified.output
    assert {r["name"] for r in json.loads(verified.stdout)["results"]} == {backup.name, safety.name}
    target = tmp_path / "undo.db"
    result = invoke(cli, "backup", "restore", safety.name, "--to", str(target))
    assert result.exit_code == 0, result.output
    assert rows(target, "pokemon_card_sets") == before


def test_restore_over_a_damaged_database_needs_no_safety_snapshot_flag(cli, filled):
    path = make_backup(filled, WHEN)
    filled.database_path.write_bytes(b"this is not a database" * 100)
    result = invoke(cli, "backup", "restore", path.name, "--force")
    assert result.exit_code == 1, result.output
    assert "--no-safety-snapshot" in result.output
    wal = filled.database_path.with_name(filled.database_path.name + "-wal")
    wal.write_bytes(b"stale")
    result = invoke(cli, "backup", "restore", path.name, "--force", "--no-safety-snapshot", "--json")
    assert result.exit_code == 0, result.output
    assert "replaced the damaged file" in json.loads(result.stdout)["restore"]["method"]
    assert not wal.exists()
    assert len(rows(filled.database_path, "pokemon_cards")) == 15
    assert len(list_backups(filled.backup_dir)) == 1
    assert list_safety_snapshots(filled.backup_dir) == []
