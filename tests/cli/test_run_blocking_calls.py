"""Every blocking call of a run is bounded by its deadline and returns promptly on a signal.

Real ``tcgjobs`` processes against servers that accept and never answer: a PostgreSQL that stalls
after the TCP handshake. Their own timeouts are set far beyond the deadline, so a run that waits
for them instead of its deadline or the signal cannot pass.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import make_settings, run_tcgjobs
from tests.health.support import StallingServer, fill_cards

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


def last_run(job: str) -> sqlite3.Row:
    connection = sqlite3.connect(make_settings().state_path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM runs WHERE job = ? ORDER BY started_at DESC",
                                  (job,)).fetchone()
    finally:
        connection.close()


@pytest.mark.parametrize("job", ["replicate-to-primary", "database-health-check"])
def test_a_deadline_ends_a_postgres_connect_that_never_gets_an_answer(stalling_primary, job):
    started = time.monotonic()
    result = run_tcgjobs("run", job, "--ignore-deps", "--timeout", "3", "--json")
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
