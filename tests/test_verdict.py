"""Whenever a run's cancel scope fired, its outcome is the cancel's, whatever the job returned.

Proven for every registered job without timing anything: the scope is fired (as the deadline would
fire it) from inside one of the job's own SQLite statements, through a progress handler armed when
that statement starts, or at the job's first check when the moment that matters has no statement
on a database the run watches. The statement is really interrupted; what the job makes of that
(a "finding", a critical check, an exception) must never become the outcome.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.db.state import HealthStore, RunStatus, open_view
from tcgjobs.errors import ExitCode
from tcgjobs.registry import all_jobs, get_job
from tcgjobs.runner import RunRequest, run_job, stale_after
from tests.conftest import make_settings
from tests.offsite.conftest import bucket, moto_server, s3  # noqa: F401 (fixtures: upload-backups' store)

REASON = "deadline of 600s exceeded"

#: Per job: the SQL inside which the scope fires (None: the job's first check), and why there.
FIRE_IN: dict[str, str | None] = {
    "backup-database": None,  # the snapshot is taken through the backup API, not a statement
    "rotate-backups": None,  # it reads files, not a database
    "upload-backups": None,  # it talks to the store; it checks before each backup it sends
    "sync-missing-sets": "INSERT INTO pokemon_card_sets",
    "sync-missing-cards": "INSERT INTO pokemon_cards",
    "replicate-to-primary": "FROM pokemon_card_sets",  # the SQLite snapshot read, COPY running
    "cleanup-stale-data": "PRAGMA quick_check",  # was "found damage ... interrupted"
    "validate-data-integrity": "FROM pokemon_cards AS i",  # coverage: the database-only anti-join
    "database-health-check": "PRAGMA quick_check",  # was a critical quick-check, exit 3
}


class FireInside:
    """Fires the run's scope from inside the first statement containing ``sql`` on a database
    the run watches, or (``sql`` None) at the job's first ``check_cancelled``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, sql: str | None) -> None:
        self.sql = sql
        self.fired_in: str | None = None
        watch, check = JobContext.watch_sqlite, JobContext.check_cancelled
        injector = self

        def watched(ctx: JobContext, db: Any) -> None:
            watch(ctx, db)
            connection, armed = db.connection(), []

            def trace(statement: str) -> None:
                if sql is not None and sql.lower() in statement.lower():
                    armed.append(statement)

            def progress() -> int:
                if armed and injector.fired_in is None:
                    injector.fired_in = armed[0]
                    ctx.cancel.cancel(REASON, ExitCode.TIMEOUT)
                    # The scope's interrupt can miss a statement that is nearly done (SQLite
                    # then clears it); this one is stopped for sure, as a long one would be.
                    return 1
                return 0

            connection.set_trace_callback(trace)
            connection.set_progress_handler(progress, 1)

        def checked(ctx: JobContext) -> None:
            if sql is None and injector.fired_in is None:
                injector.fired_in = "the job's first check"
                ctx.cancel.cancel(REASON, ExitCode.TIMEOUT)
            check(ctx)

        monkeypatch.setattr(JobContext, "watch_sqlite", watched)
        monkeypatch.setattr(JobContext, "check_cancelled", checked)


def run(name: str) -> Any:
    return run_job(RunRequest(job=get_job(name), settings=make_settings(), ignore_deps=True))


def card_rows(path: Path) -> str:
    """A digest of every set and card row (empty when there is no database)."""
    digest = hashlib.sha256()
    if path.exists():
        with sqlite3.connect(path) as connection:
            for table in ("pokemon_card_sets", "pokemon_cards"):
                for row in connection.execute(f"SELECT * FROM {table} ORDER BY id"):
                    digest.update(repr(row).encode())
        connection.close()
    return digest.hexdigest()


def prepare(name: str, request: pytest.FixtureRequest, env: dict[str, str]) -> None:
    """What each job needs to reach the moment: the sample synced, a backup, a primary."""
    if name == "sync-missing-sets":
        return
    assert run("sync-missing-sets").exit_code == ExitCode.OK
    if name == "sync-missing-cards":
        return
    assert run("sync-missing-cards").exit_code == ExitCode.OK
    if name in ("rotate-backups", "database-health-check", "upload-backups"):
        assert run("backup-database").exit_code == ExitCode.OK
    if name == "upload-backups":
        request.getfixturevalue("bucket")  # moto's S3 server, TCGJOBS_OFFSITE_* pointing at it
    if name == "replicate-to-primary":
        env["TCGJOBS_POSTGRES_URL"] = request.getfixturevalue("postgres_url")


def test_every_registered_job_is_proven():
    assert set(FIRE_IN) == set(all_jobs())


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.postgres] if name == "replicate-to-primary" else [])
    for name in FIRE_IN])
def test_a_cancel_inside_the_job_is_the_outcome_whatever_the_job_returned(
        name, request, env, monkeypatch):
    prepare(name, request, env)
    database = Path(env["DATABASE_PATH"])
    rows_before = card_rows(database)
    backups_before = sorted(Path(env["BACKUP_DIR"]).glob("*")) if name != "backup-database" else []
    injector = FireInside(monkeypatch, FIRE_IN[name])
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="DEBUG")
    try:
        outcome = run(name)
    finally:
        logger.remove(sink)

    assert injector.fired_in is not None and (FIRE_IN[name] or "check") in injector.fired_in
    assert (outcome.status, outcome.exit_code) == (RunStatus.TIMEOUT, ExitCode.TIMEOUT), outcome.error
    assert outcome.error == f"{REASON}; uncommitted work was rolled back"
    assert outcome.summary == "stopped before finishing; uncommitted work was rolled back"
    settings = make_settings()
    view = open_view(settings.state_path, busy_timeout_ms=1000, stale_after=stale_after(settings))
    record = view.get(outcome.run_id)
    assert (record.status, record.exit_code, record.error) == (RunStatus.TIMEOUT, 124, outcome.error)
    shown = [m for m in messages if "not reported (cut short by the cancel)" not in m]
    for word in ("damage", "could not be read", "critical", "failed"):
        assert not any(word in message for message in shown), (word, shown)
    assert card_rows(database) == rows_before, "nothing was committed"
    if name != "backup-database":
        assert sorted(Path(env["BACKUP_DIR"]).glob("*")) == backups_before
    if name == "database-health-check":
        assert HealthStore(view.state).current() == {}, "a check cut short is not recorded"
    view.close()
