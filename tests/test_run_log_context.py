"""Every log line of a run carries its job and run id: also the lines of the deadline's and the
signals' threads, and also when the run is interrupted, times out, is refused or fails. Real
processes; the run is held inside its work by a write lock this test keeps on the card database."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import popen_tcgjobs, run_tcgjobs

pytestmark = pytest.mark.slow


def assert_every_line_is_the_runs(stderr: str, stdout: str, job: str) -> list[dict]:
    run_id = json.loads(stdout)["run"]["run_id"]
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert lines, "the run logged nothing"
    for line in lines:
        assert (line.get("job"), line.get("run_id")) == (job, run_id), line
    return lines


@pytest.fixture
def held(card_db_path: Path, env):
    """The card database's write lock, held by this test: a sync waits for it inside its work."""
    env["TCGJOBS_BUSY_TIMEOUT_MS"] = "4000"
    holder = sqlite3.connect(card_db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield
    holder.commit()
    holder.close()


def _read_until_started(process, seconds: float = 30) -> str:
    """The log lines a process wrote until its sync began reading the card data."""
    read, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        read.append(process.stderr.readline())
        if "USING THE BUNDLED SAMPLE" in read[-1]:
            return "".join(read)
    raise AssertionError("the run never started: " + "".join(read))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, ExitCode.INTERRUPTED_SIGINT),
                                              (signal.SIGTERM, ExitCode.INTERRUPTED_SIGTERM)])
def test_every_line_of_an_interrupted_run_carries_its_job_and_run_id(held, signum, code):
    process = popen_tcgjobs("run", "sync-missing-sets", "--json")
    started = _read_until_started(process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    lines = assert_every_line_is_the_runs(started + err, out, "sync-missing-sets")
    assert any(f"received {signal.Signals(signum).name}" in line["message"] for line in lines)


def test_every_line_of_a_timed_out_run_carries_its_job_and_run_id(held):
    result = run_tcgjobs("run", "sync-missing-sets", "--json", "--timeout", "1")
    assert result.returncode == ExitCode.TIMEOUT, result.stderr
    lines = assert_every_line_is_the_runs(result.stderr, result.stdout, "sync-missing-sets")
    assert any("deadline of 1s exceeded" in line["message"] for line in lines)


def test_every_line_of_a_refused_run_carries_its_job_and_run_id(held):
    first = popen_tcgjobs("run", "sync-missing-sets")
    _read_until_started(first)
    refused = run_tcgjobs("run", "sync-missing-sets", "--json")
    first.communicate(timeout=60)
    assert refused.returncode == ExitCode.SKIPPED, refused.stderr
    lines = assert_every_line_is_the_runs(refused.stderr, refused.stdout, "sync-missing-sets")
    assert any(line["message"].startswith("skipped:") for line in lines)


def test_every_line_of_a_failed_run_carries_its_job_and_run_id(env, tmp_path):
    (tmp_path / "data" / "sets").mkdir(parents=True)
    (tmp_path / "data" / "cards" / "en").mkdir(parents=True)
    (tmp_path / "data" / "sets" / "en.json").write_text("{not json")  # the sync fails in its run
    env["TCGJOBS_DATA_SOURCE"] = str(tmp_path / "data")
    result = run_tcgjobs("run", "sync-missing-sets", "--json")
    assert result.returncode == ExitCode.FAILED, result.stderr
    lines = assert_every_line_is_the_runs(result.stderr, result.stdout, "sync-missing-sets")
    assert any(line["level"] == "error" for line in lines)
