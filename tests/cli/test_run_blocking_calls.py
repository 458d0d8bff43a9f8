"""Every blocking call of a run is bounded by its deadline and returns promptly on a signal.

Real ``tcgjobs`` processes against servers that accept and never answer: a PostgreSQL that stalls
after the TCP handshake, a webhook and a ping endpoint that hold the request open. Their own
timeouts are set far beyond the deadline, so a run that waits for them instead of its deadline or
the signal cannot pass. (Signals during the notifications after a run: test_run_signals.py.)
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import last_run, run_tcgjobs
from tests.health.support import StallingServer, fill_cards
from tests.support.slack_server import SlackServer

#: Far longer than any deadline below: reaching it means the run waited for the call.
SLOW = 60


@pytest.fixture
def stalling_primary(env: dict[str, str]) -> StallingServer:
    server = StallingServer()
    env["POSTGRES_HOST"] = "127.0.0.1"
    env["POSTGRES_PORT"] = str(server.port)
    env["TCGJOBS_POSTGRES_CONNECT_TIMEOUT"] = str(SLOW)
    env["TCGJOBS_HEALTH_POSTGRES_TIMEOUT"] = str(SLOW)
    fill_cards(Path(env["DATABASE_PATH"]))
    yield server
    server.close()



@pytest.mark.parametrize("job", ["replicate-to-primary", "database-health-check"])
def test_a_deadline_ends_a_postgres_connect_that_never_gets_an_answer(stalling_primary, job):
    started = time.monotonic()
    ignore = ["--ignore-deps"] if job == "replicate-to-primary" else []  # a job with dependencies
    result = run_tcgjobs("run", job, *ignore, "--timeout", "3", "--json")
    elapsed = time.monotonic() - started

    assert result.returncode == ExitCode.TIMEOUT, result.stderr
    assert elapsed < SLOW / 2, f"{elapsed:.1f}s: the run waited for the connect timeout"
    assert stalling_primary.accepted, "the connect really reached the server"
    run = json.loads(result.stdout)["run"]
    assert (run["status"], run["exit_code"]) == ("timeout", 124)
    assert run["error"] == "deadline of 3s exceeded; uncommitted work was rolled back"
    row = last_run(job)
    assert (row["status"], row["exit_code"]) == ("timeout", 124)


def test_sigterm_ends_a_postgres_connect_that_never_gets_an_answer(stalling_primary):
    process = subprocess.Popen([sys.executable, "-m", "tcgjobs", "run", "replicate-to-primary",
                                "--ignore-deps"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 30
    while not stalling_primary.accepted:  # libpq is now waiting for the server's answer
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=SLOW * 2)
    elapsed = time.monotonic() - signalled

    assert process.returncode == ExitCode.INTERRUPTED_SIGTERM, err
    assert elapsed < SLOW / 4, f"{elapsed:.1f}s after SIGTERM: the run waited for the connect"
    assert "Outcome:  interrupted (exit 143)" in out
    row = last_run("replicate-to-primary")
    assert (row["status"], row["exit_code"]) == ("interrupted", 143)
    assert row["error"] == "received SIGTERM; uncommitted work was rolled back"


@pytest.fixture
def webhook(env: dict[str, str]) -> SlackServer:
    """A Slack stand-in that holds the first request for a minute and answers the others."""
    server = SlackServer(hang_seconds=SLOW)
    server.script("hang")
    server.start()
    yield server
    server.stop()


def test_a_hanging_webhook_in_the_health_check_gives_timeout_124_not_failed_3(env, webhook):
    fill_cards(Path(env["DATABASE_PATH"]))  # no backup yet: backup-age is critical, an alert goes out
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = webhook.webhook()
    env["TCGJOBS_SLACK_TIMEOUT"] = str(SLOW)
    started = time.monotonic()
    result = run_tcgjobs("run", "database-health-check", "--timeout", "5", "--json")
    elapsed = time.monotonic() - started

    assert result.returncode == ExitCode.TIMEOUT, result.stderr
    assert elapsed < SLOW / 2, f"{elapsed:.1f}s: the run waited for the webhook"
    run = json.loads(result.stdout)["run"]
    assert (run["status"], run["exit_code"]) == ("timeout", 124)
    assert run["committed"].endswith("check results recorded; alerts not sent yet")
    assert run["error"] == f"deadline of 5s exceeded; committed before the stop: {run['committed']}"
    row = last_run("database-health-check")
    assert (row["status"], row["exit_code"], row["error"]) == ("timeout", 124, run["error"])
    digest, failure = (request.json["text"] for request in webhook.requests)
    assert "backup-age" in digest and "Job Failed: database-health-check" in failure
    # Cut short in the attempt or in the wait before a retry (under load either may be first).
    assert re.search(r"Slack notification not delivered: (.*; then )?cut short: deadline of 5s exceeded",
                     result.stderr), result.stderr


def test_a_start_ping_that_never_answers_costs_the_deadline_not_its_timeout(env, webhook):
    fill_cards(Path(env["DATABASE_PATH"]))
    env["TCGJOBS_PING_URL"] = webhook.url + "/ping/{job}"
    env["TCGJOBS_PING_TIMEOUT"] = str(SLOW)
    started = time.monotonic()
    result = run_tcgjobs("run", "cleanup-stale-data", "--timeout", "3", "--json")
    elapsed = time.monotonic() - started

    assert result.returncode == ExitCode.TIMEOUT, result.stderr
    assert elapsed < SLOW / 2, f"{elapsed:.1f}s: the run waited for the start ping"
    run = json.loads(result.stdout)["run"]
    assert run["error"] == "deadline of 3s exceeded; uncommitted work was rolled back"
    assert [r.path.split("?")[0] for r in webhook.requests] == ["/ping/cleanup-stale-data/start",
                                                                "/ping/cleanup-stale-data/124"]


def test_a_wait_for_the_card_databases_write_lock_costs_the_deadline_not_the_busy_timeout(env):
    database = Path(env["DATABASE_PATH"])
    fill_cards(database)
    env["TCGJOBS_BUSY_TIMEOUT_MS"] = str(SLOW * 1000)
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock from now on
    try:
        started = time.monotonic()
        result = run_tcgjobs("run", "cleanup-stale-data", "--force", "--timeout", "3", "--json")
        elapsed = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert result.returncode == ExitCode.TIMEOUT, result.stderr
    assert elapsed < SLOW / 2, f"{elapsed:.1f}s: the run waited for the busy timeout"
    assert json.loads(result.stdout)["run"]["status"] == "timeout"
    assert last_run("cleanup-stale-data")["exit_code"] == 124


@pytest.mark.postgres
def test_a_replication_waiting_for_another_ones_lock_costs_the_deadline(env, postgres_url):
    import psycopg2

    from tcgjobs.services.replication.engine import RUN_LOCK

    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    fill_cards(Path(env["DATABASE_PATH"]))
    other = psycopg2.connect(postgres_url)  # another replication, mid-transaction
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (RUN_LOCK,))
    try:
        started = time.monotonic()
        result = run_tcgjobs("run", "replicate-to-primary", "--ignore-deps", "--timeout", "3")
        elapsed = time.monotonic() - started
    finally:
        other.rollback()
        other.close()

    assert result.returncode == ExitCode.TIMEOUT, result.stderr
    assert elapsed < SLOW / 2, f"{elapsed:.1f}s: the run waited for the other replication"
    assert "another replication into this primary is running; waiting" in result.stderr
    row = last_run("replicate-to-primary")
    assert (row["status"], row["exit_code"]) == ("timeout", 124)
