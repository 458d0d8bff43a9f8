"""cleanup-stale-data on real databases: VACUUM when worth it, readers unharmed, pruning, dry run."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tcgjobs.backups.tempfiles import TEMP_PREFIX
from tcgjobs.db.state import Ledger, RunStatus
from tcgjobs.runner import stale_after
from tcgjobs.times import utcnow
from tests.conftest import invoke, make_settings
from tests.support import bigdb


@pytest.fixture
def fragmented_db(env) -> tuple[Path, dict[str, int]]:
    """A small real card database with about a third of its pages free."""
    path = Path(env["DATABASE_PATH"])
    facts = bigdb.build(path, rows=6000, blob_bytes=400)
    assert facts["freelist"] / facts["page_count"] > 0.3
    return path, facts


def run_json(cli, *args):
    result = invoke(cli, "run", "cleanup-stale-data", "--json", *args)
    return result, (json.loads(result.stdout).get("run") if result.stdout.strip() else None)


def test_cleanup_vacuums_free_pages_away_and_keeps_every_row(cli, fragmented_db):
    path, before = fragmented_db
    size_before = path.stat().st_size
    result, run = run_json(cli)
    assert result.exit_code == 0, result.output
    after = bigdb.facts_of(path)
    assert after["cards"] == before["cards"] and after["id_sum"] == before["id_sum"]
    assert after["freelist"] == 0 and after["page_count"] < before["page_count"]
    assert path.stat().st_size < size_before
    assert run["metrics"]["vacuumed"] == 1 and run["metrics"]["bytes_reclaimed"] > 0
    assert run["metrics"]["pages_freed"] == before["page_count"] - after["page_count"]
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0


def test_cleanup_skips_vacuum_below_the_threshold_unless_forced(cli, card_db_path):
    result, run = run_json(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["vacuumed"] == 0
    result, run = run_json(cli, "--force")
    assert result.exit_code == 0 and run["metrics"]["vacuumed"] == 1


def test_the_threshold_option_and_setting_decide(cli, env, fragmented_db):
    env["TCGJOBS_CLEANUP_STALE_DATA_VACUUM_MIN_FREE_RATIO"] = "0.99"
    assert run_json(cli)[1]["metrics"]["vacuumed"] == 0
    assert run_json(cli, "--vacuum-min-free-ratio", "0.2")[1]["metrics"]["vacuumed"] == 1


def test_a_bad_option_value_is_a_usage_error(cli, card_db_path):
    result = invoke(cli, "run", "cleanup-stale-data", "--vacuum-min-free-ratio", "2")
    assert result.exit_code == 2, result.output
    assert "must be at most 1" in result.output


def test_dry_run_reports_the_plan_and_writes_nothing(cli, fragmented_db):
    path, before = fragmented_db
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result, run = run_json(cli, "--dry-run")
    assert result.exit_code == 0, result.output
    assert run["status"] == "dry-run" and run["details"]["vacuum"] is True
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert bigdb.facts_of(path) == before


def test_a_missing_card_database_is_refused_not_created(cli, env):
    result = invoke(cli, "run", "cleanup-stale-data")
    assert result.exit_code == 78, result.output
    assert "does not exist" in result.stderr
    assert not Path(env["DATABASE_PATH"]).parent.exists(), "nor its directory, nor a ledger in it"


def test_old_ledger_rows_are_pruned_but_each_jobs_newest_run_and_success_stay(cli, card_db_path):
    settings = make_settings()
    ledger = Ledger.open(settings.state_path, busy_timeout_ms=1000, stale_after=stale_after(settings))
    old = utcnow() - timedelta(days=200)

    def add(run_id, job, status, age_days):
        started = old + timedelta(days=200 - age_days)
        ledger.insert(run_id=run_id, job=job, trigger="schedule", started_at=started,
                      finished_at=started + timedelta(seconds=1), status=status, exit_code=0)

    add("old-success", "backup-database", "succeeded", 150)
    add("older-success", "backup-database", "succeeded", 160)
    add("old-failure", "backup-database", "failed", 120)
    add("recent", "backup-database", "succeeded", 10)
    add("only-run", "rotate-backups", "failed", 150)
    ledger.close()
    result, run = run_json(cli, "--ledger-retention-days", "90")
    assert result.exit_code == 0, result.output
    assert run["metrics"]["ledger_rows_pruned"] == 3
    remaining = {r.run_id for r in Ledger.open(settings.state_path, busy_timeout_ms=1000,
                                                stale_after=stale_after(settings)).view.runs(limit=None)}
    assert {"recent", "only-run", run["run_id"]} <= remaining
    assert not {"old-success", "older-success", "old-failure"} & remaining


def test_leftover_temporary_files_are_removed_only_when_old(cli, env, card_db_path):
    backup_dir = Path(env["BACKUP_DIR"])
    backup_dir.mkdir(parents=True)
    tmp = Path(env["TCGJOBS_TMPDIR"])
    old_backup = backup_dir / f"{TEMP_PREFIX}backup-1-abc.sqlite3.db.gz"
    old_verify = tmp / f"{TEMP_PREFIX}verify-1-def.sqlite3.db"
    fresh = backup_dir / f"{TEMP_PREFIX}backup-2-ghi.sqlite3.db.gz"
    real_backup = backup_dir / "pokemon-data-2026-01-01T00-00-00-000Z.sqlite3.db.gz"
    for path in (old_backup, old_verify, fresh, real_backup):
        path.write_bytes(b"x" * 10)
    two_hours_ago = time.time() - 2 * 3600
    for path in (old_backup, old_verify, real_backup):
        os.utime(path, (two_hours_ago, two_hours_ago))
    result, run = run_json(cli, "--leftover-margin-seconds", "60")
    assert result.exit_code == 0, result.output
    assert run["metrics"]["leftover_files_removed"] == 2
    assert not old_backup.exists() and not old_verify.exists()
    assert fresh.exists() and real_backup.exists()


READER = r"""
import json, pathlib, sqlite3, sys, time
path, pages_before, stop = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
reader = sqlite3.connect(path, timeout=10, isolation_level=None)
probe = sqlite3.connect(path, timeout=10, isolation_level=None)
reader.execute("BEGIN")
snapshot_pages = reader.execute("PRAGMA page_count").fetchone()[0]
rows = reader.execute("SELECT id, length(flavor_text) FROM pokemon_cards ORDER BY rowid")
first = rows.fetchone()  # the read has begun; it stays open (and its transaction) until VACUUM commits
print("reading", flush=True)
fresh, errors, vacuumed = set(), [], False
deadline = time.monotonic() + 60
while not vacuumed and not stop.exists() and time.monotonic() < deadline:
    try:  # meanwhile, reads by another connection, each in its own transaction
        fresh.add(probe.execute("SELECT count(*), sum(length(flavor_text)) FROM pokemon_cards").fetchone())
        vacuumed = probe.execute("PRAGMA page_count").fetchone()[0] < pages_before  # committed
    except sqlite3.Error as exc:
        errors.append(str(exc))
rest = rows.fetchall()  # finish the read that began before the VACUUM started
print(json.dumps({"vacuum_committed_during_the_read": vacuumed, "snapshot_pages": snapshot_pages,
                  "snapshot_pages_at_the_end": reader.execute("PRAGMA page_count").fetchone()[0],
                  "read": [1 + len(rest), first[1] + sum(length for _, length in rest)],
                  "fresh": sorted(fresh), "errors": errors}))
reader.execute("COMMIT")
"""


def test_a_live_reader_keeps_working_through_a_vacuum_that_commits_during_its_read(cli, fragmented_db, tmp_path):
    """Proves the overlap instead of hoping for it: the reader starts a read (in a read
    transaction) before the run starts, keeps it open until another connection sees the VACUUM's
    commit, then finishes it; reads by that other connection run all along."""
    path, before = fragmented_db
    conn = sqlite3.connect(path)
    expected = list(conn.execute("SELECT count(*), sum(length(flavor_text)) FROM pokemon_cards").fetchone())
    conn.close()
    stop = tmp_path / "stop-reading"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(before["page_count"]), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline() == "reading\n", "the read is open before the run starts"

    result, run = run_json(cli, "--force")
    stop.touch()  # only matters when no VACUUM committed: the reader would wait for it
    seen = json.loads(reader.communicate(timeout=90)[0])

    assert result.exit_code == 0, result.output
    assert run["metrics"]["vacuumed"] == 1 and run["metrics"]["pages_freed"] > 0
    assert seen["vacuum_committed_during_the_read"], "the VACUUM started and committed while the read was open"
    assert seen["snapshot_pages"] == seen["snapshot_pages_at_the_end"] == before["page_count"], \
        "the open read kept the snapshot from before the VACUUM"
    assert seen["read"] == expected, "the read across the VACUUM saw every row"
    assert seen["errors"] == [] and seen["fresh"] == [expected], "every read meanwhile saw the same, complete data"


def test_status_shows_the_cleanup_run(cli, card_db_path):
    run_json(cli)
    result = invoke(cli, "status", "cleanup-stale-data", "--json")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["jobs"][0]
    assert entry["last_status"] == RunStatus.SUCCEEDED.value and entry["consecutive_failures"] == 0


def test_vacuum_is_skipped_when_the_disk_has_no_room_for_it(cli, env, fragmented_db, tiny_filesystem):
    path, before = fragmented_db
    env["TCGJOBS_TMPDIR"] = str(tiny_filesystem(1024 * 1024))
    result, run = run_json(cli, "--force")
    assert result.exit_code == 0, result.output
    assert run["metrics"]["vacuumed"] == 0
    assert "not enough disk for VACUUM" in result.stderr
    after = bigdb.facts_of(path)
    assert after["page_count"] == before["page_count"] and after["freelist"] > 0, "no VACUUM ran"


def test_a_damaged_database_fails_cleanup_before_any_maintenance(cli, fragmented_db):
    path, _ = fragmented_db
    bigdb.damage_pages(path, first_page=3)
    damaged = hashlib.sha256(path.read_bytes()).hexdigest()
    result, run = run_json(cli, "--force")
    assert result.exit_code == 1, result.output
    assert "quick_check" in run["error"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == damaged, "no VACUUM or ANALYZE on a damaged file"
