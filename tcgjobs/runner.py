"""``run_job``: everything around one run of one job.

Order of events: route SIGTERM/SIGINT to the run's cancel scope → check what can be checked
before anything is opened (a missing card database) → open the ledger → refuse a disabled job →
check dependencies → take the job's lock and the locks of every resource it writes → record
earlier ``running`` rows of the job as abandoned → start the deadline → write the ledger row →
run the job with a heartbeat thread → seal the scope (whether it fired decides the outcome, see
:mod:`tcgjobs.verdict`) → complete the row → tell the observers (alerts, metrics, pings), whose
failures are only warnings and which a signal only cuts short.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from loguru import logger

from tcgjobs import __version__
from tcgjobs.cancel import CancelScope, SignalRouter
from tcgjobs.config import Settings
from tcgjobs.context import JobContext
from tcgjobs.db.cards import missing_card_database
from tcgjobs.db.state import Ledger, RunStatus, StateView
from tcgjobs.errors import ConfigError, DependencyNotMet, ExitCode, JobDisabled, Skipped
from tcgjobs.logging import redact, run_context
from tcgjobs.registry import Job, get_job
from tcgjobs.reporting import NullReporter, Reporter
from tcgjobs.schedule import previous_due
from tcgjobs.services.locks import hold, lock_dir_for, resource_lock
from tcgjobs.times import utcnow
from tcgjobs.verdict import Verdict, execute, judge

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
    #: What a run that stopped or failed had committed (see ``JobContext.committed``).
    committed: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "job": self.job, "status": self.status.value,
            "exit_code": int(self.exit_code), "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(), "duration_s": round(self.duration_s, 3),
            "trigger": self.trigger, "dry_run": self.dry_run, "summary": self.summary,
            "metrics": self.metrics, "error": self.error, "committed": self.committed,
            "details": self.details,
        }


class RunObserver(Protocol):
    """Told about each run. Exceptions are logged as warnings and never change the outcome.

    ``cancel`` bounds what the observer sends: at the start it is the run's scope (its deadline
    and signals), at the finish the notifications' scope, which a signal fires to cut them short.
    """

    def on_start(self, job: Job, run_id: str, trigger: str, cancel: CancelScope) -> None: ...

    def on_finish(self, outcome: RunOutcome, history: StateView, cancel: CancelScope) -> None: ...


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


def preflight(job: Job, settings: Settings) -> list[str]:
    """Configuration problems of this run that can be found before anything is opened: a job
    that works on an existing card database, run with a DATABASE_PATH that is not there."""
    problems = []
    if job.needs_card_database:
        missing = missing_card_database(settings.database_path)
        if missing:
            problems.append(missing)
    return problems


def _open_ledger(settings: Settings, refused: list[str]) -> Ledger:
    """The ledger. A run that failed its configuration (``refused``) is recorded only in a
    ledger that exists already: a misspelt path must not leave a directory tree and a new state
    database behind. Raises ConfigError (those problems, or the state database's)."""
    if refused and not settings.state_path.exists():
        raise ConfigError(refused)
    return Ledger.open(settings.state_path, busy_timeout_ms=settings.busy_timeout_ms,
                       stale_after=stale_after(settings))


def run_job(request: RunRequest, observers: Sequence[RunObserver] = (),
            signals: SignalRouter | None = None) -> RunOutcome:
    """Run one job once and record it. Never raises for the job's own failures.

    ``signals`` is the process's router (the CLI installs one that stays until the process
    exits, so that a signal after the run cannot change its exit code); without one, a router
    is installed for this call when this is the main thread. Raises ConfigError when the state
    database cannot be opened, or when the run fails its configuration and no ledger exists.
    """
    labels = {"job": request.job.name, "run_id": uuid.uuid4().hex}
    scope = CancelScope(logger.bind(**labels))
    router = signals or SignalRouter.installed()
    if router is not None:
        router.route(scope)  # a signal from now on cancels this run, even before the job starts
    ledger: Ledger | None = None
    try:
        refused = preflight(request.job, request.settings)
        ledger = _open_ledger(request.settings, refused)
        run = _Run(request, ledger, scope, router, refused, labels["run_id"])
        with run_context(**labels):  # also reaches the lines of the run's other threads
            try:
                return run.locked(observers)
            except Skipped as exc:
                return run.skipped(exc)
    finally:
        if ledger is not None:
            ledger.close()
        if signals is None and router is not None:
            router.uninstall()


class _Run:
    """One run of one job, from its dependencies to its observers."""

    def __init__(self, request: RunRequest, ledger: Ledger, scope: CancelScope,
                 router: SignalRouter | None, refused: list[str], run_id: str) -> None:
        self.request, self.job, self.settings = request, request.job, request.settings
        self.ledger, self.scope, self.router, self.refused = ledger, scope, router, refused
        self.run_id = run_id
        self.started = utcnow()
        self.clock = time.monotonic()
        self.base = {"run_id": self.run_id, "job": self.job.name, "trigger": request.trigger,
                     "dry_run": request.dry_run, "started_at": self.started, "version": __version__}

    def locked(self, observers: Sequence[RunObserver]) -> RunOutcome:
        """Check enabled and dependencies, take the locks, run. Raises Skipped."""
        job, settings = self.job, self.settings
        config = settings.job(job)
        if not config.enabled:
            raise JobDisabled(config.off_reason or f"{job.name} is disabled")
        if not self.request.ignore_deps:
            reasons = unmet_dependencies(job, settings, self.ledger.view, self.started)
            if reasons:
                raise DependencyNotMet("; ".join(reasons) + " (use --ignore-deps to run anyway)")
        names = [f"job-{job.name}"] + [resource_lock(r) for r in job.writes]
        holder = {"job": job.name, "run_id": self.run_id,
                  "since": self.started.isoformat(timespec="seconds")}
        with hold(lock_dir_for(settings.state_path), names, holder):
            return self.execute(observers)

    def skipped(self, exc: Skipped) -> RunOutcome:
        logger.warning("skipped: {}", exc)
        finished = utcnow()
        self.ledger.insert(**self.base, status=RunStatus.SKIPPED.value, finished_at=finished,
                           exit_code=int(exc.exit_code), duration_s=0.0, error=redact(str(exc)))
        return RunOutcome(self.run_id, self.job.name, RunStatus.SKIPPED, exc.exit_code,
                          self.started, finished, time.monotonic() - self.clock,
                          self.request.trigger, self.request.dry_run, error=redact(str(exc)))

    def execute(self, observers: Sequence[RunObserver]) -> RunOutcome:
        """Record the running row, run the job under its scope, record the outcome, notify."""
        request, job, settings, ledger = self.request, self.job, self.settings, self.ledger
        timeout = request.timeout if request.timeout is not None else settings.job(job).timeout
        for run_id in ledger.mark_abandoned(job.name, self.started):
            logger.warning("earlier run {} of {} was abandoned (its process is gone)", run_id[:8],
                           job.name)
        self.scope.start_deadline(timeout)
        ledger.insert(**self.base, status=RunStatus.RUNNING.value, heartbeat_at=self.started,
                      deadline_at=self.started + timedelta(seconds=timeout))
        source = "dry run" if request.dry_run else request.trigger
        logger.info("starting {} ({}, deadline {:g}s)", job.name, source, timeout)
        _notify(observers, "on_start", job, self.run_id, request.trigger, self.scope)
        context = self._context()
        try:
            with _heartbeat(ledger, self.run_id, settings.heartbeat_seconds):
                produced = execute(job, context, self.refused)
                # From here on a signal only cuts the notifications short; the job's phase is
                # over, and whether its scope fired before decides the outcome.
                notifications = CancelScope(logger.bind(job=job.name, run_id=self.run_id),
                                            what="the notifications")
                if self.router is not None:
                    self.router.route(notifications)
                fired = self.scope.seal()
            verdict = judge(produced, fired, self.scope, context)
        finally:
            context.close()
        outcome = self._record(verdict)
        _notify(observers, "on_finish", outcome, ledger.view, notifications)
        return outcome

    def _context(self) -> JobContext:
        request, job, settings = self.request, self.job, self.settings
        options = {**settings.job(job).options,
                   **{k: v for k, v in request.options.items() if v is not None}}
        return JobContext(job=job, run_id=self.run_id, settings=settings, config=settings.job(job),
                          options=options, dry_run=request.dry_run, trigger=request.trigger,
                          started_at=self.started, cancel=self.scope, history=self.ledger.view,
                          reporter=request.reporter, _ledger=self.ledger)

    def _record(self, ran: Verdict) -> RunOutcome:
        finished = utcnow()
        duration = time.monotonic() - self.clock
        result = ran.result
        self.ledger.finish(self.run_id, status=ran.status, exit_code=int(ran.exit_code),
                           finished_at=finished, duration_s=duration, metrics=result.metrics,
                           error=ran.error, summary=redact(result.summary))
        logger.info("{} {} in {:.2f}s (exit {})", self.job.name, ran.status.value, duration,
                    int(ran.exit_code))
        return RunOutcome(self.run_id, self.job.name, ran.status, ran.exit_code, self.started,
                          finished, duration, self.request.trigger, self.request.dry_run,
                          dict(result.metrics), result.summary, ran.error, result.details,
                          consecutive_failures=self.ledger.view.consecutive_failures(
                              self.job.name, finished),
                          committed=ran.committed)


def _notify(observers: Sequence[RunObserver], method: str, *args: Any) -> None:
    for observer in observers:
        try:
            getattr(observer, method)(*args)
        except Exception as exc:  # noqa: BLE001 - borgmatic's rule: monitoring never changes the job's result
            logger.warning("{} {} failed: {}", type(observer).__name__, method, redact(str(exc)))
