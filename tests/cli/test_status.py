"""``list``, ``status`` and ``history`` on a known ledger, as text, as JSON and as a probe."""

from __future__ import annotations

import json

import pytest

from tcgjobs.registry import all_jobs
from tests.conftest import invoke


def test_list_works_before_any_run_and_shows_schedules_in_words(cli, env):
    result = invoke(cli, "list", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    jobs = {j["job"]: j for j in document["jobs"]}
    assert list(jobs) == list(all_jobs())
    assert jobs["cleanup-stale-data"]["schedule_words"] == "At 05:00, only on Sunday"
    assert jobs["rotate-backups"]["depends_on"] == ["backup-database"]
    assert jobs["database-health-check"]["timeout_s"] == 60
    from pathlib import Path

    assert not Path(env["DATABASE_PATH"]).parent.exists(), "list writes nothing"


def test_list_honours_schedule_and_enabled_overrides(cli, env):
    env["TCGJOBS_CLEANUP_STALE_DATA_SCHEDULE"] = "15 3 * * 1"
    env["TCGJOBS_DATABASE_HEALTH_CHECK_ENABLED"] = "false"
    result = invoke(cli, "list")
    assert result.exit_code == 0, result.output
    lines = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
    assert lines["cleanup-stale-data"][2] == "15 3 * * 1"
    assert lines["cleanup-stale-data"][3] == "At 03:15, only on Monday"
    assert lines["database-health-check"][1].startswith("off")


def test_status_and_history_before_any_run(cli):
    status = invoke(cli, "status", "--json")
    assert status.exit_code == 0, status.output
    assert all(j["last_status"] is None for j in json.loads(status.stdout)["jobs"])
    history = invoke(cli, "history", "--json")
    assert history.exit_code == 0 and json.loads(history.stdout)["runs"] == []


def test_status_on_a_known_ledger(cli, card_db_path):
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    card_db_path.unlink()
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert invoke(cli, "run", "rotate-backups").exit_code == 75

    result = invoke(cli, "status", "--json")
    assert result.exit_code == 0, result.output
    jobs = {j["job"]: j for j in json.loads(result.stdout)["jobs"]}
    cleanup = jobs["cleanup-stale-data"]
    assert cleanup["last_status"] == "failed" and cleanup["last_exit_code"] == 78
    assert cleanup["consecutive_failures"] == 2
    assert "does not exist" in cleanup["last_error"] and cleanup["last_success_at"] is not None
    assert jobs["rotate-backups"]["last_status"] == "skipped"
    assert jobs["rotate-backups"]["consecutive_failures"] == 0, "a skip is not a failure"
    assert json.loads(result.stdout)["needs_attention"] == ["cleanup-stale-data"]

    text = invoke(cli, "status")
    row = next(line for line in text.stdout.splitlines() if line.startswith("cleanup-stale-data"))
    assert "\tfailed\t" in row and "2 failure(s) in a row" in row

    history = json.loads(invoke(cli, "history", "cleanup-stale-data", "--limit", "2", "--json").stdout)["runs"]
    assert [r["status"] for r in history] == ["failed", "failed"]
    assert len(json.loads(invoke(cli, "history", "--json").stdout)["runs"]) == 4


def test_status_check_exits_3_when_a_job_is_failing_and_0_when_healthy(cli, card_db_path):
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    assert invoke(cli, "status", "--check").exit_code == 0
    card_db_path.unlink()
    invoke(cli, "run", "cleanup-stale-data")
    result = invoke(cli, "status", "--check")
    assert result.exit_code == 3, result.output
    assert invoke(cli, "status", "rotate-backups", "--check").exit_code == 0


def test_status_of_an_unknown_job_is_a_usage_error(cli):
    result = invoke(cli, "status", "nope")
    assert result.exit_code == 2
    assert "valid jobs" in result.stderr


def test_a_job_that_missed_its_schedule_is_late_and_fails_the_probe(cli, card_db_path, settings):
    import sqlite3
    from datetime import timedelta

    from tcgjobs.times import utcnow

    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    # The deployment (state database) has existed for two days; backup-database never ran.
    connection = sqlite3.connect(settings.state_path)
    connection.execute("UPDATE meta SET value = ? WHERE key = 'created_at'",
                       ((utcnow() - timedelta(days=2)).isoformat(timespec="microseconds"),))
    connection.commit()
    connection.close()
    result = invoke(cli, "status", "--json", "--check")
    assert result.exit_code == 3, result.output
    jobs = {j["job"]: j for j in json.loads(result.stdout)["jobs"]}
    assert jobs["backup-database"]["late"] is True and jobs["backup-database"]["late_since"]
    assert jobs["cleanup-stale-data"]["late"] is False
    text = invoke(cli, "status", "backup-database").stdout
    assert "LATE since" in text


def test_a_disabled_job_is_never_late(cli, card_db_path, settings, env):
    env["TCGJOBS_BACKUP_DATABASE_ENABLED"] = "false"
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    import sqlite3

    connection = sqlite3.connect(settings.state_path)
    connection.execute("UPDATE meta SET value = '2020-01-01T00:00:00.000000+00:00' WHERE key = 'created_at'")
    connection.commit()
    connection.close()
    jobs = {j["job"]: j for j in json.loads(invoke(cli, "status", "--json").stdout)["jobs"]}
    assert jobs["backup-database"]["late"] is False and jobs["backup-database"]["enabled"] is False


def test_status_shows_active_silences_as_text_and_json(cli, env):
    assert json.loads(invoke(cli, "status", "--json").stdout)["silences"] == []
    assert "silenced" not in invoke(cli, "status").stdout
    result = invoke(cli, "notify", "silence", "--until", "2030-01-01T00:00:00Z", "--reason", "disk swap")
    assert result.exit_code == 0, result.output
    env["TCGJOBS_SILENCE_UNTIL"] = "2029-06-01T12:00:00Z"

    document = json.loads(invoke(cli, "status", "--json").stdout)
    assert [(s["until"], s["reason"]) for s in document["silences"]] == [
        ("2029-06-01T12:00:00+00:00", "TCGJOBS_SILENCE_UNTIL"), ("2030-01-01T00:00:00+00:00", "disk swap")]
    text = invoke(cli, "status")
    assert text.exit_code == 0, text.output
    assert "alerts silenced until 2030-01-01 00:00:00 UTC (silence 1): disk swap" in text.stdout
    assert "alerts silenced until 2029-06-01 12:00:00 UTC: TCGJOBS_SILENCE_UNTIL" in text.stdout

    assert invoke(cli, "notify", "unsilence").exit_code == 0
    del env["TCGJOBS_SILENCE_UNTIL"]
    assert json.loads(invoke(cli, "status", "--json").stdout)["silences"] == []


def test_a_refused_attempt_does_not_hide_the_run_still_in_progress(cli, env, card_db_path):
    """A real run waits for the card database's write lock (held here); a second attempt is
    refused by the job's lock; status names both."""
    import sqlite3
    import time

    from tests.conftest import popen_tcgjobs, run_tcgjobs

    env["TCGJOBS_BUSY_TIMEOUT_MS"] = "60000"
    holder = sqlite3.connect(card_db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    first = popen_tcgjobs("run", "sync-missing-sets")
    try:
        deadline = time.monotonic() + 30
        while not _ledger_has_a_running_row(env) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_tcgjobs("run", "sync-missing-sets")
        assert second.returncode == 75, second.stderr
        shown = json.loads(run_tcgjobs("status", "sync-missing-sets", "--json").stdout)["jobs"][0]
        text = run_tcgjobs("status", "sync-missing-sets").stdout
    finally:
        holder.commit()
        holder.close()
        first.communicate(timeout=60)
    assert first.returncode == 0
    assert shown["last_status"] == "skipped" and shown["running_since"] is not None
    row = next(line for line in text.splitlines() if line.startswith("sync-missing-sets"))
    assert "running since " in row and "last attempt skipped" in row, text


def _ledger_has_a_running_row(env) -> bool:
    import sqlite3
    from pathlib import Path

    path = Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3"
    if not path.exists():
        return False
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] > 0
    except sqlite3.OperationalError:  # the table is being created
        return False
    finally:
        connection.close()


@pytest.mark.parametrize(("variable", "zone"), [("TCGJOBS_TIMEZONE", "Asia/Tokyo"),
                                                ("TCGJOBS_TIMEZONE", "America/New_York"),
                                                ("CRON_TIMEZONE", "Asia/Tokyo")])
def test_list_and_status_print_times_in_the_zone_they_name(cli, env, variable, zone):
    env[variable] = zone
    listed = invoke(cli, "list")
    row = next(line.split("\t") for line in listed.stdout.splitlines() if line.startswith("backup-database"))
    assert row[-1].endswith(f" 00:00:00 {zone}"), row  # 0 0 * * * is midnight where the schedule is
    status = invoke(cli, "status")
    row = next(line.split("\t") for line in status.stdout.splitlines() if line.startswith("backup-database"))
    assert row[4].endswith(f" 00:00:00 {zone}"), row
    due = json.loads(invoke(cli, "list", "--json").stdout)["jobs"][0]["next_due"]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    assert datetime.fromisoformat(due).astimezone(ZoneInfo(zone)).strftime("%H:%M") == "00:00"
