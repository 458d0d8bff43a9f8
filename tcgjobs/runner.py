"""``run_job``: everything around one run of one job.

Order of events: load the job's configuration → refuse a disabled job → check
dependencies → take the job's lock and the locks of every resource it writes → record earlier
``running`` rows of the job as abandoned → write the ledger row → run the job under a deadline,
with SIGTERM/SIGINT turned into a graceful cancel and a heartbeat thread → complete the row →
tell the observers (alerts, metrics, pings), whose failures are only warnings.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from loguru import logger

from tcgjobs import __version__
from tcgjobs.cancel import CancelScope, deadline, signals_cancel
from tcgjobs.config import Settings
from tcgjobs.context import JobContext
from tcgjobs.db.state import Ledger, RunStatus, StateView
from tcgjobs.errors import Cancelled, DependencyNotMet, ExitCode, JobDisabled, Skipped, TcgjobsError
from tcgjobs.logging import redact
from tcgjobs.registry import Job, JobResult, get_job
from tcgjobs.reporting import NullReporter, Reporter
from tcgjobs.schedule import previous_due
from tcgjobs.services.locks import hold, lock_dir_for, resource_lock
from tcgjobs.times import utcnow

TRIGGERS = ("manual", "schedule")


def stale_after(settings: Settings) -> timedelta:
    """How old a heartbeat may get before its run counts as abandoned."""
    return timedelta(seconds=max(30.0, 6 * settings.heartbeat_seconds))


@dataclass
class RunRequest:
    job: Job
    settings: Settings
    options: Mapping[str, Any] = field(default_factory=dict)  # CLI values; None means "not given"
    dry_run: bool = False
    timeout: float | None = None
    ignore_deps: bool = False
    trigger: str = "manual"
    reporter: Reporter = field(default_factory=NullReporter)


@dataclass
class RunOutcome:
    run_id: str
    job: str
    status: RunStatus
    exit_code: ExitCode
    started_at: datetime
    finished_at: datetime
    duration_s: float
    trigger: str
    dry_run: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None
    details: Any = None
    consecutive_failures: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "job": self.job, "status": self.status.value,
            "exit_code": int(self.exit_code), "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(), "duration_s": round(self.duration_s, 3),
            "trigger": self.trigger, "dry_run": self.dry_run, "summary": self.summary,
            "metrics": self.metrics, "error": self.error, "details": self.details,
        }


class RunObserver(Protocol):
    """Told about each run. Exceptions are logged as warnings and never change the outcome."""

    def on_start(self, job: Job, run_id: str, trigger: str) -> None: ...

    def on_finish(self, outcome: RunOutcome, history: StateView) -> None: ...


def unmet_dependencies(job: Job, settings: Settings, history: StateView, now: datetime) -> list[str]:
    """One reason per dependency that has not succeeded since its own most recent scheduled time.

    A disabled dependency is not waited for.
    """
    reasons = []
    for name in job.depends_on:
        dependency = get_job(name)
        config = settings.job(dependency)
        if not config.enabled:
            continue
        due = previous_due(config.schedule, settings.timezone, now)
        if history.last_success(name, since=due) is None:
            last = history.last_success(name)
            when = last.started_at.strftime("%Y-%m-%d %H:%M UTC") if last else "never"
            reasons.append(f"{name} has not succeeded since it was last due at "
                           f"{due:%Y-%m-%d %H:%M} UTC (last success: {when})")
    return reasons


@contextmanager
def _heartbeat(ledger: Ledger, run_id: str, interval: float) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    ledger.heartbeat(run_id, utcnow())
                except Exception as exc:  # noqa: BLE001 - a missed beat is not worth failing the job for
                    logger.warning("heartbeat not recorded: {}", exc)
        finally:
            ledger.state.close()  # this thread's own connection (peewee connects per thread)

    thread = threading.Thread(target=beat, name="tcgjobs-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, TcgjobsError):
        text = f"{type(exc).__name__}: {text}"
    return redact(text)


def _execute(job: Job, context: JobContext) -> tuple[RunStatus, ExitCode, JobResult, str | None]:
    """Run the job body and classify what happened."""
    try:
        context.check_cancelled()
        result = job.run(context)
    except BaseException as exc:
        if context.cancel.cancelled or isinstance(exc, Cancelled):
            reason = context.cancel.reason or str(exc)
            code = context.cancel.exit_code or (exc.exit_code if isinstance(exc, Cancelled) else ExitCode.FAILED)
            status = RunStatus.TIMEOUT if code is ExitCode.TIMEOUT else RunStatus.INTERRUPTED
            logger.error("{}: stopped, uncommitted work rolled back ({})", status.value, reason)
            return status, code, JobResult(), reason
        if isinstance(exc, TcgjobsError):
            logger.error("failed: {}", _error_text(exc))
            return RunStatus.FAILED, exc.exit_code, JobResult(), _error_text(exc)
        if not isinstance(exc, Exception):
            raise
        logger.error("failed with an unexpected error: {}\n{}", _error_text(exc),
                     redact("".join(traceback.format_exception(exc))))
        return RunStatus.FAILED, ExitCode.FAILED, JobResult(), _error_text(exc)
    if result.exit_code is ExitCode.OK:
        status = RunStatus.DRY_RUN if context.dry_run else RunStatus.SUCCEEDED
        return status, ExitCode.OK, result, None
    logger.error("failed: {}", result.error)
    return RunStatus.FAILED, result.exit_code, result, redact(result.error or "failed")


def run_job(request: RunRequest, observers: Sequence[RunObserver] = ()) -> RunOutcome:
    """Run one job once and record it. Never raises for the job's own failures.

    Raises ConfigError when the state database cannot be opened (nothing can be recorded then).
    """
    settings, job = request.settings, request.job
    config = settings.job(job)
    options = {**config.options, **{k: v for k, v in request.options.items() if v is not None}}
    timeout = request.timeout if request.timeout is not None else config.timeout
    ledger = Ledger.open(settings.state_path, busy_timeout_ms=settings.busy_timeout_ms,
                         stale_after=stale_after(settings))
    run_id = uuid.uuid4().hex
    started = utcnow()
    clock = time.monotonic()
    base = {"run_id": run_id, "job": job.name, "trigger": request.trigger,
            "dry_run": request.dry_run, "started_at": started, "version": __version__}
    try:
        with logger.contextualize(job=job.name, run_id=run_id):
            try:
                if not config.enabled:
                    raise JobDisabled(f"{job.name} is disabled ({job.env_prefix}ENABLED=false)")
                if not request.ignore_deps:
                    reasons = unmet_dependencies(job, settings, ledger.view, started)
                    if reasons:
                        raise DependencyNotMet("; ".join(reasons) + " (use --ignore-deps to run anyway)")
                names = [f"job-{job.name}"] + [resource_lock(r) for r in job.writes]
                holder = {"job": job.name, "run_id": run_id, "since": started.isoformat(timespec="seconds")}
                with hold(lock_dir_for(settings.state_path), names, holder):
                    return _locked_run(request, ledger, base, options, timeout, observers, clock)
            except Skipped as exc:
                logger.warning("skipped: {}", exc)
                finished = utcnow()
                ledger.insert(**base, status=RunStatus.SKIPPED.value, finished_at=finished,
                              exit_code=int(exc.exit_code), duration_s=0.0, error=redact(str(exc)))
                return RunOutcome(run_id, job.name, RunStatus.SKIPPED, exc.exit_code, started, finished,
                                  time.monotonic() - clock, request.trigger, request.dry_run,
                                  error=redact(str(exc)))
    finally:
        ledger.close()


def _locked_run(request: RunRequest, ledger: Ledger, base: dict[str, Any], options: dict[str, Any],
                timeout: float, observers: Sequence[RunObserver], clock: float) -> RunOutcome:
    job, settings = request.job, request.settings
    started = base["started_at"]
    for run_id in ledger.mark_abandoned(job.name, started):
        logger.warning("earlier run {} of {} was abandoned (its process is gone)", run_id[:8], job.name)
    ledger.insert(**base, status=RunStatus.RUNNING.value, heartbeat_at=started,
                  deadline_at=started + timedelta(seconds=timeout))
    source = "dry run" if request.dry_run else request.trigger
    logger.info("starting {} ({}, deadline {:g}s)", job.name, source, timeout)
    _notify(observers, "on_start", job, base["run_id"], request.trigger)
    scope = CancelScope()
    context = JobContext(job=job, run_id=base["run_id"], settings=settings, config=settings.job(job),
                         options=options, dry_run=request.dry_run, trigger=request.trigger,
                         started_at=started, cancel=scope, history=ledger.view,
                         reporter=request.reporter, _ledger=ledger)
    try:
        with _heartbeat(ledger, base["run_id"], settings.heartbeat_seconds), \
                deadline(scope, timeout), signals_cancel(scope):
            status, code, result, error = _execute(job, context)
    finally:
        context.close()
    finished = utcnow()
    duration = time.monotonic() - clock
    ledger.finish(base["run_id"], status=status, exit_code=int(code), finished_at=finished,
                  duration_s=duration, metrics=result.metrics, error=error)
    logger.info("{} {} in {:.2f}s (exit {})", job.name, status.value, duration, int(code))
    outcome = RunOutcome(base["run_id"], job.name, status, code, started, finished, duration,
                         request.trigger, request.dry_run, dict(result.metrics), result.summary,
                         error, result.details,
                         consecutive_failures=ledger.view.consecutive_failures(job.name, finished))
    _notify(observers, "on_finish", outcome, ledger.view)
    return outcome


def _notify(observers: Sequence[RunObserver], method: str, *args: Any) -> None:
    for observer in observers:
        try:
            getattr(observer, method)(*args)
        except Exception as exc:  # noqa: BLE001 - borgmatic's rule: monitoring never changes the job's result
            logger.warning("{} {} failed: {}", type(observer).__name__, method, redact(str(exc)))
