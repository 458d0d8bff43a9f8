"""Writing the run ledger (table ``runs``): one row per run. Owned by the runner.

A ``running`` row whose process is gone, or whose heartbeat is stale, reads as ``abandoned``
(:meth:`RunRecord.effective_status`); the next run of the same job, which holds that job's lock
and so knows no other copy is alive, records it as abandoned for good.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tcgjobs.db.state.database import StateView, open_state
from tcgjobs.db.state.records import RunStatus
from tcgjobs.db.state.tables import StateDatabase

PRUNE_CHUNK = 500


class Ledger:
    """Writes the run ledger; :attr:`view` reads it (and the rest of the state) on the same
    connection. Only the runner makes one; jobs get the view."""

    def __init__(self, state: StateDatabase, stale_after: timedelta) -> None:
        self.state = state
        self.view = StateView(state, stale_after)

    @classmethod
    def open(cls, path: Path, *, busy_timeout_ms: int, stale_after: timedelta) -> Ledger:
        """The ledger of the state database at ``path`` (:func:`open_state`: created and migrated
        if needed). Raises ConfigError or SchemaError like :func:`open_state`."""
        return cls(open_state(path, busy_timeout_ms=busy_timeout_ms), stale_after)

    def close(self) -> None:
        self.state.close()

    def insert(self, **values: Any) -> None:
        """Add a run. Timestamps are datetimes, ``metrics`` a dict; ``host`` and ``pid`` default
        to this process."""
        values.setdefault("host", socket.gethostname())
        values.setdefault("pid", os.getpid())
        with self.state.atomic():
            self.state.runs.insert(**values).execute()

    def finish(self, run_id: str, *, status: RunStatus, exit_code: int, finished_at: datetime,
               duration_s: float, metrics: dict[str, Any], error: str | None,
               summary: str | None = None) -> None:
        table = self.state.runs
        with self.state.atomic():
            (table.update(status=status, exit_code=exit_code, finished_at=finished_at,
                          duration_s=round(duration_s, 6), metrics=metrics, error=error,
                          summary=summary or None)
             .where(table.run_id == run_id).execute())

    def heartbeat(self, run_id: str, at: datetime) -> None:
        table = self.state.runs
        with self.state.atomic():
            table.update(heartbeat_at=at).where(table.run_id == run_id).execute()

    def mark_abandoned(self, job: str, now: datetime) -> list[str]:
        """Record every still-``running`` row of ``job`` as abandoned. Call only while holding the
        job's lock, which proves none of them is alive. Returns their run ids."""
        table = self.state.runs
        run_ids = [row.run_id for row in table.select(table.run_id)
                   .where((table.job == job) & (table.status == RunStatus.RUNNING))]
        if run_ids:
            with self.state.atomic():
                (table.update(status=RunStatus.ABANDONED,
                              error="the process running it disappeared (crash, kill -9 or "
                                    "node loss); found by a later run")
                 .where(table.run_id.in_(run_ids)).execute())
        return run_ids

    def prunable(self, before: datetime) -> list[str]:
        """Run ids finished before ``before``, except each job's newest run and newest success."""
        table = self.state.runs
        keep: set[str] = set()
        for row in table.select(table.job).distinct():
            last = self.view.last_run(row.job)
            success = self.view.last_success(row.job)
            keep.update(r.run_id for r in (last, success) if r is not None)
        rows = table.select(table.run_id).where((table.started_at < before)
                                                & (table.status != RunStatus.RUNNING))
        return [row.run_id for row in rows if row.run_id not in keep]

    def prune(self, run_ids: list[str]) -> int:
        """Delete the given runs. Returns how many were deleted."""
        table = self.state.runs
        deleted = 0
        with self.state.atomic():
            for start in range(0, len(run_ids), PRUNE_CHUNK):
                chunk = run_ids[start:start + PRUNE_CHUNK]
                deleted += table.delete().where(table.run_id.in_(chunk)).execute()
        return deleted
