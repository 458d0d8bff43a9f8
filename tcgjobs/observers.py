"""The run observers wired in by default: job-failure alerts, metrics and dead-man pings.

Observers are told about every run by the runner; their failures are logged as warnings and never
change a run's outcome (borgmatic's monitoring-hook rule). Each call gets a cancel scope that
bounds its network calls: the run's at the start (its deadline and signals), the notifications'
at the end (a signal cuts them short; their own timeouts bound them otherwise). Each imports its service (Slack and the
alerting policy, metrics, pings) when it is used, so a run with none configured loads none of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from tcgjobs.config import Settings
from tcgjobs.db.state import FAILURE_STATUSES, AlertStore, RunStatus, StateView, open_state, open_view
from tcgjobs.errors import ExitCode
from tcgjobs.jobstatus import abandoned_runs
from tcgjobs.levels import Level
from tcgjobs.registry import Job, all_jobs
from tcgjobs.runner import RunObserver, RunOutcome
from tcgjobs.times import human_duration, utcnow

if TYPE_CHECKING:
    from tcgjobs.cancel import CancelScope
    from tcgjobs.services.alerting import Digest
    from tcgjobs.services.slack import Alert, SlackNotifier

HEALTH_JOB = "database-health-check"


def notifier_for(settings: Settings) -> SlackNotifier | None:
    """The Slack notifier, or None when notifications are off."""
    if not settings.notifications_enabled or not settings.slack_webhook_url:
        return None
    from tcgjobs.services.slack import SlackNotifier

    return SlackNotifier(settings.slack_webhook_url, timeout=settings.slack_timeout,
                         max_attempts=settings.slack_max_attempts,
                         max_retry_after=settings.slack_max_retry_after)


def job_alert(digest: Digest, outcome: RunOutcome, now: datetime) -> Alert:
    """The Slack message for one job's failure, reminder or recovery."""
    from tcgjobs.services.alerting import silence_summary
    from tcgjobs.services.slack import Alert

    fields: dict[str, Any] = {"status": outcome.status.value, "exit code": int(outcome.exit_code),
                              "run id": outcome.run_id[:8],
                              "consecutive failures": outcome.consecutive_failures}
    extra = ""
    if digest.silenced_events:
        extra = "\nWhile alerts were silenced:\n" + "\n".join(
            silence_summary(digest.silenced_events, {f"job:{outcome.job}": outcome.job}))
    if digest.firing or digest.reminders:
        line = (digest.firing or digest.reminders)[0]
        title = f"Job {'Failed' if digest.firing else 'Still Failing'}: {outcome.job}"
        return Alert(title=title, message=(outcome.error or "failed") + extra,
                     severity="error" if line.level is Level.CRITICAL else "warning", job=outcome.job,
                     fields={**fields, **outcome.metrics})
    if digest.recovered:
        line = digest.recovered[0]
        down = f" after {human_duration(now - line.since)} down (failing since {line.since:%Y-%m-%d %H:%M} UTC)" \
            if line.since else ""
        return Alert(title=f"Job Recovered: {outcome.job}", message=f"{outcome.job} succeeded again{down}." + extra,
                     severity="info", job=outcome.job, fields=fields)
    return Alert(title=f"Job {outcome.job}: changes while alerts were silenced", message=extra.strip(),
                 severity="info", job=outcome.job, fields=fields)


class JobAlerts:
    """Job-failure policy: N consecutive failures (TCGJOBS_JOB_FAILURE_ALERT_THRESHOLD) alert once;
    the first success after an alerted failure sends a recovery with the downtime."""

    def __init__(self, settings: Settings, notifier: SlackNotifier) -> None:
        self.settings = settings
        self.notifier = notifier

    def on_start(self, job: Job, run_id: str, trigger: str, cancel: CancelScope) -> None:
        return None

    def on_finish(self, outcome: RunOutcome, history: StateView, cancel: CancelScope) -> None:
        from tcgjobs.services.alerting import AlertPolicy, Observation, deliver

        if outcome.dry_run or outcome.status in (RunStatus.SKIPPED, RunStatus.DRY_RUN):
            return
        if outcome.job == HEALTH_JOB and outcome.exit_code is ExitCode.PROBLEMS:
            return  # critical checks: the health check's own digest has said so
        failing = outcome.status in FAILURE_STATUSES
        level = Level.OK
        if failing and outcome.consecutive_failures >= self.settings.job_failure_alert_threshold:
            level = Level.WARNING if outcome.status is RunStatus.INTERRUPTED else Level.CRITICAL
        if failing and not level.bad:
            return  # below the threshold: neither a failure to announce nor a recovery
        severity = "warning" if level is Level.WARNING else ("error" if level.bad else None)
        observation = Observation(f"job:{outcome.job}", outcome.job, level, outcome.error or outcome.status.value,
                                  severity=severity)
        with open_state(self.settings.state_path, busy_timeout_ms=self.settings.busy_timeout_ms) as state:
            policy = AlertPolicy(AlertStore(state), self.settings)
            now = utcnow()
            digest = policy.evaluate([observation], now)
            if not digest.empty:
                deliver(policy, digest, job_alert(digest, outcome, now), self.notifier, now, cancel)


def backup_listing(settings: Settings) -> list[Any] | None:
    """The backups in BACKUP_DIR (newest first), or None when backups are not available."""
    try:
        from tcgjobs.backups.catalog import list_backups
    except ImportError:
        return None
    if not settings.backup_dir.is_dir():
        return []
    return list_backups(settings.backup_dir)


class RunMetrics:
    """After every run: rewrite the textfile (TCGJOBS_METRICS_DIR) and pushadd (TCGJOBS_PUSHGATEWAY_URL)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_start(self, job: Job, run_id: str, trigger: str, cancel: CancelScope) -> None:
        return None

    def on_finish(self, outcome: RunOutcome, history: StateView, cancel: CancelScope) -> None:
        from tcgjobs.services import metrics

        checks = history.checks()
        backups = backup_listing(self.settings)
        now = utcnow()
        window = timedelta(hours=self.settings.health_abandoned_window_hours)
        if self.settings.metrics_dir is not None:
            registry = metrics.full_registry(history, all_jobs(), now, checks, backups, window)
            path = metrics.write_textfile(self.settings.metrics_dir, registry)
            logger.debug("metrics written to {}", path)
        if self.settings.pushgateway_url and not outcome.dry_run:
            run = history.get(outcome.run_id)
            if run is not None:
                metrics.push_run(self.settings.pushgateway_url, run, outcome.status is RunStatus.SUCCEEDED,
                                 outcome.consecutive_failures, checks if outcome.job == HEALTH_JOB else {},
                                 backups, timeout=self.settings.ping_timeout,
                                 abandoned=len(abandoned_runs(history, now, window, outcome.job)),
                                 cancel=cancel)


class Pings:
    """Dead-man pings (TCGJOBS_PING_URL): start, then success or the exit code. Not for dry runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _is_dry_run(self, run_id: str) -> bool:
        view = open_view(self.settings.state_path, busy_timeout_ms=self.settings.busy_timeout_ms,
                         stale_after=timedelta(hours=1))
        try:
            run = view.get(run_id)
            return bool(run and run.dry_run)
        finally:
            view.close()

    def on_start(self, job: Job, run_id: str, trigger: str, cancel: CancelScope) -> None:
        from tcgjobs.services.pings import ping

        if not self._is_dry_run(run_id):
            ping(self.settings.ping_url, job.name, "start", run_id, timeout=self.settings.ping_timeout,
                 cancel=cancel)

    def on_finish(self, outcome: RunOutcome, history: StateView, cancel: CancelScope) -> None:
        from tcgjobs.services.pings import ping

        if outcome.dry_run:
            return
        ok = outcome.exit_code is ExitCode.OK
        ping(self.settings.ping_url, outcome.job, "success" if ok else "fail", outcome.run_id,
             timeout=self.settings.ping_timeout, exit_code=int(outcome.exit_code), cancel=cancel)


class RestoreNotice:
    """After a restore over the live card database: one Slack message at severity warning, "card
    database restored from ...", naming the safety snapshot. A restore is an event, not a state, so
    it is told every time; NOTIFICATION_MIN_SEVERITY and silences apply as to every alert. A restore
    to another path (a drill) tells nobody; a failed one is JobAlerts' to announce."""

    def __init__(self, settings: Settings, notifier: SlackNotifier) -> None:
        self.settings = settings
        self.notifier = notifier

    def on_start(self, job: Job, run_id: str, trigger: str, cancel: CancelScope) -> None:
        return None

    def on_finish(self, outcome: RunOutcome, history: StateView, cancel: CancelScope) -> None:
        from tcgjobs.services.alerting import silences_in_effect
        from tcgjobs.services.slack import Alert, severity_at_least

        report = outcome.details if isinstance(outcome.details, dict) else {}
        if outcome.status is not RunStatus.SUCCEEDED or not report.get("live"):
            return
        if not severity_at_least("warning", self.settings.notification_min_severity):
            return
        if silences_in_effect(history.silences(utcnow()), self.settings, utcnow()):
            logger.info("alerts silenced; not sending the restore notice")
            return
        backup = Path(report["backup"]).name
        safety = report.get("safety_snapshot")
        kept = (f"The previous database is in the safety snapshot {Path(safety).name}."
                if safety else "No safety snapshot was taken (--no-safety-snapshot).")
        self.notifier.send(Alert(
            title="Card Database Restored", severity="warning", job=outcome.job,
            message=f"card database restored from {backup}. {kept}",
            fields={"database": report["target"], "rows": outcome.metrics.get("rows_total", 0),
                    "check": report.get("check", ""), "run id": outcome.run_id[:8]}), cancel)


def restore_observers(settings: Settings) -> list[RunObserver]:
    """The observers of a restore: failure alerts and the restore notice, metrics; no dead-man
    pings (nothing schedules a restore, so nothing waits for one)."""
    observers: list[RunObserver] = []
    notifier = notifier_for(settings)
    if notifier is not None:
        observers += [JobAlerts(settings, notifier), RestoreNotice(settings, notifier)]
    if settings.metrics_dir is not None or settings.pushgateway_url:
        observers.append(RunMetrics(settings))
    return observers


def default_observers(settings: Settings) -> list[RunObserver]:
    observers: list[RunObserver] = []
    notifier = notifier_for(settings)
    if notifier is not None:
        observers.append(JobAlerts(settings, notifier))
    if settings.metrics_dir is not None or settings.pushgateway_url:
        observers.append(RunMetrics(settings))
    if settings.ping_url:
        observers.append(Pings(settings))
    return observers
