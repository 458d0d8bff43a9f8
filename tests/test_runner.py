"""The runner around every job: ledger rows, outcomes, dependencies, locks, deadline, observers.

These tests register small real jobs (they write real SQLite files) next to the eight; the CLI and
subprocess tests in tests/cli exercise the real jobs.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tcgjobs.db.state import RunStatus, open_view
from tcgjobs.errors import ExitCode, JobFailed, ServiceUnavailable
from tcgjobs.registry import REGISTRY, Job, JobResult, Resource
from tcgjobs.runner import RunRequest, run_job, stale_after
from tcgjobs.services.locks import hold, lock_dir_for
from tests.conftest import make_settings


@pytest.fixture
def temp_job(monkeypatch):
    def make(name: str, run, **attributes) -> Job:
        attributes.setdefault("schedule", "0 2 * * *")
        attributes.setdefault("timeout", 30)
        job = Job(name=name, help="a test job", run=run, **attributes)
        monkeypatch.setitem(REGISTRY, name, job)
        return job

    return make


def run(job: Job, **request):
    settings = request.pop("settings", None) or make_settings()
    observers = request.pop("observers", ())
    return run_job(RunRequest(job=job, settings=settings, **request), observers=observers)


def ledger(settings=None):
    settings = settings or make_settings()
    return open_view(settings.state_path, busy_timeout_ms=1000, stale_after=stale_after(settings))


def test_a_successful_run_is_recorded_with_its_metrics(temp_job):
    job = temp_job("t-ok", lambda ctx: JobResult({"rows": 3}, summary="did it"))
    outcome = run(job)
    assert (outcome.status, outcome.exit_code, outcome.metrics) == (RunStatus.SUCCEEDED, ExitCode.OK, {"rows": 3})
    record = ledger().get(outcome.run_id)
    assert record.status is RunStatus.SUCCEEDED and record.exit_code == 0
    assert record.metrics == {"rows": 3} and record.trigger == "manual" and not record.dry_run
    assert record.finished_at >= record.started_at and record.pid > 0 and record.host
    assert record.summary == "did it"


def test_a_failed_result_is_recorded_with_exit_1_and_its_error(temp_job):
    outcome = run(temp_job("t-fail", lambda ctx: JobResult.failed("2 sets rejected", metrics={"rejected": 2})))
    assert (outcome.status, outcome.exit_code) == (RunStatus.FAILED, ExitCode.FAILED)
    record = ledger().get(outcome.run_id)
    assert record.error == "2 sets rejected" and record.metrics == {"rejected": 2} and record.exit_code == 1


def test_problems_found_exit_3(temp_job):
    outcome = run(temp_job("t-problems", lambda ctx: JobResult.problems("1 critical check")))
    assert (outcome.status, outcome.exit_code) == (RunStatus.FAILED, ExitCode.PROBLEMS)


@pytest.mark.parametrize(("error", "code"), [
    (JobFailed("no"), ExitCode.FAILED), (ServiceUnavailable("pg down"), ExitCode.UNAVAILABLE),
    (ValueError("bug"), ExitCode.FAILED)])
def test_exceptions_map_to_their_exit_codes(temp_job, error, code):
    def boom(ctx):
        raise error

    outcome = run(temp_job("t-raise", boom))
    assert outcome.exit_code == code and outcome.status is RunStatus.FAILED
    assert str(error) in ledger().get(outcome.run_id).error


def test_a_declared_job_without_an_implementation_module_fails_with_exit_1_and_is_recorded(monkeypatch):
    job = Job(name="t-nowhere", help="declared only", schedule="0 2 * * *", timeout=30)
    monkeypatch.setitem(REGISTRY, job.name, job)
    outcome = run(job)
    assert (outcome.status, outcome.exit_code) == (RunStatus.FAILED, ExitCode.FAILED)
    assert "No module named 'tcgjobs.jobs.t_nowhere'" in outcome.error
    assert ledger().get(outcome.run_id).status is RunStatus.FAILED


def test_a_dry_run_is_recorded_as_such_and_never_counts_as_a_success(temp_job):
    dependency = temp_job("t-dep", lambda ctx: JobResult({"dry": int(ctx.dry_run)}))
    dependant = temp_job("t-after", lambda ctx: JobResult(), depends_on=("t-dep",))
    outcome = run(dependency, dry_run=True)
    assert outcome.status is RunStatus.DRY_RUN and outcome.metrics == {"dry": 1}
    assert ledger().last_success("t-dep") is None
    assert run(dependant).exit_code == ExitCode.SKIPPED


def test_unmet_dependency_is_skipped_with_the_reason_and_exit_75(temp_job):
    temp_job("t-dep", lambda ctx: JobResult())
    calls = []
    dependant = temp_job("t-after", lambda ctx: calls.append(1) or JobResult(), depends_on=("t-dep",))
    outcome = run(dependant)
    assert (outcome.status, outcome.exit_code) == (RunStatus.SKIPPED, ExitCode.SKIPPED)
    assert "t-dep has not succeeded since it was last due" in outcome.error and "--ignore-deps" in outcome.error
    assert calls == []
    assert ledger().get(outcome.run_id).status is RunStatus.SKIPPED


def test_a_dependency_that_succeeded_since_its_scheduled_time_is_met(temp_job):
    dependency = temp_job("t-dep", lambda ctx: JobResult(), schedule="* * * * *")
    dependant = temp_job("t-after", lambda ctx: JobResult(), depends_on=("t-dep",))
    assert run(dependency).exit_code == ExitCode.OK
    assert run(dependant).exit_code == ExitCode.OK


def test_ignore_deps_runs_anyway(temp_job):
    temp_job("t-dep", lambda ctx: JobResult())
    dependant = temp_job("t-after", lambda ctx: JobResult(), depends_on=("t-dep",))
    assert run(dependant, ignore_deps=True).exit_code == ExitCode.OK


def test_a_disabled_dependency_is_not_waited_for(temp_job, env):
    temp_job("t-dep", lambda ctx: JobResult())
    dependant = temp_job("t-after", lambda ctx: JobResult(), depends_on=("t-dep",))
    env["TCGJOBS_T_DEP_ENABLED"] = "false"
    assert run(dependant).exit_code == ExitCode.OK


def test_a_disabled_job_is_skipped(temp_job, env):
    job = temp_job("t-off", lambda ctx: JobResult())
    env["TCGJOBS_T_OFF_ENABLED"] = "false"
    outcome = run(job)
    assert outcome.exit_code == ExitCode.SKIPPED and "TCGJOBS_T_OFF_ENABLED=false" in outcome.error


def test_a_held_job_lock_skips_the_run_and_names_the_holder(temp_job):
    job = temp_job("t-locked", lambda ctx: JobResult())
    settings = make_settings()
    with hold(lock_dir_for(settings.state_path), ["job-t-locked"],
              {"job": "t-locked", "run_id": "abcdef1234", "since": "2026-11-28T12:00:00"}):
        outcome = run(job, settings=settings)
    assert (outcome.status, outcome.exit_code) == (RunStatus.SKIPPED, ExitCode.SKIPPED)
    assert "t-locked run abcdef12" in outcome.error and "pid" in outcome.error
    assert run(job, settings=settings).exit_code == ExitCode.OK, "the lock is free again"


def test_jobs_writing_the_same_resource_exclude_each_other(temp_job):
    seen = {}

    def inner(ctx):
        seen["inner"] = run(temp_job("t-writer-b", lambda c: JobResult(), writes=frozenset({Resource.CARD_DB})))
        return JobResult()

    outer = temp_job("t-writer-a", inner, writes=frozenset({Resource.CARD_DB}))
    assert run(outer).exit_code == ExitCode.OK
    assert seen["inner"].exit_code == ExitCode.SKIPPED
    assert "resource-card-database" in seen["inner"].error and "t-writer-a" in seen["inner"].error


def test_jobs_writing_different_resources_run_together(temp_job):
    seen = {}

    def inner(ctx):
        seen["inner"] = run(temp_job("t-backup", lambda c: JobResult(), writes=frozenset({Resource.BACKUP_DIR})))
        return JobResult()

    assert run(temp_job("t-sync", inner, writes=frozenset({Resource.CARD_DB}))).exit_code == ExitCode.OK
    assert seen["inner"].exit_code == ExitCode.OK


def test_the_deadline_interrupts_a_long_statement_and_rolls_back(temp_job, tmp_path):
    path = tmp_path / "work.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.execute("INSERT INTO t VALUES (1)")
    setup.commit()
    setup.close()

    def slow(ctx):
        from tcgjobs.db.sqlite import open_sqlite

        db = open_sqlite(path)
        ctx.watch_sqlite(db)
        with db.atomic():
            db.execute_sql("INSERT INTO t VALUES (2)")
            # a statement that runs for minutes unless interrupted
            db.execute_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                           "SELECT count(*) FROM n WHERE i < 0")
        return JobResult()

    started = time.monotonic()
    outcome = run(temp_job("t-slow", slow), timeout=0.5)
    assert time.monotonic() - started < 20
    assert (outcome.status, outcome.exit_code) == (RunStatus.TIMEOUT, ExitCode.TIMEOUT)
    assert "deadline of 0.5s exceeded" in outcome.error
    check = sqlite3.connect(path)
    assert check.execute("SELECT x FROM t").fetchall() == [(1,)], "the insert was rolled back"
    assert ledger().get(outcome.run_id).status is RunStatus.TIMEOUT


def test_the_timeout_setting_and_flag_set_the_deadline(temp_job, env):
    def wait(ctx):
        while True:
            ctx.check_cancelled()
            time.sleep(0.02)

    job = temp_job("t-wait", wait, timeout=1000)
    env["TCGJOBS_T_WAIT_TIMEOUT"] = "1"
    assert run(job).exit_code == ExitCode.TIMEOUT
    del env["TCGJOBS_T_WAIT_TIMEOUT"]
    assert run(job, timeout=0.2).exit_code == ExitCode.TIMEOUT


def test_an_observer_failure_never_changes_the_outcome(temp_job):
    class Broken:
        def on_start(self, *args):
            raise RuntimeError("monitor down")

        def on_finish(self, *args):
            raise RuntimeError("monitor down")

    outcome = run(temp_job("t-observed", lambda ctx: JobResult()), observers=[Broken()])
    assert outcome.exit_code == ExitCode.OK


def test_options_come_from_flags_then_settings_then_defaults(temp_job, env):
    from tcgjobs import parsers
    from tcgjobs.registry import JobOption

    job = temp_job("t-opts", lambda ctx: JobResult({"n": ctx.options["n"]}),
                   options=(JobOption("n", int, 5, "a number", parsers.int_between(0)),))
    assert run(job).metrics == {"n": 5}
    env["TCGJOBS_T_OPTS_N"] = "7"
    assert run(job).metrics == {"n": 7}
    assert run(job, options={"n": 9}).metrics == {"n": 9}


def test_consecutive_failures_are_counted_until_a_success(temp_job):
    state = {"fail": True}
    job = temp_job("t-flaky", lambda ctx: JobResult.failed("x") if state["fail"] else JobResult())
    assert run(job).consecutive_failures == 1
    assert run(job).consecutive_failures == 2
    state["fail"] = False
    assert run(job).consecutive_failures == 0


def test_the_state_database_is_created_beside_the_card_database(temp_job, env):
    run(temp_job("t-ok", lambda ctx: JobResult()))
    assert (Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3").exists()


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_heartbeat_refreshes_the_running_row_and_its_thread_ends_cleanly(temp_job):
    beats = []

    def slow(ctx):
        time.sleep(1.3)
        beats.append(ctx.history.get(ctx.run_id).heartbeat_at)
        return JobResult()

    job = temp_job("t-slow", slow)
    outcome = run(job, settings=make_settings().with_overrides(heartbeat_seconds=0.5))
    assert outcome.status is RunStatus.SUCCEEDED
    assert beats[0] > outcome.started_at


NEEDS_CARD_DATABASE = ("backup-database", "replicate-to-primary", "cleanup-stale-data",
                       "validate-data-integrity")


def test_the_jobs_that_need_an_existing_card_database_say_so():
    from tcgjobs.registry import all_jobs

    assert {name for name, job in all_jobs().items() if job.needs_card_database} == set(NEEDS_CARD_DATABASE)


@pytest.mark.parametrize("name", NEEDS_CARD_DATABASE)
def test_a_misspelt_database_path_creates_nothing_and_exits_78(cli, env, tmp_path, name):
    from tests.conftest import invoke

    env["DATABASE_PATH"] = str(tmp_path / "datbase" / "live" / "pokemon-data.sqlite3.db")
    result = invoke(cli, "run", name)
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert f"card database {env['DATABASE_PATH']} does not exist (check DATABASE_PATH" in result.stderr
    assert not (tmp_path / "datbase").exists(), "no directory, no ledger, no lock files"


def test_a_refused_run_is_recorded_in_the_ledger_that_exists_and_creates_nothing(cli, env, tmp_path,
                                                                                 card_db_path):
    from tests.conftest import invoke

    assert invoke(cli, "run", "cleanup-stale-data").exit_code == ExitCode.OK
    env["TCGJOBS_STATE_PATH"] = str(make_settings().state_path)
    env["DATABASE_PATH"] = str(tmp_path / "datbase" / "pokemon-data.sqlite3.db")
    result = invoke(cli, "run", "cleanup-stale-data", "--json")
    assert result.exit_code == ExitCode.CONFIG, result.output
    record = ledger().runs("cleanup-stale-data", limit=1)[0]
    assert (record.status, record.exit_code) == (RunStatus.FAILED, 78)
    assert "does not exist (check DATABASE_PATH" in record.error
    assert not (tmp_path / "datbase").exists()


def test_the_sync_jobs_still_create_a_missing_database_and_its_directories(cli, env, tmp_path):
    from tests.conftest import invoke

    env["DATABASE_PATH"] = str(tmp_path / "new" / "tree" / "pokemon-data.sqlite3.db")
    assert invoke(cli, "run", "sync-missing-sets").exit_code == ExitCode.OK
    assert Path(env["DATABASE_PATH"]).is_file()
