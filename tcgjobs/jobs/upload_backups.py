"""upload-backups: every verified backup also off-site, proven there, retained there.

A run (with TCGJOBS_OFFSITE_URL set; without it the job counts as disabled everywhere): abort
our stale incomplete multipart uploads, list the bucket and read the proofs, re-prove a rolling
sample in full, copy each verified local backup that is not off-site yet (newest first), then
apply the off-site retention. The work is in :mod:`tcgjobs.offsite`; a store that cannot be
reached ends the run with 69 and one that refuses us with 78, keeping what was proven so far
(with its numbers in the ledger, for the health check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from tcgjobs.backups.catalog import list_backups
from tcgjobs.context import JobContext
from tcgjobs.errors import ExitCode
from tcgjobs.offsite import retention, sample
from tcgjobs.offsite.catalog import CORRUPT, Catalog, read_catalog
from tcgjobs.offsite.failures import StoreRefused, StoreUnavailable
from tcgjobs.offsite.fetch import remove_dead_downloads
from tcgjobs.offsite.store import Store
from tcgjobs.offsite.uploads import Uploads, abort_stale_uploads, copy_backups
from tcgjobs.registry import JobResult


def run(ctx: JobContext) -> JobResult:
    work = OffsiteRun(ctx)
    try:
        work.execute()
    except (StoreUnavailable, StoreRefused) as exc:  # keep the numbers of what was done so far
        logger.error("{}", exc)
        return work.result(error=str(exc), code=exc.exit_code)
    return work.result()


@dataclass
class OffsiteRun:
    """The state of one run, so a failure part-way still reports what was done."""

    ctx: JobContext
    catalog: Catalog | None = None
    aborted: list[str] = field(default_factory=list)
    reproved: list[dict[str, Any]] = field(default_factory=list)
    uploads: Uploads = field(default_factory=Uploads)
    plan: list[dict[str, Any]] = field(default_factory=list)
    applied: retention.Applied = field(default_factory=retention.Applied)

    def execute(self) -> None:
        """Every step in order. Raises the store's failures (and Cancelled)."""
        ctx = self.ctx
        settings, check, dry_run = ctx.settings, ctx.check_cancelled, ctx.dry_run
        policy = retention.policy_from(ctx.options)
        policy.check()
        store = Store.open(settings, cancel=check)
        local = list_backups(settings.backup_dir)
        if not dry_run:
            remove_dead_downloads(settings.temp_dir)
            self.aborted = abort_stale_uploads(store, ctx.started_at, check)
        self.catalog = read = read_catalog(store)
        wanted = {b.name for b in local if b.status == "verified"}
        self.reproved = sample.reprove(store, read, settings, count=settings.offsite_verify_sample,
                                       exclude=wanted - {c.name for c in read.copies
                                                         if c.status == "verified"},
                                       run_id=ctx.run_id, dry_run=dry_run, check=check)
        self.uploads = copy_backups(store, read, local, settings, run_id=ctx.run_id,
                                    dry_run=dry_run, check=check)
        self.plan = retention.plan_rows(read, {b.name: b for b in local}, policy, ctx.started_at)
        self.applied = retention.apply(store, read, self.plan, dry_run=dry_run, check=check)

    def result(self, error: str | None = None, code: ExitCode = ExitCode.OK) -> JobResult:
        """Metrics, summary and details of what was done; ``error``/``code`` when it stopped."""
        uploads, applied = self.uploads, self.applied
        metrics: dict[str, float | int] = {
            "uploaded": len(uploads.uploaded), "resumed": len(uploads.resumed),
            "already_offsite": len(uploads.present), "bytes_uploaded": uploads.bytes_uploaded,
            "skipped_unverified": len(uploads.skipped), "local_corrupt": len(uploads.corrupt_local),
            "would_upload": len(uploads.pending), "reproved": len(self.reproved),
            "reproved_corrupt": sum(1 for r in self.reproved if r["status"] == CORRUPT),
            "deleted": len(applied.deleted), "delete_refused": len(applied.refused),
            "bytes_freed": applied.bytes_freed, "stale_uploads_aborted": len(self.aborted)}
        if self.catalog is not None:
            metrics.update(self.catalog.totals())
        details = {"location": str(self.ctx.settings.offsite_url), "dry_run": self.ctx.dry_run,
                   "uploaded": uploads.uploaded, "resumed": uploads.resumed,
                   "would_upload": uploads.pending, "skipped": uploads.skipped,
                   "local_corrupt": uploads.corrupt_local, "reproved": self.reproved,
                   "retention": self.plan, "delete_refused": applied.refused,
                   "table": _table(self.plan, self.ctx.dry_run)}
        summary = self._summary(metrics)
        if error is not None:
            return JobResult(metrics, summary=summary, exit_code=code, error=error, details=details)
        problems = self._problems()
        if problems:
            return JobResult.problems("; ".join(problems), metrics=metrics, summary=summary,
                                      details=details)
        return JobResult(metrics, summary=summary, details=details)

    def _problems(self) -> list[str]:
        found = []
        if self.uploads.corrupt_local:
            found.append("local backup(s) no longer match their checksum, not uploaded: "
                         + ", ".join(self.uploads.corrupt_local))
        repaired = set(self.uploads.uploaded)
        rotten = [r["name"] for r in self.reproved if r["status"] == CORRUPT
                  and r["name"] not in repaired]
        if rotten:
            found.append("off-site copies found corrupt with no sound local copy to resend: "
                         + ", ".join(rotten))
        return found

    def _summary(self, metrics: dict[str, float | int]) -> str:
        prefix = "dry run: " if self.ctx.dry_run else ""
        sent = (f"{metrics['would_upload']} to upload" if self.ctx.dry_run else
                f"{metrics['uploaded']} uploaded ({metrics['bytes_uploaded']:,} bytes)")
        deleted = "would delete" if self.ctx.dry_run else "deleted"
        doomed = sum(1 for row in self.plan if row["action"] == "delete")
        return (f"{prefix}{sent}, {metrics['resumed']} resumed, {metrics['already_offsite']} "
                f"already off-site; {metrics['reproved']} re-proven "
                f"({metrics['reproved_corrupt']} corrupt); off-site {deleted} "
                f"{doomed if self.ctx.dry_run else metrics['deleted']}, "
                f"{metrics['delete_refused']} refused; "
                f"{metrics.get('offsite_verified', 0)} verified copies off-site")


def _table(plan: list[dict[str, Any]], dry_run: bool) -> dict[str, Any]:
    return {"columns": ["off-site copy", "status", "action", "reasons"],
            "rows": [[row["name"], row["status"],
                      "would delete" if dry_run and row["action"] == "delete" else row["action"],
                      ", ".join(row["reasons"])] for row in plan]}
