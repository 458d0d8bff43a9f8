"""Signals after the job's work: while alerts and pings are sent, SIGTERM and SIGINT cut the
notification short and never change the outcome; the exit code is always the ledger's.

Real ``tcgjobs`` processes, real signals, and a real local HTTP server standing in for Slack and
the ping endpoint that holds the request open until the test has sent the signal.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import last_run, run_tcgjobs
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



#: Each notification's own timeout: far longer than a signal may take to cut it short.
SLOW = "60"


def run_until_held(held: SlackServer, requests: int, signum: signal.Signals) -> tuple[int, str, str, float]:
    """Run cleanup-stale-data; once ``requests`` requests arrived (the last one held open), send
    ``signum``. Returns the exit code, stdout, stderr and the seconds from the signal to the exit."""
    process = subprocess.Popen([sys.executable, "-m", "tcgjobs", "run", "cleanup-stale-data"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_requests(held, requests, process)
    signalled = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err, time.monotonic() - signalled


def test_a_sigterm_during_the_success_ping_cuts_it_short_and_keeps_exit_0(env, held):
    fill_cards(Path(env["DATABASE_PATH"]))
    env["TCGJOBS_PING_URL"] = held.url + "/ping/{job}"
    env["TCGJOBS_PING_TIMEOUT"] = SLOW
    held.script(200)  # /start is answered, the success ping is held

    code, out, err, elapsed = run_until_held(held, 2, signal.SIGTERM)

    assert code == 0, err
    assert elapsed < 15, f"{elapsed:.1f}s after SIGTERM: the ping was not cut short"
    assert "Outcome:  succeeded (exit 0)" in out
    row = last_run("cleanup-stale-data")
    assert (row["status"], row["exit_code"]) == ("succeeded", 0)
    assert [r.path.split("?")[0] for r in held.requests] == ["/ping/cleanup-stale-data/start",
                                                             "/ping/cleanup-stale-data"], "no retry"
    assert "success ping for cleanup-stale-data not delivered: cut short: received SIGTERM" in err


def test_a_sigint_during_the_failure_alert_cuts_it_short_and_keeps_exit_78(env, held):
    fill_cards(Path(env["DATABASE_PATH"]))
    assert run_tcgjobs("run", "cleanup-stale-data").returncode == 0  # the ledger exists
    Path(env["DATABASE_PATH"]).rename(Path(env["DATABASE_PATH"]).with_name("hidden.db"))
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = held.webhook()
    env["TCGJOBS_SLACK_TIMEOUT"] = SLOW

    code, out, err, elapsed = run_until_held(held, 1, signal.SIGINT)

    assert code == 78, err
    assert elapsed < 15, f"{elapsed:.1f}s after SIGINT: the alert was not cut short"
    assert "Outcome:  failed (exit 78)" in out
    row = last_run("cleanup-stale-data")
    assert (row["status"], row["exit_code"]) == ("failed", 78)
    assert len(held.requests) == 1, "no retry after the signal"
    assert "Job Failed: cleanup-stale-data" in held.requests[0].json["text"]
    assert "not delivered: cut short: received SIGINT" in err
    assert "SECRET" not in err and "/services/" not in err


def test_a_sigterm_during_the_metrics_push_cuts_it_short_and_keeps_exit_0(env, held):
    fill_cards(Path(env["DATABASE_PATH"]))
    env["TCGJOBS_PUSHGATEWAY_URL"] = held.url
    env["TCGJOBS_PING_TIMEOUT"] = SLOW  # the push's timeout too

    code, out, err, elapsed = run_until_held(held, 1, signal.SIGTERM)

    assert code == 0, err
    assert elapsed < 15, f"{elapsed:.1f}s after SIGTERM: the push was not cut short"
    assert "Outcome:  succeeded (exit 0)" in out
    row = last_run("cleanup-stale-data")
    assert (row["status"], row["exit_code"]) == ("succeeded", 0)
    assert [(r.method, r.path) for r in held.requests] == [("POST", "/metrics/job/cleanup-stale-data")]


def test_a_sigterm_while_the_run_is_set_up_cancels_it_and_is_recorded(env):
    from tests.cli.test_run_committed import run_paused

    fill_cards(Path(env["DATABASE_PATH"]))
    assert run_tcgjobs("run", "cleanup-stale-data").returncode == 0
    # Paused before the run's configuration check: the ledger is not even open yet.
    code, out, err = run_paused("tcgjobs.runner:preflight", 1, signal.SIGTERM,
                                "run", "cleanup-stale-data", "--force")

    assert code == 143, err
    assert "Outcome:  interrupted (exit 143)" in out and "VACUUM" not in err
    row = last_run("cleanup-stale-data")
    assert (row["status"], row["exit_code"]) == ("interrupted", 143)
    assert row["error"] == "received SIGTERM; uncommitted work was rolled back"
