"""backup-database: consistent, compressed, SHA256-verified SQLite backup.

The original copied the live file while committed rows sat in the WAL, never stored its checksum
and never verified anything. Here every backup is a snapshot taken with SQLite's backup API,
checked, compressed, read back and verified, and only then published atomically with a
``.sha256`` sidecar and a manifest (see :mod:`tcgjobs.backups.create`).
"""

from __future__ import annotations

from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.registry import JobResult


def run(ctx: JobContext) -> JobResult:
    from tcgjobs.backups.catalog import list_backups
    from tcgjobs.backups.create import create_backup
    from tcgjobs.backups.tempfiles import cleanup_leftovers

    settings = ctx.settings
    db = ctx.card_db(readonly=True)
    backup_dir, temp_dir = settings.backup_dir, settings.temp_dir
    if ctx.dry_run:
        existing = list_backups(backup_dir)
        logger.info("dry run: would back up {} into {} ({}); nothing written",
                    settings.database_path, backup_dir, ctx.options["compression"])
        return JobResult({"backups_total": len(existing)}, summary="dry run: nothing written",
                         details={"source": str(settings.database_path), "backup_dir": str(backup_dir),
                                  "compression": ctx.options["compression"]})
    backup_dir.mkdir(parents=True, exist_ok=True)
    leftovers = cleanup_leftovers(backup_dir, temp_dir)
    logger.info("starting backup of {} ({})", settings.database_path, ctx.options["compression"])
    report = create_backup(db.connection(), settings.database_path, backup_dir, temp_dir,
                           compression=ctx.options["compression"],
                           reserve_bytes=ctx.options["reserve_bytes"], run_id=ctx.run_id,
                           check=ctx.check_cancelled,
                           published=lambda path: ctx.committed(f"{path.name} verified and published"))
    backups = list_backups(backup_dir)
    metrics = {**report.metrics, "leftovers_removed": len(leftovers), "backups_total": len(backups),
               "backups_total_bytes": sum(item.size_bytes for item in backups)}
    details = {"backup": str(report.path), "manifest": report.manifest}
    size = metrics["backup_size_bytes"]
    summary = (f"{report.path.name}: {size:,} bytes ({metrics['compression_ratio']:.0%} of "
               f"{metrics['uncompressed_bytes']:,}), {metrics['rows_total']:,} rows, verified")
    logger.info(summary)
    return JobResult(metrics, summary=summary, details=details)
