"""database-health-check: every check driven to every level on real files, exit codes, recording."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tcgjobs.backups.catalog import list_backups
from tcgjobs.backups.names import backup_name, sidecars
from tcgjobs.db.cards import open_card_database
from tcgjobs.db.state import Ledger, RunStatus, open_view
from tcgjobs.times import utcnow
from tests.conftest import invoke, popen_tcgjobs
from tests.health.support import (
    StallingServer,
    backdate_state,
    delete_cards,
    fill_cards,
    free_port,
    healthy_setup,
    run_health,
    state_rows,
    take_backup,
)


@pytest.fixture
def cards(env: dict[str, str], cli) -> Path:
    path = Path(env["DATABASE_PATH"])
    healthy_setup(cli, path)
    return path


def state_path(env: dict[str, str]) -> Path:
    return Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3"


# --- card database, quick_check -------------------------------------------------------------------

def test_healthy_database_passes_every_check_and_exits_0(cli, cards):
    code, checks, run = run_health(cli)
    assert code == 0, run
    assert {name: c["level"] for name, c in checks.items() if not name.startswith("job:")} == {
        "card-database": "ok", "quick-check": "ok", "card-counts": "ok", "database-size": "ok",
        "wal-size": "ok", "disk-free-database": "ok", "disk-free-backups": "ok", "backup-age": "ok",
        "backup-corrupt": "ok", "abandoned-runs": "ok"}
    assert checks["card-counts"]["detail"].startswith("2 sets, 100 cards")
    assert run["metrics"] == {"checks": len(checks), "ok": len(checks), "warning": 0, "critical": 0}


def test_missing_card_database_is_critical_exits_3_and_is_not_created(cli, env):
    code, checks, run = run_health(cli)
    assert code == 3, run
    assert checks["card-database"]["level"] == "critical"
    assert "does not exist" in checks["card-database"]["detail"]
    assert "quick-check" not in checks
    assert not Path(env["DATABASE_PATH"]).exists()


def test_a_file_that_is_not_a_database_is_critical(cli, env):
    path = Path(env["DATABASE_PATH"])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not an SQLite database" * 100)
    code, checks, _ = run_health(cli)
    assert code == 3
    assert checks["card-database"]["level"] == "critical"
    assert "cannot open" in checks["card-database"]["detail"]


def test_corrupt_database_fails_quick_check(cli, env):
    path = Path(env["DATABASE_PATH"])
    fill_cards(path, sets=2, cards_per_set=400)
    page_size = 4096
    size = path.stat().st_size
    assert size > 20 * page_size
    with path.open("r+b") as handle:  # scribble over pages in the middle of the cards table
        for page in range(5, size // page_size - 2, 3):
            handle.seek(page * page_size + 100)
            handle.write(os.urandom(512))
    code, checks, _ = run_health(cli)
    assert code == 3
    assert checks["card-database"]["level"] == "ok"
    assert checks["quick-check"]["level"] == "critical"
    assert checks["quick-check"]["detail"] != "PRAGMA quick_check: ok"


def test_health_check_never_writes_the_card_database(cli, cards):
    before = (cards.stat().st_mtime_ns, cards.read_bytes())
    code, _, _ = run_health(cli)
    assert code == 0
    assert (cards.stat().st_mtime_ns, cards.read_bytes()) == before


# --- sizes and disk -------------------------------------------------------------------------------

@pytest.mark.parametrize(("warning", "critical", "level", "code"), [
    ("1000", "4000", "ok", 0), ("0.01", "4000", "warning", 0), ("0.01", "0.02", "critical", 3)])
def test_database_size_levels(cli, cards, env, warning, critical, level, code):
    env["TCGJOBS_HEALTH_DB_SIZE_WARNING_MB"] = warning
    env["TCGJOBS_HEALTH_DB_SIZE_CRITICAL_MB"] = critical
    exit_code, checks, _ = run_health(cli)
    assert checks["database-size"]["level"] == level
    assert checks["database-size"]["value"] == pytest.approx(cards.stat().st_size / 2**20, abs=0.001)
    assert exit_code == code


@pytest.mark.parametrize(("warning", "critical", "level"), [
    ("100", "1000", "ok"), ("0.001", "1000", "warning"), ("0.001", "0.002", "critical")])
def test_wal_size_levels_with_a_real_wal(cli, cards, env, warning, critical, level):
    writer = open_card_database(cards)  # an open writer keeps its WAL file
    try:
        writer.execute_sql("UPDATE pokemon_cards SET artist = 'x'")
        wal = cards.with_name(cards.name + "-wal")
        assert wal.stat().st_size > 0.002 * 2**20
        env["TCGJOBS_HEALTH_WAL_WARNING_MB"] = warning
        env["TCGJOBS_HEALTH_WAL_CRITICAL_MB"] = critical
        _, checks, _ = run_health(cli)
    finally:
        writer.close()
    assert checks["wal-size"]["level"] == level


@pytest.mark.parametrize(("warning", "critical", "level", "code"), [
    ("1", "0", "ok", 0), ("1e12", "0", "warning", 0), ("1e12", "1e12", "critical", 3)])
def test_disk_free_levels_on_database_and_backup_volumes(cli, cards, env, warning, critical, level, code):
    env["TCGJOBS_HEALTH_DISK_FREE_WARNING_MB"] = warning
    env["TCGJOBS_HEALTH_DISK_FREE_CRITICAL_MB"] = critical
    exit_code, checks, _ = run_health(cli)
    assert checks["disk-free-database"]["level"] == level
    assert checks["disk-free-backups"]["level"] == level
    assert checks["disk-free-database"]["value"] > 0
    assert exit_code == code


@pytest.fixture
def small_volume(tmp_path: Path):
    """A real 4 MiB tmpfs (needs root; skipped with the reason elsewhere)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_nearly_full_backup_volume_is_critical_while_the_database_volume_is_fine(cli, cards, env, small_volume):
    for name in os.listdir(env["BACKUP_DIR"]):
        shutil.copy(Path(env["BACKUP_DIR"]) / name, small_volume / name)
    env["BACKUP_DIR"] = str(small_volume)
    env["TCGJOBS_HEALTH_DISK_FREE_WARNING_MB"] = "3"
    env["TCGJOBS_HEALTH_DISK_FREE_CRITICAL_MB"] = "2"
    code, checks, _ = run_health(cli)
    assert (code, checks["disk-free-backups"]["level"]) == (0, "ok")
    (small_volume / "filler").write_bytes(b"\0" * (3 * 2**20))  # leave well under 2 MiB free
    code, checks, _ = run_health(cli)
    assert code == 3
    assert checks["disk-free-backups"]["level"] == "critical"
    assert checks["disk-free-backups"]["value"] < 2
    assert checks["disk-free-database"]["level"] == "ok"


# --- backups --------------------------------------------------------------------------------------

def _age_backup(backup_dir: Path, hours: float) -> None:
    """Rename the (only) backup and its sidecars as if it had been taken ``hours`` ago."""
    [backup] = list_backups(backup_dir)
    old = backup_name(utcnow() - timedelta(hours=hours), backup.compression)
    for path, new in ((backup.path, backup_dir / old), *((side, backup_dir / side.name.replace(backup.name, old))
                                                         for side in sidecars(backup.path) if side.exists())):
        path.rename(new)


def test_no_verified_backup_is_critical(cli, env):
    fill_cards(Path(env["DATABASE_PATH"]))
    code, checks, _ = run_health(cli)
    assert code == 3
    assert checks["backup-age"]["level"] == "critical"
    assert "no verified backup" in checks["backup-age"]["detail"]
    assert checks["backup-corrupt"]["level"] == "ok"


@pytest.mark.parametrize(("hours", "level", "code"), [(1, "ok", 0), (30, "warning", 0), (60, "critical", 3)])
def test_backup_age_levels_for_a_real_backup_of_that_age(cli, cards, env, hours, level, code):
    _age_backup(Path(env["BACKUP_DIR"]), hours)
    exit_code, checks, _ = run_health(cli)
    assert checks["backup-age"]["level"] == level
    assert checks["backup-age"]["value"] == pytest.approx(hours, abs=0.1)
    assert exit_code == code


def test_a_corrupt_backup_is_critical_even_when_a_newer_one_is_fine(cli, cards, env):
    [backup] = list_backups(Path(env["BACKUP_DIR"]))
    data = bytearray(backup.path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte in the middle of the compressed stream
    backup.path.write_bytes(bytes(data))
    assert invoke(cli, "backup", "verify", backup.name).exit_code == 3
    take_backup(cli)
    code, checks, _ = run_health(cli)
    assert code == 3
    assert checks["backup-corrupt"]["level"] == "critical"
    assert backup.name in checks["backup-corrupt"]["detail"]
    assert checks["backup-age"]["level"] == "ok"


# --- counts ---------------------------------------------------------------------------------------

def test_empty_card_tables_are_critical(cli, card_db_path):
    code, checks, _ = run_health(cli)
    assert code == 3
    assert checks["card-counts"]["level"] == "critical"
    assert "no sets and no cards" in checks["card-counts"]["detail"]


def test_card_count_drop_since_the_previous_check_warns_then_goes_critical(cli, cards, env):
    assert run_health(cli)[1]["card-counts"]["level"] == "ok"
    delete_cards(cards, keep=95)  # 5% gone: above the 1% warning, below the 10% critical
    code, checks, _ = run_health(cli)
    assert (code, checks["card-counts"]["level"]) == (0, "warning")
    assert "cards dropped 5.0% (100 -> 95)" in checks["card-counts"]["detail"]
    delete_cards(cards, keep=50)
    code, checks, _ = run_health(cli)
    assert (code, checks["card-counts"]["level"]) == (3, "critical")
    code, checks, _ = run_health(cli)  # compared with the previous check: stable again
    assert (code, checks["card-counts"]["level"]) == (0, "ok")


# --- PostgreSQL -----------------------------------------------------------------------------------

def test_postgres_is_not_checked_when_not_configured(cli, cards):
    assert "postgres" not in run_health(cli)[1]


@pytest.mark.postgres
@pytest.mark.parametrize(("warning", "critical", "level", "code"), [
    ("2000", "5000", "ok", 0), ("0", "5000", "warning", 0), ("0", "0", "critical", 3)])
def test_postgres_up_levels_by_latency(cli, cards, env, postgres_url, warning, critical, level, code):
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    env["TCGJOBS_HEALTH_POSTGRES_LATENCY_WARNING_MS"] = warning
    env["TCGJOBS_HEALTH_POSTGRES_LATENCY_CRITICAL_MS"] = critical
    exit_code, checks, _ = run_health(cli)
    assert checks["postgres"]["level"] == level
    assert "answered in" in checks["postgres"]["detail"]
    assert exit_code == code


def test_postgres_down_is_critical(cli, cards, env):
    env["POSTGRES_HOST"] = "127.0.0.1"
    env["POSTGRES_PORT"] = str(free_port())
    code, checks, _ = run_health(cli)
    assert code == 3
    assert checks["postgres"]["level"] == "critical"
    assert "unreachable" in checks["postgres"]["detail"]


@pytest.mark.slow
def test_postgres_that_accepts_and_stalls_is_critical_after_the_short_timeout(cli, cards, env):
    server = StallingServer()
    try:
        env["POSTGRES_HOST"] = "127.0.0.1"
        env["POSTGRES_PORT"] = str(server.port)
        env["TCGJOBS_HEALTH_POSTGRES_TIMEOUT"] = "2"
        code, checks, _ = run_health(cli)
    finally:
        server.close()
    assert code == 3
    assert checks["postgres"]["level"] == "critical"
    assert "unreachable within 2s" in checks["postgres"]["detail"]
    assert server.accepted


# --- jobs and runs --------------------------------------------------------------------------------

def test_late_job_warns(cli, cards, env):
    env["TCGJOBS_CLEANUP_STALE_DATA_SCHEDULE"] = "* * * * *"
    env["TCGJOBS_CLEANUP_STALE_DATA_TIMEOUT"] = "1"
    env["TCGJOBS_LATE_GRACE_SECONDS"] = "0"
    run_health(cli)  # creates the state database
    assert run_health(cli)[1]["job:cleanup-stale-data"]["level"] == "ok"  # not deployed long enough
    backdate_state(state_path(env), utcnow() - timedelta(hours=2))
    code, checks, _ = run_health(cli)
    assert (code, checks["job:cleanup-stale-data"]["level"]) == (0, "warning")
    assert "late" in checks["job:cleanup-stale-data"]["detail"]
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    assert run_health(cli)[1]["job:cleanup-stale-data"]["level"] == "ok"


def _insert_failures(env, job: str, minutes_ago: tuple[int, ...]) -> None:
    ledger = Ledger.open(state_path(env), busy_timeout_ms=1000, stale_after=timedelta(minutes=1))
    for minutes in minutes_ago:
        started = utcnow() - timedelta(minutes=minutes)
        ledger.insert(run_id=f"run{minutes}", job=job, trigger="schedule",
                      started_at=started, finished_at=started, status=RunStatus.FAILED.value,
                      exit_code=1, duration_s=0.1, error="disk I/O error")
    ledger.close()


def test_job_check_is_ok_then_warning_from_the_first_failure_then_critical_at_the_threshold(cli, cards, env):
    code, checks, _ = run_health(cli)
    assert (code, checks["job:cleanup-stale-data"]["level"]) == (0, "ok")
    _insert_failures(env, "cleanup-stale-data", (30,))
    code, checks, _ = run_health(cli)
    assert (code, checks["job:cleanup-stale-data"]["level"]) == (0, "warning")
    assert "1 failure(s) in a row" in checks["job:cleanup-stale-data"]["detail"]
    _insert_failures(env, "cleanup-stale-data", (20,))
    code, checks, _ = run_health(cli)
    assert (code, checks["job:cleanup-stale-data"]["level"]) == (0, "warning")
    assert "2 failure(s) in a row" in checks["job:cleanup-stale-data"]["detail"]
    _insert_failures(env, "cleanup-stale-data", (10,))
    code, checks, _ = run_health(cli)
    assert (code, checks["job:cleanup-stale-data"]["level"]) == (3, "critical")
    assert "3 failure(s) in a row; last error: disk I/O error" in checks["job:cleanup-stale-data"]["detail"]


def test_job_failures_warning_threshold_is_a_setting(cli, cards, env):
    env["TCGJOBS_HEALTH_JOB_FAILURES_WARNING"] = "2"
    run_health(cli)  # creates the state database
    _insert_failures(env, "cleanup-stale-data", (30,))
    assert run_health(cli)[1]["job:cleanup-stale-data"]["level"] == "ok"
    _insert_failures(env, "cleanup-stale-data", (20,))
    assert run_health(cli)[1]["job:cleanup-stale-data"]["level"] == "warning"


def _wait_for_running_row(env: dict[str, str], job: str, deadline: float = 20) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if state_path(env).exists():
            view = open_view(state_path(env), busy_timeout_ms=1000, stale_after=timedelta(minutes=1))
            running = view.runs(job, statuses=[RunStatus.RUNNING])
            view.close()
            if running:
                return
        time.sleep(0.05)
    raise AssertionError(f"{job} never started")


@pytest.mark.slow
def test_abandoned_run_killed_with_sigkill_warns_then_goes_critical(cli, cards, env):
    server = StallingServer()  # makes the health check itself hang, so it can be killed mid-run
    env["POSTGRES_HOST"] = "127.0.0.1"
    env["POSTGRES_PORT"] = str(server.port)
    env["TCGJOBS_HEALTH_POSTGRES_TIMEOUT"] = "30"
    try:
        process = popen_tcgjobs("run", "database-health-check")
        _wait_for_running_row(env, "database-health-check")
        time.sleep(0.3)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        server.close()
    del env["POSTGRES_HOST"]
    del env["POSTGRES_PORT"]
    code, checks, _ = run_health(cli)
    assert (code, checks["abandoned-runs"]["level"]) == (0, "warning")
    assert "1 abandoned run(s)" in checks["abandoned-runs"]["detail"]
    env["TCGJOBS_HEALTH_ABANDONED_CRITICAL"] = "1"
    code, checks, _ = run_health(cli)
    assert (code, checks["abandoned-runs"]["level"]) == (3, "critical")


# --- recording, output ----------------------------------------------------------------------------

def test_results_are_recorded_and_keep_their_level_since(cli, cards, env):
    run_health(cli)
    first = dict(state_rows(state_path(env), "SELECT name, level_since FROM health_checks"))
    env["TCGJOBS_HEALTH_DB_SIZE_WARNING_MB"] = "0.01"
    _, _, run = run_health(cli)
    second = dict(state_rows(state_path(env), "SELECT name, level_since FROM health_checks"))
    assert second["quick-check"] == first["quick-check"]
    assert second["database-size"] > first["database-size"]
    assert state_rows(state_path(env), "SELECT level, run_id FROM health_checks WHERE name = 'database-size'") \
        == [("warning", run["run_id"])]


def test_dry_run_checks_but_records_nothing(cli, cards, env):
    code, checks, run = run_health(cli, "--dry-run")
    assert code == 0 and checks["quick-check"]["level"] == "ok"
    assert "dry run" in run["summary"]
    assert state_rows(state_path(env), "SELECT count(*) FROM health_checks") == [(0,)]


def test_text_output_is_a_table_of_checks(cli, cards):
    result = invoke(cli, "run", "database-health-check")
    assert result.exit_code == 0, result.output
    assert re.search(r"^check\s+level\s+detail$", result.stdout, re.M)
    assert re.search(r"^quick-check\s+ok\s+PRAGMA quick_check: ok$", result.stdout, re.M)


def test_status_shows_the_current_health(cli, cards, env):
    env["TCGJOBS_HEALTH_DB_SIZE_WARNING_MB"] = "0.01"
    run_health(cli)
    result = invoke(cli, "status")
    assert result.exit_code == 0, result.output
    assert re.search(r"^database-size\s+warning\s+", result.stdout, re.M)
    document = json.loads(invoke(cli, "status", "--json").stdout)
    assert {c["check"]: c["level"] for c in document["health"]}["database-size"] == "warning"


def test_status_without_health_checks_shows_no_health_section(cli, env):
    document = json.loads(invoke(cli, "status", "--json").stdout)
    assert document["health"] == []
