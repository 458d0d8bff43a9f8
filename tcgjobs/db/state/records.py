"""What the state database holds, as read: runs, recorded health checks, alert state and silences.

Plain frozen dataclasses with named fields, detached from the connection they were read on.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from tcgjobs.db.sqlite import pid_alive
from tcgjobs.levels import Level
from tcgjobs.times import to_text


class RunStatus(str, Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"
    ABANDONED = "abandoned"


#: Outcomes that count as a failure of the job (consecutive-failure counts, alerts).
FAILURE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.INTERRUPTED,
                              RunStatus.ABANDONED})


@dataclass(frozen=True)
class RunRecord:
    """One ledger row, as read."""

    run_id: str
    job: str
    trigger: str
    dry_run: bool
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime | None
    deadline_at: datetime | None
    finished_at: datetime | None
    status: RunStatus
    exit_code: int | None
    duration_s: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    version: str | None = None
    summary: str | None = None  # what the run did, in one line (none before state migration 3)

    def effective_status(self, now: datetime, stale_after: timedelta) -> RunStatus:
        """``abandoned`` for a running row whose process is gone or whose heartbeat is stale."""
        if self.status is not RunStatus.RUNNING:
            return self.status
        beat = self.heartbeat_at or self.started_at
        if now - beat > stale_after:
            return RunStatus.ABANDONED
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return RunStatus.ABANDONED
        return RunStatus.RUNNING

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "job": self.job, "trigger": self.trigger, "dry_run": self.dry_run,
            "host": self.host, "pid": self.pid, "started_at": to_text(self.started_at),
            "heartbeat_at": to_text(self.heartbeat_at), "finished_at": to_text(self.finished_at),
            "status": self.status.value, "exit_code": self.exit_code, "duration_s": self.duration_s,
            "metrics": self.metrics, "error": self.error, "version": self.version,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class StoredCheck:
    """A health check's result as recorded, with when it was checked and since when it has had
    its level."""

    name: str
    level: Level
    detail: str
    value: float | None
    data: dict[str, Any]
    checked_at: datetime
    level_since: datetime
    run_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "level": self.level.value, "detail": self.detail,
                "value": self.value, "checked_at": to_text(self.checked_at),
                "level_since": to_text(self.level_since), "run_id": self.run_id}


@dataclass(frozen=True)
class AlertSubject:
    """One alert subject (``check:<name>``, ``job:<name>``): the level last observed and the
    level Slack last accepted a message about."""

    key: str
    level: Level
    detail: str | None
    bad_since: datetime | None
    observed_at: datetime
    notified_level: Level
    notified_at: datetime | None


@dataclass(frozen=True)
class LevelChange:
    """One recorded change of an alert subject's level."""

    id: int
    key: str
    at: datetime
    from_level: Level
    to_level: Level


@dataclass(frozen=True)
class Silence:
    """A window in which alerts are recorded but not sent. ``id`` is None for one that is not
    stored (TCGJOBS_SILENCE_UNTIL)."""

    id: int | None
    starts_at: datetime
    until: datetime
    reason: str | None
    created_at: datetime
    ended_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.until and (self.ended_at is None or self.ended_at > now)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "starts_at": to_text(self.starts_at), "until": to_text(self.until),
                "reason": self.reason, "created_at": to_text(self.created_at),
                "ended_at": to_text(self.ended_at)}
