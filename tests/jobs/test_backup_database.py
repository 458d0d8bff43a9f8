"""backup-database: consistent snapshots (WAL included, concurrent writers), verified, atomic,
private, with sidecars; clean failure on a full disk or a kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tcgjobs.backups.catalog import list_backups
from tcgjobs.backups.names import is_backup_name
from tcgjobs.backups.verify import hash_file, verify_file
from tcgjobs.db.state import open_view
from tests.conftest import invoke, popen_tcgjobs, run_tcgjobs
from tests.support.backups import fill_card_db, live_counts, names, rows


@pytest.fixture
def filled(settings):
    fill_card_db(settings.database_path)
    return settings


def run_backup(cli, *args: str):
    result = invoke(cli, "run", "backup-database", "--json", *args)
    return result, json.loads(result.stdout).get("run") if result.stdout.strip() else None


def test_backup_writes_a_verified_private_file_with_checksum_and_manifest(cli, filled):
    result, run = run_backup(cli)

    assert result.exit_code == 0, result.output
    [backup] = list_backups(filled.backup_dir)
    assert backup.status == "verified" and backup.compression == "gzip"
    assert names(filled.backup_dir) == [backup.name, backup.name + ".manifest.json", backup.name + ".sha256"]
    for path in filled.backup_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    manifest = backup.manifest
    assert manifest["row_counts"] == live_counts(filled.database_path)
    assert manifest["row_counts"]["pokemon_card_sets"] == 3 and manifest["row_counts"]["pokemon_cards"] == 15
    assert manifest["source"]["path"] == str(filled.database_path)
    assert manifest["source"]["size_bytes"] > 0
    assert manifest["sqlite_version"] == sqlite3.sqlite_version
    assert manifest["tcgjobs_version"] and manifest["compression"] == "gzip"
    assert manifest["sha256"] == hash_file(backup.path)
    assert manifest["verification"]["status"] == "verified" and manifest["verification"]["verified_at"]
    metrics = run["metrics"]
    assert metrics["backup_verified"] == 1 and metrics["rows_total"] == sum(manifest["row_counts"].values())
    assert metrics["rows_pokemon_cards"] == 15
    assert metrics["backup_size_bytes"] == backup.size_bytes
    assert metrics["uncompressed_bytes"] > metrics["backup_size_bytes"]
    assert metrics["duration_seconds"] >= 0
    last = open_view(filled.state_path, busy_timeout_ms=1000, stale_after=timedelta(minutes=1)).last_run(
        "backup-database")
    assert last.status.value == "succeeded" and last.metrics["backup_verified"] == 1
    assert list(filled.temp_dir.iterdir()) == []


def test_backup_holds_rows_committed_only_in_the_wal(cli, filled):
    writer = sqlite3.connect(filled.database_path)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with writer:
        writer.execute("INSERT INTO pokemon_card_sets (id, name, series) VALUES ('wal', 'In the WAL', 'T')")
    assert Path(str(filled.database_path) + "-wal").stat().st_size > 0
    try:
        result, _ = run_backup(cli)
    finally:
        writer.close()

    assert result.exit_code == 0, result.output
    [backup] = list_backups(filled.backup_dir)
    copy = verify_file(backup.path, filled.temp_dir, keep_copy=True).restored_copy
    assert ("wal", "In the WAL", "T") in [r[:3] for r in rows(copy, "pokemon_card_sets")]
    copy.unlink()


def test_zstd_compression_writes_a_zst_backup(cli, filled):
    result, run = run_backup(cli, "--compression", "zstd")
    assert result.exit_code == 0, result.output
    [backup] = list_backups(filled.backup_dir)
    assert backup.name.endswith(".sqlite3.db.zst") and backup.compression == "zstd"
    assert backup.status == "verified" and backup.manifest["row_counts"] == live_counts(filled.database_path)


def test_a_missing_database_is_a_configuration_error_and_writes_nothing(cli, settings):
    result, _ = run_backup(cli)
    assert result.exit_code == 78, result.output
    assert names(settings.backup_dir) == []


def test_dry_run_writes_nothing(cli, filled):
    result, run = run_backup(cli, "--dry-run")
    assert result.exit_code == 0, result.output
    assert run["status"] == "dry-run"
    assert names(filled.backup_dir) == []


def test_not_enough_free_space_fails_first_with_a_clear_message_and_no_leftovers(cli, filled):
    result, run = run_backup(cli, "--reserve-bytes", str(10**18))
    assert result.exit_code == 1, result.output
    assert "not enough disk space" in run["error"] and "nothing was written" in run["error"]
    assert names(filled.backup_dir) == []
    assert list(filled.temp_dir.iterdir()) == []


def _limit_file_size(limit: int):
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_during_the_backup_fails_cleanly_and_leaves_nothing(filled):
    conn = sqlite3.connect(filled.database_path)
    with conn:
        conn.execute("INSERT INTO users (username, email, password) VALUES ('u', 'e', ?)",
                     (os.urandom(1_500_000).hex(),))
    conn.close()
    run_tcgjobs("status")  # create the ledger before the limit applies

    done = run_tcgjobs("run", "backup-database", preexec_fn=_limit_file_size(2_000_000))

    assert done.returncode == 1, done.stdout + done.stderr
    assert "not enough disk space" in done.stdout
    assert names(filled.backup_dir) == []
    assert list(filled.temp_dir.iterdir()) == []


def _big_database(path: Path, megabytes: int) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO users (username, email, password) VALUES ('u', 'e', ?)",
                         [(os.urandom(1 << 20),) for _ in range(megabytes)])
    conn.close()


@pytest.mark.slow
def test_kill_9_during_a_backup_leaves_no_backup_and_the_next_run_cleans_up(filled):
    _big_database(filled.database_path, 60)
    process = popen_tcgjobs("run", "backup-database")
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".tcgjobs-tmp-backup-") for p in (
            list(filled.backup_dir.glob(".*")) if filled.backup_dir.is_dir() else [])):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate()

    assert list_backups(filled.backup_dir) == []
    assert [p for p in filled.backup_dir.iterdir() if is_backup_name(p.name)] == []

    done = run_tcgjobs("run", "backup-database", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout)["run"]
    assert run["metrics"]["leftovers_removed"] >= 1
    [backup] = list_backups(filled.backup_dir)
    assert backup.status == "verified"
    assert [p.name for p in filled.backup_dir.iterdir() if p.name.startswith(".")] == []
    assert list(filled.temp_dir.iterdir()) == []


WRITER = textwrap.dedent("""
    import sqlite3, sys, pathlib
    db, ready, stop = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    i = 0
    while not stop.exists():
        with conn:  # one transaction: one set and five cards
            conn.execute("INSERT INTO pokemon_card_sets (id, name, series) VALUES (?, 'W', 'W')", (f"w{i}",))
            conn.executemany(
                "INSERT INTO pokemon_cards (id, name, supertype, subtypes, types, set_id, number) "
                "VALUES (?, 'c', 'Pokémon', '[]', '[]', ?, ?)",
                [(f"w{i}-{c}", f"w{i}", str(c)) for c in range(5)])
        i += 1
        if i == 20:
            ready.touch()
    print(i)
""")


@pytest.mark.slow
def test_backups_taken_while_a_writer_commits_hold_a_transaction_boundary(cli, settings, tmp_path):
    fill_card_db(settings.database_path, sets=0)
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    command = [sys.executable, "-c", WRITER, str(settings.database_path), str(ready), str(stop)]
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        while not ready.exists():
            assert writer.poll() is None
            time.sleep(0.01)
        for _ in range(4):
            result, _ = run_backup(cli)
            assert result.exit_code == 0, result.output
    finally:
        stop.touch()
        committed = int(writer.communicate(timeout=30)[0])

    backups = list_backups(settings.backup_dir)
    assert len(backups) == 4
    seen = []
    for backup in backups:
        result = verify_file(backup.path, settings.temp_dir)
        assert result.ok, result.reason
        sets, cards = result.row_counts["pokemon_card_sets"], result.row_counts["pokemon_cards"]
        assert sets >= 20 and cards == 5 * sets, (backup.name, result.row_counts)
        seen.append(sets)
    assert max(seen) <= committed


def test_a_damaged_live_database_is_not_published_as_a_backup(cli, filled):
    conn = sqlite3.connect(filled.database_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'idx_pokemon_cards_set_id'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(filled.database_path, "r+b") as handle:  # scribble over the index's root page
        handle.seek((root - 1) * page_size)
        handle.write(b"\x0d" + b"\xff" * 64)

    result, run = run_backup(cli)

    assert result.exit_code == 1, result.output
    assert "integrity_check" in run["error"] and "no backup written" in run["error"]
    assert names(filled.backup_dir) == []
    assert list(filled.temp_dir.iterdir()) == []


def test_a_backup_while_another_run_holds_the_backup_directory_is_skipped_with_75(cli, filled):
    from tcgjobs.registry import Resource
    from tcgjobs.services.locks import hold, lock_dir_for, resource_lock

    with hold(lock_dir_for(filled.state_path), [resource_lock(Resource.BACKUP_DIR)], {"job": "rotate-backups"}):
        result, run = run_backup(cli)
    assert result.exit_code == 75, result.output
    assert run["status"] == "skipped" and "rotate-backups" in run["error"]
    assert names(filled.backup_dir) == []


def _stopped_when_verifying(process: subprocess.Popen, temp_dir: Path) -> None:
    """Stop ``process`` (SIGSTOP) the moment its verification's decompressed copy appears."""
    deadline = time.monotonic() + 60
    marker = f".tcgjobs-tmp-backup-verify-{process.pid}-"
    while not any(entry.name.startswith(marker) for entry in os.scandir(temp_dir)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the backup never reached its verification"
        time.sleep(0.0005)
    process.send_signal(signal.SIGSTOP)


def _log_messages(stderr: str) -> list[str]:
    return [json.loads(line)["message"] for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "code", "status"), [
    ("SIGTERM", 143, "interrupted"), ("SIGINT", 130, "interrupted"), ("deadline", 124, "timeout")])
def test_a_backup_stopped_during_its_verification_publishes_nothing(filled, stop, code, status):
    _big_database(filled.database_path, 12)
    process = popen_tcgjobs("run", "backup-database", "--json", "--timeout", "8")
    _stopped_when_verifying(process, filled.temp_dir)
    if stop == "deadline":  # the deadline passes while the process is held inside verification
        running = open_view(filled.state_path, busy_timeout_ms=1000,
                            stale_after=timedelta(minutes=1)).last_run("backup-database")
        time.sleep(max(0.0, (running.deadline_at - datetime.now(UTC)).total_seconds() + 0.3))
    else:
        process.send_signal(getattr(signal, stop))
    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=60)

    assert process.returncode == code, out + err
    run = json.loads(out)["run"]
    assert run["status"] == status
    last = open_view(filled.state_path, busy_timeout_ms=1000, stale_after=timedelta(minutes=1)).last_run(
        "backup-database")
    assert (last.status.value, last.exit_code) == (status, code)
    messages = _log_messages(err)
    assert any(m.startswith("cancelling the run") for m in messages), messages
    assert not any("published" in m for m in messages), messages
    assert names(filled.backup_dir) == [], "an interrupted backup left files in the backup directory"
    assert list(filled.temp_dir.iterdir()) == []

    done = run_tcgjobs("run", "backup-database", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    [backup] = list_backups(filled.backup_dir)
    assert backup.status == "verified"
    assert names(filled.backup_dir) == sorted([backup.name, backup.name + ".manifest.json",
                                               backup.name + ".sha256"])


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_after_the_backup_was_published_says_published_not_rolled_back(filled, signum, code):
    from tests.cli.test_run_committed import run_paused

    status, out, err = run_paused("tcgjobs.backups.create:fsync_dir", 1, signum,  # right after the rename
                                  "run", "backup-database", "--json")

    assert status == code, err
    [backup] = list_backups(filled.backup_dir)
    assert backup.status == "verified"
    run = json.loads(out)["run"]
    assert run["status"] == "interrupted" and run["committed"] == f"{backup.name} verified and published"
    last = open_view(filled.state_path, busy_timeout_ms=1000, stale_after=timedelta(minutes=1)).last_run(
        "backup-database")
    assert (last.status.value, last.exit_code) == ("interrupted", code)
    assert f"committed before the stop: {backup.name}" in last.error and "rolled back" not in last.error
    assert not any("rolled back" in m for m in _log_messages(err)), err
