"""Per-job status from the schedule and the ledger: last outcome, next due, late, failing.

Used by ``tcgjobs status`` and by the health check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tcgjobs.config import Settings
from tcgjobs.db.state import RunRecord, RunStatus, StateView
from tcgjobs.registry import Job
from tcgjobs.schedule import describe, late_since, next_due


@dataclass(frozen=True)
class JobStatus:
    job: str
    enabled: bool
    schedule: str
    schedule_words: str
    next_due: datetime
    last_run: RunRecord | None
    last_status: RunStatus | None  # effective: a dead "running" row reads "abandoned"
    #: A run still in progress, also when a later attempt (refused by its lock) is the last run.
    running: RunRecord | None
    last_success_at: datetime | None
    late_since: datetime | None
    consecutive_failures: int

    @property
    def late(self) -> bool:
        return self.late_since is not None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    @property
    def needs_attention(self) -> bool:
        return self.enabled and (self.late or self.failing)

    def as_json(self) -> dict[str, Any]:
        last = self.last_run
        return {
            "job": self.job, "enabled": self.enabled,
            "schedule": self.schedule, "schedule_words": self.schedule_words,
            "next_due": self.next_due.isoformat(),
            "last_status": self.last_status.value if self.last_status else None,
            "last_started_at": last.started_at.isoformat() if last else None,
            "last_duration_s": last.duration_s if last else None,
            "last_exit_code": last.exit_code if last else None,
            "last_error": last.error if last else None,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "running_since": self.running.started_at.isoformat() if self.running else None,
            "running_run_id": self.running.run_id if self.running else None,
            "late": self.late,
            "late_since": self.late_since.isoformat() if self.late_since else None,
            "consecutive_failures": self.consecutive_failures,
        }


def job_status(job: Job, settings: Settings, view: StateView, now: datetime) -> JobStatus:
    config = settings.job(job)
    runs = [r for r in view.runs(job.name, limit=50) if not r.dry_run]
    last = runs[0] if runs else None
    last_status = last.effective_status(now, view.stale_after) if last else None
    success = view.last_success(job.name)
    progress = [r.started_at for r in runs
                if r.effective_status(now, view.stale_after) in (RunStatus.SUCCEEDED, RunStatus.RUNNING)]
    running = next((r for r in runs if r.effective_status(now, view.stale_after) is RunStatus.RUNNING),
                   None)
    tracked_since = view.created_at() or now
    late = None
    if config.enabled:
        allowance = timedelta(seconds=config.timeout + settings.late_grace_seconds)
        late = late_since(config.schedule, settings.timezone, now, allowance,
                          max(progress) if progress else None, tracked_since)
    return JobStatus(
        job=job.name, enabled=config.enabled, schedule=config.schedule,
        schedule_words=describe(config.schedule),
        next_due=next_due(config.schedule, settings.timezone, now), last_run=last,
        last_status=last_status, running=running,
        last_success_at=success.started_at if success else None,
        late_since=late, consecutive_failures=view.consecutive_failures(job.name, now))


def abandoned_runs(view: StateView, now: datetime, window: timedelta,
                   job: str | None = None) -> list[RunRecord]:
    """Runs of ``job`` (of every job when None) started within ``window`` before ``now`` whose
    process vanished (kill -9, OOM, node loss): the abandoned-runs check and its metric."""
    since = now - window
    return [run for run in view.runs(job, limit=1000)
            if run.started_at >= since
            and run.effective_status(now, view.stale_after) is RunStatus.ABANDONED]
