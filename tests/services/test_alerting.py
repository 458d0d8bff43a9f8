"""State-change alerting against a real local HTTP server standing in for Slack."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tcgjobs.times import to_text, utcnow
from tests.conftest import invoke
from tests.health.support import healthy_setup, run_health, state_rows


@pytest.fixture
def alerting(env: dict[str, str], slack, cli):
    healthy_setup(cli, Path(env["DATABASE_PATH"]))
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = slack.webhook()
    env["TCGJOBS_SLACK_MAX_ATTEMPTS"] = "1"
    return slack


def state_path(env: dict[str, str]) -> Path:
    return Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3"


def texts(slack) -> list[str]:
    return [r.json["text"] for r in slack.requests]


def make_critical(env, *checks: str) -> None:
    for check in checks:
        key = {"database-size": "DB_SIZE", "wal-size": "WAL", "disk": "DISK_FREE"}[check]
        env[f"TCGJOBS_HEALTH_{key}_WARNING_MB"] = "1e12" if check == "disk" else "0"
        env[f"TCGJOBS_HEALTH_{key}_CRITICAL_MB"] = "1e12" if check == "disk" else "0"


def make_ok(env) -> None:
    for name in [n for n in env if n.startswith("TCGJOBS_HEALTH_")]:
        del env[name]


def test_ok_critical_critical_ok_sends_one_alert_and_one_recovery_with_the_downtime(cli, env, alerting):
    assert run_health(cli)[0] == 0
    make_critical(env, "database-size")
    assert run_health(cli)[0] == 3
    assert run_health(cli)[0] == 3
    make_ok(env)
    assert run_health(cli)[0] == 0
    sent = texts(alerting)
    assert len(sent) == 2, sent
    assert "Database Health Critical" in sent[0] and "CRITICAL database-size" in sent[0]
    assert "Database Health Recovered" in sent[1]
    assert re.search(r"RECOVERED database-size \(down for \d+s, since \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", sent[1])
    assert state_rows(state_path(env), "SELECT notified_level, bad_since FROM alert_state "
                      "WHERE key = 'check:database-size'") == [("ok", None)]


def test_recovery_states_how_long_the_check_was_down(cli, env, alerting):
    make_critical(env, "database-size")
    run_health(cli)
    with sqlite3.connect(state_path(env)) as db:
        db.execute("UPDATE alert_state SET bad_since = ? WHERE key = 'check:database-size'",
                   (to_text(utcnow() - timedelta(hours=2, minutes=5)),))
    make_ok(env)
    run_health(cli)
    assert "down for 2h 5m" in texts(alerting)[1]


def test_a_slack_failure_is_retried_on_the_next_run(cli, env, alerting):
    make_critical(env, "database-size")
    alerting.script(500)
    _, _, run = run_health(cli)
    assert "NOT delivered" in run["summary"]
    assert state_rows(state_path(env), "SELECT notified_level FROM alert_state "
                      "WHERE key = 'check:database-size'") == [("ok",)]
    run_health(cli)  # Slack answers 200 now: the same alert goes out
    run_health(cli)  # nothing new
    assert len(alerting.requests) == 2
    assert all("CRITICAL database-size" in text for text in texts(alerting))
    assert state_rows(state_path(env), "SELECT notified_level FROM alert_state "
                      "WHERE key = 'check:database-size'") == [("critical",)]


def test_several_checks_flipping_in_one_run_make_one_digest(cli, env, alerting):
    run_health(cli)
    make_critical(env, "database-size", "disk")
    env["TCGJOBS_HEALTH_WAL_WARNING_MB"] = "0"  # WAL is 0 MiB >= 0: warning
    run_health(cli)
    assert len(alerting.requests) == 1
    text = texts(alerting)[0]
    assert "3 critical, 1 warning" in text
    for line in ("CRITICAL database-size", "CRITICAL disk-free-database", "CRITICAL disk-free-backups",
                 "WARNING wal-size"):
        assert line in text
    payload = alerting.requests[0].json["attachments"][0]
    assert payload["color"] == "#d32f2f"


def test_warnings_below_the_minimum_severity_are_not_sent(cli, env, alerting):
    env["NOTIFICATION_MIN_SEVERITY"] = "critical"
    env["TCGJOBS_HEALTH_DB_SIZE_WARNING_MB"] = "0"
    assert run_health(cli)[1]["database-size"]["level"] == "warning"
    assert alerting.requests == []
    env["TCGJOBS_HEALTH_DB_SIZE_CRITICAL_MB"] = "0"
    run_health(cli)
    assert len(alerting.requests) == 1


def test_reminder_is_sent_while_still_failing_after_the_interval(cli, env, alerting):
    env["TCGJOBS_ALERT_REMINDER_HOURS"] = "4"
    make_critical(env, "database-size")
    run_health(cli)
    run_health(cli)
    assert len(alerting.requests) == 1
    with sqlite3.connect(state_path(env)) as db:
        db.execute("UPDATE alert_state SET notified_at = ?", (to_text(utcnow() - timedelta(hours=5)),))
    run_health(cli)
    assert len(alerting.requests) == 2
    assert "Still failing:" in texts(alerting)[1] and "CRITICAL database-size" in texts(alerting)[1]


def test_silence_mutes_alerts_and_the_end_summarises_what_flipped(cli, env, alerting):
    assert invoke(cli, "notify", "silence", "--until", "1h", "--reason", "maintenance").exit_code == 0
    make_critical(env, "database-size")
    assert run_health(cli)[1]["database-size"]["level"] == "critical"  # still checked and recorded
    make_ok(env)
    run_health(cli)
    make_critical(env, "wal-size")
    run_health(cli)
    assert alerting.requests == []
    assert state_rows(state_path(env), "SELECT level FROM health_checks WHERE name = 'wal-size'") == [("critical",)]
    assert invoke(cli, "notify", "unsilence").exit_code == 0
    run_health(cli)
    assert len(alerting.requests) == 1
    text = texts(alerting)[0]
    assert "CRITICAL wal-size" in text
    assert "While alerts were silenced:" in text
    assert re.search(r"database-size: ok → critical at [\d-]+ [\d:]+, critical → ok at", text)
    run_health(cli)
    assert len(alerting.requests) == 1  # the summary is not repeated


def test_silence_until_setting_mutes_alerts(cli, env, alerting):
    env["TCGJOBS_SILENCE_UNTIL"] = (utcnow() + timedelta(hours=1)).isoformat()
    make_critical(env, "database-size")
    _, _, run = run_health(cli)
    assert "silenced" in run["summary"]
    assert alerting.requests == []
    env["TCGJOBS_SILENCE_UNTIL"] = (utcnow() - timedelta(minutes=1)).isoformat()
    run_health(cli)
    assert len(alerting.requests) == 1
    assert "While alerts were silenced:" in texts(alerting)[0]


def test_notifications_off_records_levels_without_sending(cli, env, alerting):
    env["NOTIFICATIONS_ENABLED"] = "false"
    make_critical(env, "database-size")
    _, _, run = run_health(cli)
    assert "notifications are off" in run["summary"]
    assert alerting.requests == []


# --- job failures ---------------------------------------------------------------------------------

def test_job_failures_alert_once_at_the_threshold_and_recover_once(cli, env, alerting):
    env["TCGJOBS_JOB_FAILURE_ALERT_THRESHOLD"] = "2"
    database = Path(env["DATABASE_PATH"])
    hidden = database.with_name("hidden.db")
    database.rename(hidden)  # cleanup-stale-data now fails with a configuration error
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert alerting.requests == []
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert len(alerting.requests) == 1
    first = alerting.requests[0].json
    assert first["attachments"][0]["title"] == ":x: Job Failed: cleanup-stale-data"
    assert "does not exist" in first["attachments"][0]["text"]
    hidden.rename(database)
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    assert len(alerting.requests) == 2
    recovery = alerting.requests[1].json["attachments"][0]
    assert recovery["title"] == ":information_source: Job Recovered: cleanup-stale-data"
    assert re.search(r"succeeded again after \d+s down", recovery["text"])


def test_one_failure_below_the_threshold_sends_nothing_not_even_a_recovery(cli, env, alerting):
    env["TCGJOBS_JOB_FAILURE_ALERT_THRESHOLD"] = "2"
    database = Path(env["DATABASE_PATH"])
    database.rename(database.with_name("hidden.db"))
    invoke(cli, "run", "cleanup-stale-data")
    database.with_name("hidden.db").rename(database)
    invoke(cli, "run", "cleanup-stale-data")
    assert alerting.requests == []


def test_failed_job_alert_is_retried_by_the_next_failing_run(cli, env, alerting):
    database = Path(env["DATABASE_PATH"])
    database.rename(database.with_name("hidden.db"))
    alerting.script(503)
    invoke(cli, "run", "cleanup-stale-data")
    invoke(cli, "run", "cleanup-stale-data")
    invoke(cli, "run", "cleanup-stale-data")
    assert [r.json["attachments"][0]["title"] for r in alerting.requests] == \
        [":x: Job Failed: cleanup-stale-data"] * 2


def test_critical_health_check_is_not_also_reported_as_a_job_failure(cli, env, alerting):
    make_critical(env, "database-size")
    run_health(cli)
    run_health(cli)
    assert len(alerting.requests) == 1
    assert "Job Failed" not in texts(alerting)[0]


def test_a_flip_and_back_during_a_silence_is_summarised_once_it_ends(cli, env, alerting):
    invoke(cli, "notify", "silence", "--until", "1h")
    make_critical(env, "database-size")
    run_health(cli)
    make_ok(env)
    run_health(cli)
    invoke(cli, "notify", "unsilence")
    run_health(cli)
    [request] = alerting.requests
    text = request.json["text"]
    assert "changes while alerts were silenced" in text
    assert "database-size: ok → critical at" in text and "critical → ok at" in text
    assert "RECOVERED" not in text  # nothing was announced, so nothing recovers


def test_job_failures_during_a_silence_alert_after_it_with_a_summary(cli, env, alerting):
    invoke(cli, "notify", "silence", "--until", "1h")
    database = Path(env["DATABASE_PATH"])
    database.rename(database.with_name("hidden.db"))
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert alerting.requests == []
    invoke(cli, "notify", "unsilence")
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    [request] = alerting.requests
    attachment = request.json["attachments"][0]
    assert attachment["title"] == ":x: Job Failed: cleanup-stale-data"
    assert "While alerts were silenced:" in attachment["text"]
    assert "cleanup-stale-data: ok → critical at" in attachment["text"]
