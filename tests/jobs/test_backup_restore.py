"""A restore runs through the runner as the operation ``backup-restore``: a ledger row naming the
backup and the safety snapshot, a deadline (TCGJOBS_RESTORE_TIMEOUT or --timeout), SIGTERM/SIGINT
handling, failure alerts and a Slack notice at severity warning; no CronJob and no status row."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tcgjobs.backups.catalog import list_safety_snapshots
from tcgjobs.db.state import open_view
from tcgjobs.errors import ExitCode
from tests.conftest import invoke, make_settings, popen_tcgjobs
from tests.support.backups import fill_card_db, flip_byte, make_backup, names

WHEN = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)
WARNING_COLOUR = "#ff9800"


@pytest.fixture
def moved_on(settings):
    """The settings, with a backup of the card database taken before a set was added to it."""
    fill_card_db(settings.database_path)
    backup = make_backup(settings, WHEN)
    add_late_set(settings.database_path)
    return settings, backup


def add_late_set(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO pokemon_card_sets (id, name, series) VALUES ('late', 'Late', 'T')")
    conn.close()


def set_ids(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM pokemon_card_sets ORDER BY id")]
    finally:
        conn.close()


def restores():
    return open_view(make_settings().state_path, busy_timeout_ms=1000,
                     stale_after=timedelta(minutes=1)).runs("backup-restore")


def log_messages(stderr: str) -> list[str]:
    return [json.loads(line)["message"] for line in stderr.splitlines() if line.startswith("{")]


def with_slack(env, slack) -> None:
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = slack.webhook()


def test_a_restore_over_the_live_database_is_recorded_and_tells_slack_at_warning(cli, env, moved_on, slack):
    settings, backup = moved_on
    with_slack(env, slack)

    result = invoke(cli, "backup", "restore", backup.name, "--force", "--json")

    assert result.exit_code == 0, result.output
    assert "late" not in set_ids(settings.database_path)
    [safety] = list_safety_snapshots(settings.backup_dir)
    [run] = restores()
    assert (run.status.value, run.exit_code, run.trigger) == ("succeeded", 0, "manual")
    assert backup.name in run.summary and safety.name in run.summary
    assert run.metrics["rows_pokemon_cards"] == 15
    assert (run.deadline_at - run.started_at).total_seconds() == 1800  # TCGJOBS_RESTORE_TIMEOUT's default
    assert json.loads(result.stdout)["run"]["run_id"] == run.run_id
    assert any(m.startswith("starting backup-restore") for m in log_messages(result.stderr))
    [posted] = slack.requests
    attachment = posted.json["attachments"][0]
    assert attachment["color"] == WARNING_COLOUR and "Card Database Restored" in attachment["title"]
    assert f"card database restored from {backup.name}" in attachment["text"]
    assert safety.name in attachment["text"]
    assert slack.webhook() not in result.stderr + result.stdout

    history = json.loads(invoke(cli, "history", "backup-restore", "--json").stdout)["runs"]
    assert [(r["run_id"], r["summary"]) for r in history] == [(run.run_id, run.summary)]
    statuses = json.loads(invoke(cli, "status", "--json").stdout)["jobs"]
    assert "backup-restore" not in {s["job"] for s in statuses}
    assert "backup-restore" not in invoke(cli, "list").stdout


def test_a_restore_to_a_new_path_is_recorded_and_tells_nobody(cli, env, moved_on, slack, tmp_path):
    settings, backup = moved_on
    with_slack(env, slack)
    target = tmp_path / "drill" / "copy.db"

    result = invoke(cli, "backup", "restore", backup.name, "--to", str(target), "--timeout", "60")

    assert result.exit_code == 0, result.output
    [run] = restores()
    assert run.status.value == "succeeded" and str(target) in run.summary
    assert (run.deadline_at - run.started_at).total_seconds() == 60
    assert slack.requests == []
    assert "late" in set_ids(settings.database_path)


def test_a_corrupt_backup_is_recorded_as_a_failed_restore_and_alerts(cli, env, moved_on, slack):
    settings, backup = moved_on
    with_slack(env, slack)
    flip_byte(backup)

    result = invoke(cli, "backup", "restore", backup.name, "--force")

    assert result.exit_code == ExitCode.PROBLEMS, result.output
    assert "is corrupt, not restoring it" in result.output
    [run] = restores()
    assert (run.status.value, run.exit_code) == ("failed", 3) and "is corrupt" in run.error
    [posted] = slack.requests
    assert "Job Failed: backup-restore" in posted.json["attachments"][0]["title"]
    assert "late" in set_ids(settings.database_path)
    assert list_safety_snapshots(settings.backup_dir) == []


def test_a_restore_refused_without_force_is_recorded_and_changes_nothing(cli, moved_on):
    settings, backup = moved_on
    result = invoke(cli, "backup", "restore", backup.name)
    assert result.exit_code == 1, result.output
    assert "refusing to overwrite it without --force" in result.output
    [run] = restores()
    assert (run.status.value, run.exit_code) == ("failed", 1)
    assert "late" in set_ids(settings.database_path)


def _big_live_database(path: Path, megabytes: int) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO users (username, email, password) VALUES ('u', 'e', ?)",
                         [(os.urandom(1 << 20).hex(),) for _ in range(megabytes)])
    conn.close()


def _stopped_under_the_write_lock(process, temp_dir: Path) -> None:
    """SIGSTOP ``process`` once its safety snapshot has begun: the restore holds the live
    database's write lock from then until it commits."""
    marker = f".tcgjobs-tmp-backup-snapshot-{process.pid}-"
    deadline = time.monotonic() + 60
    while not any(entry.name.startswith(marker) for entry in os.scandir(temp_dir)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the restore never began its safety snapshot"
        time.sleep(0.0005)
    process.send_signal(signal.SIGSTOP)


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "code", "status"), [
    ("SIGTERM", 143, "interrupted"), ("SIGINT", 130, "interrupted"), ("deadline", 124, "timeout")])
def test_a_restore_stopped_under_the_write_lock_changes_nothing_and_says_so(env, moved_on, stop, code,
                                                                             status):
    settings, backup = moved_on
    _big_live_database(settings.database_path, 6)
    before = set_ids(settings.database_path)
    env["TCGJOBS_RESTORE_TIMEOUT"] = "8"
    process = popen_tcgjobs("backup", "restore", backup.name, "--force")
    _stopped_under_the_write_lock(process, settings.temp_dir)
    if stop == "deadline":  # the deadline passes while the restore holds the lock
        [running] = restores()
        time.sleep(max(0.0, (running.deadline_at - datetime.now(UTC)).total_seconds() + 0.3))
    else:
        process.send_signal(getattr(signal, stop))
    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=60)

    assert process.returncode == code, out + err
    [run] = restores()
    assert (run.status.value, run.exit_code) == (status, code)
    messages = log_messages(err)
    assert any(m.startswith("cancelling the run") for m in messages), messages
    assert any("rolled back" in m for m in messages), messages
    assert not any(m.startswith("restored ") for m in messages), messages
    assert set_ids(settings.database_path) == before  # nothing restored
    assert list_safety_snapshots(settings.backup_dir) == []  # nor a safety snapshot published
    assert names(settings.backup_dir) == sorted([backup.name, backup.name + ".manifest.json",
                                                 backup.name + ".sha256"])
    assert list(settings.temp_dir.iterdir()) == []
    writer = sqlite3.connect(settings.database_path, timeout=0)  # the write lock was released
    with writer:
        writer.execute("DELETE FROM pokemon_card_sets WHERE id = 'late'")
    writer.close()


@pytest.mark.parametrize(("target", "restored", "says"), [
    # the moment the restored content is committed, before it is checked
    ("tcgjobs.backups.overwrite:check_restored", True, "restored to"),
    # the moment the safety snapshot has its name, before anything is restored
    ("tcgjobs.backups.create:fsync_dir", False, "was not restored"),
])
def test_a_signal_once_something_was_committed_says_what_never_rolled_back(moved_on, target, restored, says):
    from tests.cli.test_run_committed import run_paused

    settings, backup = moved_on
    status, out, err = run_paused(target, 1, signal.SIGTERM, "backup", "restore", backup.name, "--force")

    assert status == ExitCode.INTERRUPTED_SIGTERM, err
    [safety] = list_safety_snapshots(settings.backup_dir)
    assert safety.status == "verified"
    [run] = restores()
    assert (run.status.value, run.exit_code) == ("interrupted", 143)
    assert "committed before the stop" in run.error and says in run.error and safety.name in run.error
    assert "rolled back" not in run.error and not any("rolled back" in m for m in log_messages(err))
    assert "error: received SIGTERM; committed before the stop" in err
    assert ("late" not in set_ids(settings.database_path)) is restored


def test_a_sigterm_while_slack_is_told_cuts_the_notice_short_and_keeps_exit_0(env, moved_on):
    from tests.cli.test_run_signals import SLOW, wait_for_requests
    from tests.support.slack_server import SlackServer

    settings, backup = moved_on
    server = SlackServer(hang_seconds=60)
    server.default = "hang"
    server.start()
    try:
        env["NOTIFICATIONS_ENABLED"] = "true"
        env["SLACK_WEBHOOK_URL"] = server.webhook()
        env["TCGJOBS_SLACK_TIMEOUT"] = SLOW
        process = popen_tcgjobs("backup", "restore", backup.name, "--force")
        wait_for_requests(server, 1, process)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        server.stop()

    assert process.returncode == 0, err
    assert time.monotonic() - signalled < 15, "the notice was not cut short"
    assert f"restored {backup.name}" in out
    [run] = restores()
    assert (run.status.value, run.exit_code) == ("succeeded", 0)
    assert "late" not in set_ids(settings.database_path)
