"""Restoring over a database another process is writing at full speed: every commit before the
restore is in the safety snapshot, every commit after it is on the restored database, and the
restore's own check (integrity, the backup's row counts) is never failed by the writer's rows."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tcgjobs.backups.verify import verify_file
from tcgjobs.db.state import open_view
from tests.conftest import ROOT, run_tcgjobs
from tests.support.backups import fill_card_db, live_counts, make_backup
from tests.support.writer import TABLE_DDL

WRITER = str(ROOT / "tests" / "support" / "writer.py")
WHEN = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)
TRIALS = 20
SPAN = 1_000_000  # ids of trial n are n * SPAN onwards


def logged(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def wait_for_commits(log: Path, count: int, writer: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while len(logged(log)) < count:
        assert writer.poll() is None, writer.communicate()
        assert time.monotonic() < deadline, f"the writer committed fewer than {count} transactions"
        time.sleep(0.005)


def ids(path: Path, first: int) -> set[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM writes WHERE id >= ? AND id < ?",
                                                (first, first + SPAN))}
    finally:
        conn.close()


def safety_ids(report: dict, temp_dir: Path, first: int) -> set[int]:
    copy = verify_file(Path(report["safety_snapshot"]), temp_dir, keep_copy=True).restored_copy
    try:
        return ids(copy, first)
    finally:
        copy.unlink()


@pytest.mark.slow
def test_a_restore_under_a_full_speed_writer_loses_no_commit_and_exits_0(filled):
    database = filled.database_path
    fill_card_db(database, sets=20, cards_per_set=100, start=10)
    conn = sqlite3.connect(database)
    conn.execute(TABLE_DDL)
    conn.close()
    backup = make_backup(filled, WHEN)
    checks: Counter[str] = Counter()
    for trial in range(TRIALS):
        first = trial * SPAN
        log = database.parent / f"writer-{trial}.log"
        writer = subprocess.Popen([sys.executable, WRITER, str(database), str(log), str(first)])
        try:
            wait_for_commits(log, 20, writer)
            done = run_tcgjobs("backup", "restore", backup.name, "--force", "--json")
            wait_for_commits(log, len(logged(log)) + 20, writer)
        finally:
            writer.send_signal(signal.SIGTERM)
            assert writer.wait(timeout=30) == 0
        assert done.returncode == 0, f"trial {trial}: {done.stdout}{done.stderr}"
        report = json.loads(done.stdout)["restore"]
        committed = set(logged(log))
        before, after = safety_ids(report, filled.temp_dir, first), ids(database, first)
        lost = committed - before - after
        assert not lost, f"trial {trial}: {len(lost)} committed transactions lost: {sorted(lost)[:10]}"
        assert before and after and max(before) < min(after), f"trial {trial}: the restore did not " \
            "land between two commits"
        checks[report["check"]] += 1
        run = open_view(filled.state_path, busy_timeout_ms=1000,
                        stale_after=timedelta(minutes=1)).last_run("backup-restore")
        assert (run.run_id, run.status.value, run.exit_code) == (json.loads(done.stdout)["run"]["run_id"],
                                                                 "succeeded", 0)
        assert Path(report["safety_snapshot"]).name in run.summary
        assert any("passed integrity_check" in json.loads(line)["message"]
                   for line in done.stderr.splitlines() if line.startswith("{")), done.stderr
    print(f"\n{TRIALS} restores under a full-speed writer: {dict(checks)}")


def test_a_commit_between_the_restore_and_its_check_leaves_the_counts_unchecked_not_failed(filled):
    """``data_version`` of the restoring connection tells a commit by another connection apart
    (the restore's own commit leaves it as it was: the trials above all check exactly)."""
    from loguru import logger

    from tcgjobs.backups.overwrite import EXACT, INTEGRITY_ONLY, check_restored

    conn = sqlite3.connect(filled.database_path)
    conn.execute(TABLE_DDL)
    conn.close()
    expected = live_counts(filled.database_path)
    live = sqlite3.connect(filled.database_path, isolation_level=None)
    writer = sqlite3.connect(filled.database_path, isolation_level=None)
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="WARNING")
    try:
        before = int(live.execute("PRAGMA data_version").fetchone()[0])
        assert check_restored(live, before, expected, filled.database_path, 5) == (EXACT, expected)
        writer.execute("INSERT INTO writes (id) VALUES (1)")
        checked, counts = check_restored(live, before, expected, filled.database_path, 5)
    finally:
        logger.remove(sink)
        live.close()
        writer.close()

    assert (checked, counts) == (INTEGRITY_ONLY, {**expected, "writes": 1})
    assert any("not compared with the backup's" in m for m in messages), messages


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_a_restore_over_a_copy_in_a_rollback_journal_keeps_its_journal(cli, filled, tmp_path):
    backup = make_backup(filled, WHEN)
    other = tmp_path / "other.db"
    fill_card_db(other, sets=1)
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()

    done = run_tcgjobs("backup", "restore", backup.name, "--to", str(other), "--force", "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)["restore"]
    assert report["check"] == "integrity_check and row counts of the restored state"
    assert report["safety_snapshot"] is None and journal_mode(other) == "delete"
    assert live_counts(other) == report["row_counts"]


def test_a_live_database_in_a_rollback_journal_is_switched_to_wal_for_its_safety_snapshot(filled):
    backup = make_backup(filled, WHEN)
    before = live_counts(filled.database_path)
    conn = sqlite3.connect(filled.database_path)
    conn.execute("PRAGMA journal_mode = DELETE")
    with conn:
        conn.execute("INSERT INTO pokemon_card_sets (id, name, series) VALUES ('late', 'Late', 'T')")
    conn.close()
    assert journal_mode(filled.database_path) == "delete"

    done = run_tcgjobs("backup", "restore", backup.name, "--force", "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)["restore"]
    assert journal_mode(filled.database_path) == "wal"
    assert live_counts(filled.database_path) == before
    copy = verify_file(Path(report["safety_snapshot"]), filled.temp_dir, keep_copy=True)
    assert copy.ok and copy.row_counts["pokemon_card_sets"] == before["pokemon_card_sets"] + 1
    copy.restored_copy.unlink()
    assert any("switched" in json.loads(line)["message"] for line in done.stderr.splitlines()
               if line.startswith("{")), done.stderr
