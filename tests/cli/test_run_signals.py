"""Signals after the job's work: while alerts and pings are sent, SIGTERM and SIGINT cut the
notification short and never change the outcome; the exit code is always the ledger's.

Real ``tcgjobs`` processes, real signals, and a real local HTTP server standing in for Slack and
the ping endpoint that holds the request open until the test has sent the signal.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_settings, run_tcgjobs
from tests.health.support import fill_cards
from tests.support.slack_server import SlackServer


@pytest.fixture
def held(env: dict[str, str]) -> SlackServer:
    """A server that holds every request for a minute unless told otherwise."""
    server = SlackServer(hang_seconds=60)
    server.default = "hang"
    server.start()
    yield server
    server.stop()


def wait_for_requests(server: SlackServer, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while len(server.requests) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the notification never arrived"
        time.sleep(0.01)


def last_run(job: str) -> sqlite3.Row:
    connection = sqlite3.connect(make_settings().state_path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM runs WHERE job = ? ORDER BY started_at DESC",
                                  (job,)).fetchone()
    finally:
        connection.close()


def test_a_sigterm_during_the_success_ping_keeps_exit_0_and_the_ledgers_outcome(env, held):
    fill_cards(Path(env["DATABASE_PATH"]))
    env["TCGJOBS_PING_URL"] = held.url + "/ping/{job}"
    held.script(200)  # /start is answered, the success ping is held
    process = subprocess.Popen([sys.executable, "-m", "tcgjobs", "run", "cleanup-stale-data"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_requests(held, 2, process)  # /start answered, the success ping held open
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert "Outcome:  succeeded (exit 0)" in out
    row = last_run("cleanup-stale-data")
    assert (row["status"], row["exit_code"]) == ("succeeded", 0)
    assert [r.path.split("?")[0] for r in held.requests[:2]] == ["/ping/cleanup-stale-data/start",
                                                                 "/ping/cleanup-stale-data"]


def test_a_sigint_during_the_failure_alert_keeps_exit_78_and_the_ledgers_outcome(env, held):
    fill_cards(Path(env["DATABASE_PATH"]))
    assert run_tcgjobs("run", "cleanup-stale-data").returncode == 0  # the ledger exists
    Path(env["DATABASE_PATH"]).rename(Path(env["DATABASE_PATH"]).with_name("hidden.db"))
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = held.webhook()
    process = subprocess.Popen([sys.executable, "-m", "tcgjobs", "run", "cleanup-stale-data"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_requests(held, 1, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 78, err
    assert "Outcome:  failed (exit 78)" in out
    row = last_run("cleanup-stale-data")
    assert (row["status"], row["exit_code"]) == ("failed", 78)
    assert "Job Failed: cleanup-stale-data" in held.requests[0].json["text"]
