"""A run stopped after it committed says what it committed, never that its work was rolled back.

Real ``tcgjobs`` processes receive real signals at exact moments: ``tests/support/pause.py`` holds
the process just before a named call (the verification after a replication's COMMIT, the record
of the next synced set) until the run's cancel scope has fired, without timing anything. Each
test asserts the exit code, the ledger row, the output, the log and the data together.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import ROOT, last_run, run_tcgjobs
from tests.support.pause import PAUSED
from tests.support.replication import a_card_row, a_set_row, execute, write_card_db

PAUSE = str(ROOT / "tests" / "support" / "pause.py")


def run_paused(target: str, nth: int, signum: signal.Signals, *args: str) -> tuple[int, str, str]:
    """Run ``tcgjobs ARGS`` paused before the ``nth`` call of ``target``; send ``signum`` there."""
    process = subprocess.Popen([sys.executable, PAUSE, target, str(nth), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if line.startswith(PAUSED):
            process.send_signal(signum)
            break
    out, err = process.communicate(timeout=60)
    return process.returncode, out, "".join(lines) + err



def log_messages(stderr: str) -> list[str]:
    return [json.loads(line)["message"] for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.postgres
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, ExitCode.INTERRUPTED_SIGTERM),
                                              (signal.SIGINT, ExitCode.INTERRUPTED_SIGINT)])
def test_a_signal_after_the_replication_committed_says_committed_not_rolled_back(
        env, postgres_url, signum, code):
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    database = Path(env["DATABASE_PATH"])
    write_card_db(database, [a_set_row("s1")], [a_card_row("s1", "1"), a_card_row("s1", "2")])

    status, out, err = run_paused("tcgjobs.services.replication.verification:verify", 1, signum,
                                  "run", "replicate-to-primary", "--ignore-deps", "--json")

    assert status == code, err
    run = json.loads(out)["run"]
    assert (run["status"], run["exit_code"]) == ("interrupted", int(code))
    assert run["committed"].startswith("replication committed (sets +1 ~0 =0 -0; cards +2 ~0 =0 -0)")
    assert "verification not finished, the next run verifies it" in run["committed"]
    assert run["summary"] == f"committed before the stop: {run['committed']}"
    assert run["metrics"]["cards_inserted"] == 2
    row = last_run("replicate-to-primary")
    assert (row["status"], row["exit_code"]) == ("interrupted", int(code))
    assert row["error"] == f"received {signum.name}; committed before the stop: {run['committed']}"
    messages = log_messages(err)
    assert any("committed before the stop: replication committed" in m for m in messages), messages
    assert not any("rolled back" in text for text in [*messages, out, row["error"]]), messages
    assert sorted(r[0] for r in execute(postgres_url, "SELECT id FROM pokemon_cards")) == ["s1-1", "s1-2"]

    again = run_tcgjobs("run", "replicate-to-primary", "--ignore-deps", "--json")
    assert again.returncode == 0, again.stderr
    verified = json.loads(again.stdout)["run"]
    assert verified["metrics"]["verified"] == 1 and verified["metrics"]["cards_unchanged"] == 2


def test_a_sync_stopped_between_sets_says_which_sets_it_committed_each_whole(env):
    assert run_tcgjobs("run", "sync-missing-sets").returncode == 0

    # Paused before the third set's record: three sets are committed when SIGTERM arrives.
    status, out, err = run_paused("tcgjobs.context:JobContext.committed", 3, signal.SIGTERM,
                                  "run", "sync-missing-cards")

    assert status == ExitCode.INTERRUPTED_SIGTERM, err
    committed = ("3 of 5 sets synced, each whole (15 cards added, 0 updated); the 2 sets not "
                 "reached are as they were")
    assert "Outcome:  interrupted (exit 143)" in out
    assert f"Committed: {committed}" in out and "rolled back" not in out + err
    assert any(f"committed before the stop: {committed}" in m for m in log_messages(err))
    row = last_run("sync-missing-cards")
    assert (row["status"], row["exit_code"]) == ("interrupted", 143)
    assert row["error"] == f"received SIGTERM; committed before the stop: {committed}"
    assert json.loads(row["metrics"])["sets_processed"] == 3
    with sqlite3.connect(env["DATABASE_PATH"]) as connection:
        per_set = dict(connection.execute("SELECT set_id, count(*) FROM pokemon_cards GROUP BY set_id"))
    assert len(per_set) == 3 and sum(per_set.values()) == 15, per_set
