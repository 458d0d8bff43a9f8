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
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tcgjobs.backups.verify import verify_file
from tests.conftest import ROOT, run_tcgjobs
from tests.support.backups import fill_card_db, make_backup
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
    print(f"\n{TRIALS} restores under a full-speed writer: {dict(checks)}")


def test_a_commit_right_after_the_restore_leaves_the_counts_unchecked_but_never_fails_it(filled):
    from loguru import logger

    from tcgjobs.backups.overwrite import INTEGRITY_ONLY, overwrite

    conn = sqlite3.connect(filled.database_path)
    conn.execute(TABLE_DDL)
    conn.close()
    backup = make_backup(filled, WHEN)
    copy = verify_file(backup, filled.temp_dir, keep_copy=True)
    writer = sqlite3.connect(filled.database_path, timeout=0, isolation_level=None)
    committed = []

    def commit_when_possible() -> None:  # called after every step; succeeds once the lock is free
        try:
            writer.execute("INSERT INTO writes (id) VALUES (?)", (len(committed) + 1,))
            committed.append(True)
        except sqlite3.OperationalError:
            pass

    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="WARNING")
    try:
        done = overwrite(copy.restored_copy, filled.database_path, copy.row_counts,
                         busy_timeout_s=5, safety=None, check=commit_when_possible)
    finally:
        logger.remove(sink)
        copy.restored_copy.unlink()
        writer.close()

    assert committed == [True], "the other connection committed exactly once, after the restore"
    assert done.check == INTEGRITY_ONLY
    assert done.row_counts == {**copy.row_counts, "writes": 1}
    assert any("not compared with the backup's" in m for m in messages), messages
