"""cleanup-stale-data: checkpoint, VACUUM when worth it, ANALYZE, prune the ledger and leftovers.

The original ran an unconditional VACUUM (exclusive, twice the disk) and deleted nothing. Here,
after ``PRAGMA quick_check`` passes (a damaged file fails the run untouched):

1. ``PRAGMA wal_checkpoint(TRUNCATE)``: folds the WAL back into the database. Readers (the
   platform's APIs) are waited for up to the busy timeout, never forever; a checkpoint blocked by
   a reader is reported, not fatal.
2. ``VACUUM`` only when the free-page ratio reaches the threshold (or ``--force``), and only if the
   disk has room for it (about twice the database: in WAL mode the new copy goes through the WAL).
   Readers keep reading their snapshot meanwhile.
3. ``ANALYZE`` and ``PRAGMA optimize``, then another TRUNCATE checkpoint to shrink the WAL.
4. Ledger rows older than the retention are pruned (each job's newest run and newest success stay).
5. Temporary files of interrupted runs (see :mod:`tcgjobs.backups.tempfiles`) older than the
   backup timeout plus a margin are removed from the backup and temporary directories.

``--dry-run`` opens the database read-only and reports what each step would do.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from loguru import logger
from peewee import SqliteDatabase

from tcgjobs.context import JobContext
from tcgjobs.db.sqlite import database_bytes, integrity_problems
from tcgjobs.registry import JobResult, get_job

if TYPE_CHECKING:
    from tcgjobs.backups.tempfiles import Leftover


@dataclass(frozen=True)
class _Pages:
    page_size: int
    page_count: int
    freelist: int

    @property
    def free_ratio(self) -> float:
        return self.freelist / self.page_count if self.page_count else 0.0


def _pages(db: SqliteDatabase) -> _Pages:
    def pragma(name: str) -> int:
        return db.execute_sql(f"PRAGMA {name}").fetchone()[0]

    return _Pages(pragma("page_size"), pragma("page_count"), pragma("freelist_count"))


def _vacuum_decision(ctx: JobContext, pages: _Pages) -> tuple[bool, str]:
    """Whether to VACUUM, and why (or why not)."""
    threshold = ctx.options["vacuum_min_free_ratio"]
    if not ctx.options["force"] and pages.free_ratio < threshold:
        return False, f"free pages {pages.free_ratio:.1%} below the {threshold:.0%} threshold"
    needed = 2 * pages.page_size * pages.page_count
    for directory in {ctx.settings.database_path.parent, ctx.settings.temp_dir}:
        free = shutil.disk_usage(directory).free
        if free < needed:
            return False, (f"not enough disk for VACUUM on {directory}: {free} bytes free, "
                           f"about {needed} needed (twice the database)")
    reason = "forced" if ctx.options["force"] else f"free pages {pages.free_ratio:.1%}"
    return True, reason


def _leftovers(ctx: JobContext) -> list[Leftover]:
    from tcgjobs.backups.tempfiles import find_leftovers

    backup_timeout = ctx.settings.job(get_job("backup-database")).timeout
    older_than = backup_timeout + ctx.options["leftover_margin_seconds"]
    return find_leftovers([ctx.settings.backup_dir, ctx.settings.temp_dir], older_than)


def _checkpoint(db: SqliteDatabase) -> tuple[int, int, int]:
    """``(busy, wal_pages, checkpointed_pages)`` of a TRUNCATE checkpoint."""
    return tuple(db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())


def _vacuum(db: SqliteDatabase) -> float:
    """VACUUM the card database; the seconds it took. The deadline and signals interrupt it."""
    started = time.monotonic()
    db.execute_sql("VACUUM")
    return time.monotonic() - started


def run(ctx: JobContext) -> JobResult:
    path = ctx.settings.database_path
    db = ctx.card_db(readonly=ctx.dry_run)
    # Maintenance on a damaged file could spread the damage, and a success would hide it.
    damage = "; ".join(integrity_problems(db.connection(), quick=True, limit=5))
    if damage:
        return JobResult.failed(f"PRAGMA quick_check found damage, so nothing was changed: {damage} "
                                "(run validate-data-integrity; restore from a backup if confirmed)")
    size_before = database_bytes(path)
    before = _pages(db)
    vacuum, why = _vacuum_decision(ctx, before)
    cutoff = ctx.started_at - timedelta(days=ctx.options["ledger_retention_days"])
    prunable = ctx.prunable_runs(cutoff)
    leftovers = _leftovers(ctx)
    metrics: dict[str, float | int] = {"size_before_bytes": size_before,
                                       "free_page_ratio": round(before.free_ratio, 4)}
    if ctx.dry_run:
        plan = {"vacuum": vacuum, "vacuum_reason": why, "ledger_rows_to_prune": len(prunable),
                "leftover_files": [str(item.path) for item in leftovers]}
        logger.info("dry run: would checkpoint, {} ({}), ANALYZE, prune {} ledger rows, remove {} "
                    "leftover files; nothing written", "VACUUM" if vacuum else "skip VACUUM", why,
                    len(prunable), len(leftovers))
        metrics.update(would_vacuum=int(vacuum), ledger_rows_to_prune=len(prunable),
                       leftover_files=len(leftovers))
        return JobResult(metrics, summary="dry run: nothing written", details=plan)

    busy, _, _ = _checkpoint(db)
    if busy:
        logger.warning("WAL checkpoint could not finish: a reader held the database past the busy timeout")
    ctx.check_cancelled()
    if vacuum:
        logger.info("VACUUM ({}): rewriting {} pages", why, before.page_count)
        logger.info("VACUUM finished in {:.2f}s", _vacuum(db))
        ctx.committed("WAL checkpointed, VACUUM finished")
    else:
        logger.info("VACUUM skipped: {}", why)
    ctx.check_cancelled()
    db.execute_sql("ANALYZE")
    db.execute_sql("PRAGMA optimize")
    busy, _, _ = _checkpoint(db)  # fold VACUUM's and ANALYZE's pages back, truncating the WAL
    ctx.check_cancelled()
    pruned = ctx.prune_runs(prunable)
    ctx.committed(f"WAL checkpointed, {'VACUUM finished, ' if vacuum else ''}ANALYZE done, "
                  f"{pruned} ledger rows pruned", {"ledger_rows_pruned": pruned})
    removed = 0
    for leftover in leftovers:
        logger.info("removing leftover temporary file {} ({} bytes, {:.0f}s old)",
                    leftover.path, leftover.size, leftover.age_s)
        leftover.path.unlink(missing_ok=True)
        removed += 1
    after = _pages(db)
    size_after = database_bytes(path)
    metrics.update(
        size_after_bytes=size_after,
        bytes_reclaimed=max(0, size_before - size_after),
        pages_freed=max(0, before.page_count - after.page_count),
        vacuumed=int(vacuum),
        wal_checkpoint_busy=int(bool(busy)),
        ledger_rows_pruned=pruned,
        leftover_files_removed=removed,
    )
    summary = (f"{'vacuumed' if vacuum else 'no VACUUM'}; {metrics['bytes_reclaimed']} bytes reclaimed, "
               f"{pruned} ledger rows and {removed} leftover files removed")
    return JobResult(metrics, summary=summary)
