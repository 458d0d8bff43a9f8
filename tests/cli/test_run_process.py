"""The installed CLI as a real process, doing real work (a VACUUM of a ~500 MB database):
deadline, SIGTERM, SIGINT and kill -9 mid-statement, concurrent runs, heartbeat and ``abandoned``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import make_settings, popen_tcgjobs, run_tcgjobs
from tests.support import bigdb

pytestmark = pytest.mark.slow


class StartedVacuum:
    """Reads the child's log (stderr) in a thread; ``wait()`` returns once the VACUUM has begun."""

    def __init__(self, process) -> None:
        self.lines: list[str] = []
        self._event = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process) -> None:
        for line in process.stderr:
            self.lines.append(line)
            if "VACUUM (" in line:
                self._event.set()

    def wait(self, timeout: float = 60) -> None:
        assert self._event.wait(timeout), "VACUUM never started: " + "".join(self.lines)
        time.sleep(0.03)  # inside the first, interruptible phase of the statement

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def ledger_rows(job: str = "cleanup-stale-data") -> list[sqlite3.Row]:
    connection = sqlite3.connect(make_settings().state_path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM runs WHERE job = ? ORDER BY started_at", (job,)).fetchall()
    finally:
        connection.close()


def assert_unchanged(path: Path, before: dict[str, int]) -> None:
    after = bigdb.facts_of(path)
    assert after == before, "the interrupted VACUUM must leave the database exactly as it was"


PAUSE = str(Path(__file__).resolve().parents[1] / "support" / "pause.py")

#: How far into the VACUUM the deadline fires: well inside its first phase (building the new copy,
#: which SQLite can interrupt; the final page copy cannot be) on a database this size. The run's
#: deadline leaves the steps before it (quick_check, checkpoint) ample time on a loaded machine.
LEAD, TIMEOUT = 0.1, 8


def test_the_deadline_stops_vacuum_mid_statement_and_rolls_back(big_card_db):
    from tests.support.pause import LATE

    path, before = big_card_db
    # The pause holds the run just before its VACUUM until the deadline is LEAD seconds away, so
    # the real deadline fires LEAD seconds into the real statement on any machine, under any load.
    process = subprocess.run([sys.executable, PAUSE, "tcgjobs.jobs.cleanup_stale_data:_vacuum",
                              f"1@{LEAD}", "run", "cleanup-stale-data", "--force",
                              "--timeout", str(TIMEOUT)],
                             capture_output=True, text=True, timeout=120)
    log = process.stderr
    assert LATE not in log, log
    assert process.returncode == ExitCode.TIMEOUT, log
    assert f"deadline of {TIMEOUT}s exceeded" in log
    assert "VACUUM (forced)" in log, log
    assert "VACUUM finished" not in log, f"the VACUUM took less than {LEAD}s here: {log}"
    assert_unchanged(path, before)
    row = ledger_rows()[-1]
    assert (row["status"], row["exit_code"]) == ("timeout", 124)
    assert row["finished_at"] is not None


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, ExitCode.INTERRUPTED_SIGTERM),
                                              (signal.SIGINT, ExitCode.INTERRUPTED_SIGINT)])
def test_a_signal_mid_vacuum_stops_gracefully_and_rolls_back(big_card_db, signum, code):
    path, before = big_card_db
    process = popen_tcgjobs("run", "cleanup-stale-data", "--force")
    vacuum = StartedVacuum(process)
    vacuum.wait()
    process.send_signal(signum)
    out = process.stdout.read()
    process.wait(timeout=60)
    err = vacuum.text()
    assert process.returncode == code, err
    assert f"received {signal.Signals(signum).name}" in err
    assert "Outcome:  interrupted" in out
    assert_unchanged(path, before)
    row = ledger_rows()[-1]
    assert (row["status"], row["exit_code"]) == ("interrupted", int(code))


def test_kill_9_leaves_an_abandoned_row_and_never_blocks_the_next_run(big_card_db, env):
    path, before = big_card_db
    env["TCGJOBS_HEARTBEAT_SECONDS"] = "0.5"
    process = popen_tcgjobs("run", "cleanup-stale-data", "--force")
    StartedVacuum(process).wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the heartbeat keeps the running row fresh
        row = ledger_rows()[-1]
        if row["heartbeat_at"] > row["started_at"]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the heartbeat never advanced")
    process.kill()
    process.wait(timeout=30)
    killed = ledger_rows()[-1]
    assert killed["status"] == "running" and killed["finished_at"] is None

    status = run_tcgjobs("status", "cleanup-stale-data", "--json")
    assert json.loads(status.stdout)["jobs"][0]["last_status"] == "abandoned", status.stdout
    history = run_tcgjobs("history", "--json")
    assert json.loads(history.stdout)["runs"][0]["status"] == "abandoned"

    after = bigdb.facts_of(path)  # integrity_check passes: half-written WAL frames are ignored
    assert (after["cards"], after["id_sum"]) == (before["cards"], before["id_sum"])
    again = run_tcgjobs("run", "cleanup-stale-data", "--json")
    assert again.returncode == 0, again.stderr
    rows = {r["run_id"]: r for r in ledger_rows()}
    assert rows[killed["run_id"]]["status"] == "abandoned"
    assert "disappeared" in rows[killed["run_id"]]["error"]


def test_a_second_run_while_the_first_holds_the_lock_exits_75_naming_the_holder(big_card_db):
    path, _ = big_card_db
    first = popen_tcgjobs("run", "cleanup-stale-data", "--force")
    started = StartedVacuum(first)
    started.wait()
    second = run_tcgjobs("run", "cleanup-stale-data", "--json")
    sync = run_tcgjobs("run", "sync-missing-sets", "--json")
    first.wait(timeout=120)
    assert first.returncode == 0, started.text()
    assert second.returncode == ExitCode.SKIPPED, second.stderr
    run = json.loads(second.stdout)["run"]
    assert run["status"] == "skipped" and f"pid {first.pid}" in run["error"]
    assert sync.returncode == ExitCode.SKIPPED, "a sync never runs during a VACUUM"
    assert "resource-card-database" in json.loads(sync.stdout)["run"]["error"]
    skipped = [r for r in ledger_rows() if r["status"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["exit_code"] == 75


def test_unknown_job_exits_2_with_the_valid_names():
    result = run_tcgjobs("run", "defrag-everything")
    assert result.returncode == ExitCode.USAGE
    assert "valid jobs:" in result.stderr and "cleanup-stale-data" in result.stderr


def test_python_dash_m_and_the_console_script_agree():
    import shutil
    import subprocess

    script = shutil.which("tcgjobs", path=os.path.dirname(os.sys.executable))
    assert script, "the console script is installed"
    result = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == run_tcgjobs("--version").stdout
