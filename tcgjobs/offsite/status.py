"""What the ledger knows about the off-site copies, for the health check and the metrics.

upload-backups records the totals of the bucket it saw (copies, verified copies, bytes, the
creation time of the newest verified copy) in each run's metrics, also in a run that failed part
way. The health check and the metrics read them back from the newest such run, so neither ever
calls the store nor loads boto3. Plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tcgjobs.db.state import RunRecord, RunStatus, StateView

JOB = "upload-backups"
NEWEST = "offsite_newest_verified_timestamp"


@dataclass(frozen=True)
class OffsiteStatus:
    """The off-site totals as the newest upload-backups run that listed the bucket saw them."""

    newest_verified_at: datetime | None
    copies: int
    verified: int
    size_bytes: int
    seen_at: datetime  # when that run started
    run_id: str


def status_of(run: RunRecord) -> OffsiteStatus | None:
    """The totals one run recorded, or None (a dry run, another job, or it never listed)."""
    if run.job != JOB or run.dry_run or run.status is RunStatus.DRY_RUN or NEWEST not in run.metrics:
        return None
    newest = float(run.metrics[NEWEST])
    return OffsiteStatus(datetime.fromtimestamp(newest, UTC) if newest else None,
                         int(run.metrics.get("offsite_copies", 0)),
                         int(run.metrics.get("offsite_verified", 0)),
                         int(run.metrics.get("offsite_bytes", 0)), run.started_at, run.run_id)


def offsite_status(view: StateView, limit: int = 50) -> OffsiteStatus | None:
    """From the newest upload-backups run that recorded off-site totals, or None."""
    return next((found for run in view.runs(JOB, limit=limit) if (found := status_of(run))), None)
