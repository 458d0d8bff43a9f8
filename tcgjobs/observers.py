"""The run observers wired in by default: alerts (and, later, metrics and pings)."""

from __future__ import annotations

from tcgjobs.config import Settings
from tcgjobs.db.state import LedgerView, RunStatus
from tcgjobs.registry import Job
from tcgjobs.runner import RunObserver, RunOutcome
from tcgjobs.services.slack import Alert, SlackNotifier, severity_at_least

_SEVERITY = {RunStatus.FAILED: "error", RunStatus.TIMEOUT: "error", RunStatus.INTERRUPTED: "warning"}


def notifier_for(settings: Settings) -> SlackNotifier | None:
    """The Slack notifier, or None when notifications are off."""
    if not settings.notifications_enabled or not settings.slack_webhook_url:
        return None
    return SlackNotifier(settings.slack_webhook_url, timeout=settings.slack_timeout,
                         max_attempts=settings.slack_max_attempts,
                         max_retry_after=settings.slack_max_retry_after)


class FailureAlerts:
    """Posts to Slack when a run fails, times out or is interrupted."""

    def __init__(self, settings: Settings, notifier: SlackNotifier) -> None:
        self.settings = settings
        self.notifier = notifier

    def on_start(self, job: Job, run_id: str, trigger: str) -> None:
        return None

    def on_finish(self, outcome: RunOutcome, history: LedgerView) -> None:
        severity = _SEVERITY.get(outcome.status)
        if severity is None or not severity_at_least(severity, self.settings.notification_min_severity):
            return
        fields = {"status": outcome.status.value, "exit code": int(outcome.exit_code),
                  "run id": outcome.run_id[:8], "consecutive failures": outcome.consecutive_failures,
                  **outcome.metrics}
        self.notifier.send(Alert(title=f"Job Failed: {outcome.job}", message=outcome.error or "failed",
                                 severity=severity, job=outcome.job, fields=fields))


def default_observers(settings: Settings) -> list[RunObserver]:
    observers: list[RunObserver] = []
    notifier = notifier_for(settings)
    if notifier is not None:
        observers.append(FailureAlerts(settings, notifier))
    return observers
