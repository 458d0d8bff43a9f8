"""``tcgjobs notify test|silence|silences|unsilence``: exit codes and recorded state."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tcgjobs.times import parse_instant, utcnow
from tests.conftest import invoke
from tests.health.support import free_port


@pytest.fixture
def webhook(env: dict[str, str], slack) -> str:
    env["SLACK_WEBHOOK_URL"] = slack.webhook()
    env["TCGJOBS_SLACK_MAX_ATTEMPTS"] = "1"
    return slack.webhook()


def state_path(env: dict[str, str]) -> Path:
    return Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3"


def test_notify_test_delivers_and_exits_0(cli, env, webhook, slack):
    result = invoke(cli, "notify", "test")
    assert result.exit_code == 0, result.output
    assert "delivered: HTTP 200 after 1 attempt(s)" in result.stdout
    assert "NOTIFICATIONS_ENABLED is false" in result.stdout
    [request] = slack.requests
    assert request.path == "/services/T000TEST/B000TEST/abcdefSECRETtoken123"
    assert "Slack notifications work" in request.json["text"]


def test_notify_test_reports_a_server_error_and_exits_69(cli, env, webhook, slack):
    slack.script(500)
    result = invoke(cli, "notify", "test", "--json")
    assert result.exit_code == 69, result.output
    document = json.loads(result.stdout)
    assert (document["delivered"], document["http_status"], document["permanent"]) == (False, 500, False)


def test_notify_test_reports_a_gone_webhook_and_exits_78(cli, env, webhook, slack):
    slack.script(404)
    result = invoke(cli, "notify", "test")
    assert result.exit_code == 78, result.output
    assert "refused for good: HTTP 404" in result.stdout
    assert "SECRETtoken" not in result.output


def test_notify_test_with_nobody_listening_exits_69(cli, env):
    env["SLACK_WEBHOOK_URL"] = f"http://127.0.0.1:{free_port()}/hook"
    env["TCGJOBS_SLACK_MAX_ATTEMPTS"] = "1"
    result = invoke(cli, "notify", "test")
    assert result.exit_code == 69, result.output
    assert "no HTTP answer" in result.stdout


def test_notify_test_without_a_webhook_is_a_configuration_error(cli, env):
    result = invoke(cli, "notify", "test")
    assert result.exit_code == 78
    assert "SLACK_WEBHOOK_URL is not set" in result.stderr


def test_silence_records_a_silence_until_the_given_time(cli, env):
    before = utcnow()
    result = invoke(cli, "notify", "silence", "--until", "2h", "--reason", "disk swap", "--json")
    assert result.exit_code == 0, result.output
    silence = json.loads(result.stdout)["silence"]
    until = parse_instant(silence["until"])
    assert before + timedelta(hours=2) <= until <= utcnow() + timedelta(hours=2)
    with sqlite3.connect(state_path(env)) as db:
        assert db.execute("SELECT reason, ended_at FROM silences").fetchall() == [("disk swap", None)]


def test_silence_accepts_an_iso_time(cli, env):
    at = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    result = invoke(cli, "notify", "silence", "--until", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--json")
    assert result.exit_code == 0, result.output
    assert parse_instant(json.loads(result.stdout)["silence"]["until"]) == at


def test_silence_reads_a_time_without_zone_in_the_schedules_time_zone(cli, env):
    env["TCGJOBS_TIMEZONE"] = "Europe/Berlin"
    result = invoke(cli, "notify", "silence", "--until", "2030-01-01T00:00")
    assert result.exit_code == 0, result.output
    assert "until 2029-12-31 23:00:00 UTC (2030-01-01 00:00 Europe/Berlin)" in result.stdout
    explicit = invoke(cli, "notify", "silence", "--until", "2030-07-01T00:00Z", "--json")
    assert explicit.exit_code == 0, explicit.output
    with sqlite3.connect(state_path(env)) as db:
        stored = [parse_instant(row[0]) for row in db.execute("SELECT until FROM silences ORDER BY id")]
    assert stored == [parse_instant("2029-12-31T23:00:00Z"), parse_instant("2030-07-01T00:00:00Z")]
    assert "TCGJOBS_TIMEZONE" in invoke(cli, "notify", "silence", "--help").stdout


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_the_option_and_the_setting_read_the_same_string_as_the_same_moment(cli, env, zone):
    env["TCGJOBS_TIMEZONE"] = zone
    env["TCGJOBS_SILENCE_UNTIL"] = "2030-11-28T14:00"
    created = invoke(cli, "notify", "silence", "--until", "2030-11-28T14:00", "--json")
    assert created.exit_code == 0, created.output
    listed = json.loads(invoke(cli, "notify", "silences", "--json").stdout)
    option = parse_instant(json.loads(created.stdout)["silence"]["until"])
    setting = parse_instant(listed["silence_until_setting"])
    assert option == setting
    assert option.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") == "2030-11-28 14:00"


@pytest.mark.parametrize("until", ["yesterday", "2000-01-01T00:00Z", "-5m"])
def test_silence_refuses_a_bad_or_past_time_with_exit_2(cli, env, until):
    result = invoke(cli, "notify", "silence", "--until", until)
    assert result.exit_code == 2, result.output
    assert not state_path(env).exists() or sqlite3.connect(state_path(env)).execute(
        "SELECT count(*) FROM silences").fetchone() == (0,)


def test_silences_lists_active_ones_and_unsilence_ends_them(cli, env):
    invoke(cli, "notify", "silence", "--until", "1h", "--reason", "first")
    invoke(cli, "notify", "silence", "--until", "3h", "--reason", "second")
    listed = json.loads(invoke(cli, "notify", "silences", "--json").stdout)["silences"]
    assert [(s["id"], s["reason"], s["active"]) for s in listed] == [(1, "first", True), (2, "second", True)]
    result = invoke(cli, "notify", "unsilence", "1")
    assert result.exit_code == 0 and "ended 1 silence(s)" in result.stdout
    assert [s["id"] for s in json.loads(invoke(cli, "notify", "silences", "--json").stdout)["silences"]] == [2]
    assert [s["id"] for s in json.loads(invoke(cli, "notify", "silences", "--all", "--json").stdout)["silences"]] \
        == [1, 2]
    assert invoke(cli, "notify", "unsilence", "1").exit_code == 2
    assert "ended 1 silence(s)" in invoke(cli, "notify", "unsilence").stdout
    assert json.loads(invoke(cli, "notify", "silences", "--json").stdout)["silences"] == []


def test_silences_shows_the_setting(cli, env):
    env["TCGJOBS_SILENCE_UNTIL"] = "2999-01-01T00:00Z"
    result = invoke(cli, "notify", "silences")
    assert result.exit_code == 0
    assert "TCGJOBS_SILENCE_UNTIL" in result.stdout


def test_invalid_silence_setting_is_a_configuration_error(cli, env):
    env["TCGJOBS_SILENCE_UNTIL"] = "next tuesday"
    result = invoke(cli, "notify", "silences")
    assert result.exit_code == 78
    assert "TCGJOBS_SILENCE_UNTIL" in result.stderr
