"""Dead-man pings in the healthchecks.io convention, received by a real local HTTP server."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tcgjobs.services.pings import ping_url
from tests.conftest import invoke
from tests.health.support import fill_cards, free_port


@pytest.fixture
def pinged(env: dict[str, str], slack):
    fill_cards(Path(env["DATABASE_PATH"]))
    env["TCGJOBS_PING_URL"] = slack.url + "/ping/KEY/{job}"
    return slack


def paths(server) -> list[tuple[str, str]]:
    return [(urlsplit(r.path).path, parse_qs(urlsplit(r.path).query)["rid"][0]) for r in server.requests]


def test_successful_run_pings_start_then_success_with_the_run_id(cli, env, pinged):
    result = invoke(cli, "run", "cleanup-stale-data", "--json")
    assert result.exit_code == 0, result.output
    run_id = __import__("json").loads(result.stdout)["run"]["run_id"]
    rid = str(uuid.UUID(run_id))
    assert paths(pinged) == [("/ping/KEY/cleanup-stale-data/start", rid), ("/ping/KEY/cleanup-stale-data", rid)]
    assert all(r.method == "GET" for r in pinged.requests)


def test_failed_run_pings_its_exit_code(cli, env, pinged):
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0  # the ledger exists from now on
    database = Path(env["DATABASE_PATH"])
    database.rename(database.with_name("hidden.db"))
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert [p for p, _ in paths(pinged)][2:] == ["/ping/KEY/cleanup-stale-data/start",
                                                 "/ping/KEY/cleanup-stale-data/78"]


def test_health_check_with_critical_checks_pings_exit_code_3(cli, env, pinged):
    assert invoke(cli, "run", "database-health-check").exit_code == 3  # no backup yet: critical
    assert [p for p, _ in paths(pinged)][-1] == "/ping/KEY/database-health-check/3"


def test_dry_run_sends_no_pings(cli, env, pinged):
    assert invoke(cli, "run", "cleanup-stale-data", "--dry-run").exit_code == 0
    assert pinged.requests == []


def test_unreachable_ping_endpoint_never_fails_the_job(cli, env):
    fill_cards(Path(env["DATABASE_PATH"]))
    env["TCGJOBS_PING_URL"] = f"http://127.0.0.1:{free_port()}/{{job}}"
    result = invoke(cli, "run", "cleanup-stale-data")
    assert result.exit_code == 0, result.output
    assert "ping for cleanup-stale-data not delivered" in result.stderr


def test_ping_endpoint_errors_are_only_warnings(cli, env, pinged):
    pinged.script(500, 500, 404)
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    assert len(pinged.requests) == 3  # start tried twice (5xx), success once (404 is not retried)


@pytest.mark.parametrize(("kind", "code", "expected"), [
    ("start", None, "https://hc-ping.com/k/sync-missing-sets/start"),
    ("success", None, "https://hc-ping.com/k/sync-missing-sets"),
    ("fail", 1, "https://hc-ping.com/k/sync-missing-sets/1"),
    ("fail", 124, "https://hc-ping.com/k/sync-missing-sets/124"),
    ("fail", None, "https://hc-ping.com/k/sync-missing-sets/fail"),
])
def test_ping_url_follows_the_healthchecks_convention(kind, code, expected):
    assert ping_url("https://hc-ping.com/k/{job}/", "sync-missing-sets", kind, code) == expected


def test_ping_url_without_placeholder_is_shared_by_all_jobs():
    assert ping_url("https://hc-ping.com/uuid", "backup-database", "start") == "https://hc-ping.com/uuid/start"
