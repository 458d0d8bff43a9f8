"""``tcgjobs config --check`` follows run's rule and run's words: a service that cannot be reached
is 69, an answer that refuses us or a setting to fix is 78, and a problem both can meet is said
the same way in both."""

from __future__ import annotations

import json

import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import invoke, run_tcgjobs
from tests.health.support import free_port


def check(cli, name: str) -> tuple[int, dict]:
    result = invoke(cli, "config", "--check", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return result.exit_code, checks[name]


@pytest.mark.parametrize("style", ["refused", "dns"])
def test_an_unreachable_primary_is_69_in_config_check_as_in_run(cli, env, card_db_path, style):
    host = "127.0.0.1" if style == "refused" else "no-such-host.invalid"
    env["TCGJOBS_POSTGRES_URL"] = f"postgresql://cards@{host}:{free_port()}/pokemon_replica"
    code, found = check(cli, "postgresql")
    run = invoke(cli, "run", "replicate-to-primary", "--ignore-deps", "--json")
    assert code == run.exit_code == ExitCode.UNAVAILABLE, found
    assert found["exit_code"] == ExitCode.UNAVAILABLE
    assert found["detail"].split(":")[0] == json.loads(run.stdout)["run"]["error"].split(":")[0]


@pytest.mark.postgres
def test_a_primary_that_refuses_us_is_78_in_config_check_as_in_run(cli, env, card_db_path, postgres_url):
    env["TCGJOBS_POSTGRES_URL"] = postgres_url + "_gone"
    code, found = check(cli, "postgresql")
    run = invoke(cli, "run", "replicate-to-primary", "--ignore-deps", "--json")
    assert code == run.exit_code == ExitCode.CONFIG, found
    assert "refused the connection" in found["detail"] and "does not exist" in found["detail"]


@pytest.mark.postgres
def test_a_primary_that_answers_passes(cli, env, postgres_url):
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    code, found = check(cli, "postgresql")
    assert code == ExitCode.OK and found["ok"], found


def test_a_missing_data_source_is_worded_as_run_words_it(cli, env, tmp_path):
    env["TCGJOBS_DATA_SOURCE"] = str(tmp_path / "pokemon-tcg-data")
    code, found = check(cli, "data source")
    run = invoke(cli, "run", "sync-missing-sets", "--json")
    assert code == run.exit_code == ExitCode.CONFIG
    said = json.loads(run.stdout)["run"]["error"]
    assert found["detail"] in said and "does not exist (TCGJOBS_DATA_SOURCE)" in said


@pytest.mark.parametrize(("answer", "code"), [
    ((400, {}, "no_text"), ExitCode.OK),  # a webhook that exists rejects an empty payload
    (500, ExitCode.UNAVAILABLE),
    (429, ExitCode.UNAVAILABLE),
    (404, ExitCode.CONFIG),  # no_service
    ((403, {}, "invalid_token"), ExitCode.CONFIG),
])
def test_the_slack_webhook_is_checked_by_the_rule_without_posting(cli, env, slack, answer, code):
    env["SLACK_WEBHOOK_URL"] = slack.webhook()
    slack.script(answer)
    overall, found = check(cli, "slack")
    assert (overall, found["exit_code"]) == (code, code), found
    assert [r.json for r in slack.requests] == [{}], "only an empty payload, which Slack never posts"
    assert "abcdefSECRETtoken123" not in json.dumps(found)


def test_a_slack_webhook_nobody_listens_at_is_69(cli, env):
    env["SLACK_WEBHOOK_URL"] = f"http://127.0.0.1:{free_port()}/services/T000/B000/secretTOKEN"
    assert check(cli, "slack")[0] == ExitCode.UNAVAILABLE


@pytest.mark.parametrize(("answer", "code"), [(200, ExitCode.OK), (503, ExitCode.UNAVAILABLE),
                                              (404, ExitCode.CONFIG), (401, ExitCode.CONFIG)])
def test_the_pushgateway_is_checked_at_its_readiness_endpoint(cli, env, slack, answer, code):
    env["TCGJOBS_PUSHGATEWAY_URL"] = slack.url + "/gateway"
    slack.script(answer)
    overall, found = check(cli, "pushgateway")
    assert (overall, found["exit_code"]) == (code, code), found
    assert [(r.method, r.path) for r in slack.requests] == [("GET", "/gateway/-/ready")]


def test_the_ping_host_is_reached_without_sending_a_ping(cli, env, slack):
    env["TCGJOBS_PING_URL"] = slack.url + "/ping/secret-uuid/{job}"
    code, found = check(cli, "ping url")
    assert code == ExitCode.OK and found["ok"], found
    assert slack.requests == [], "a request would count as a ping"
    env["TCGJOBS_PING_URL"] = f"http://127.0.0.1:{free_port()}/ping/secret-uuid/{{job}}"
    assert check(cli, "ping url")[0] == ExitCode.UNAVAILABLE


def test_a_setting_to_fix_outranks_an_unreachable_service(cli, env):
    env["TCGJOBS_POSTGRES_URL"] = f"postgresql://cards@127.0.0.1:{free_port()}/pokemon"
    env["TCGJOBS_DATA_SOURSE"] = "/srv/data"
    result = invoke(cli, "config", "--check")
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "FAILED (69)" in result.stdout and "FAILED (78)" in result.stdout


def test_the_process_exits_69_for_an_unreachable_primary(env):
    env["TCGJOBS_POSTGRES_URL"] = f"postgresql://cards@127.0.0.1:{free_port()}/pokemon_replica"
    result = run_tcgjobs("config", "--check")
    assert result.returncode == ExitCode.UNAVAILABLE, result.stdout + result.stderr
