"""Restoring a backup: :func:`restore_backup` verifies it, then puts it in place without ever
showing a mix, and checks the result (integrity_check, the backup's row counts).

* To a new path: the backup is decompressed into a temporary name in the target's directory,
  verified there (checksum, integrity, row counts), fsynced and renamed: the path holds either
  nothing or the whole restored database.
* Over an existing database (``--force``), in particular the live one, by
  :mod:`tcgjobs.backups.overwrite`: the verified copy is written into it through SQLite's backup
  API in one write transaction, and a safety snapshot of the current database
  (:func:`tcgjobs.backups.create.create_backup` under a ``pre-restore-...`` name, so that neither
  rotation nor the backup-age check takes it for a regular backup) is read under that same write
  lock, so no commit of another process falls between the two. Readers that hold the database
  open (the platform's APIs) see the old or the new content, never a mix, and stale
  ``-wal``/``-shm`` files are handled by SQLite itself instead of being left next to a swapped
  file. A file that is not an SQLite database at all is replaced atomically instead.

The caller holds the backup-directory lock, and the card-database lock when the target is the
live database.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from tcgjobs.backups.catalog import SAFETY_ORIGIN
from tcgjobs.backups.create import DISK_FULL_ERRNOS, DiskFull, create_backup
from tcgjobs.backups.overwrite import EXACT, SafetySnapshot, overwrite
from tcgjobs.backups.tempfiles import fsync_dir
from tcgjobs.backups.verify import (
    Unverifiable,
    Verification,
    open_snapshot,
    record_verification,
    row_counts,
    verify_file,
)
from tcgjobs.config import Settings
from tcgjobs.db.sqlite import integrity_problems
from tcgjobs.errors import JobFailed, ProblemsFound


def _verified_copy(source: Path, scratch: Path, check: Callable[[], None] | None) -> Verification:
    """The backup decompressed and proven in ``scratch`` (the caller removes the copy). Raises
    ProblemsFound when it is corrupt, JobFailed/DiskFull when it cannot be checked."""
    try:
        result = verify_file(source, scratch, keep_copy=True, check=check)
    except Unverifiable as exc:
        raise JobFailed(f"cannot restore {source.name}: it could not be verified ({exc})") from exc
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFull(f"not enough disk space in {scratch} to restore {source.name}") from exc
        raise
    try:
        record_verification(source, result)
    except OSError as exc:
        logger.warning("could not record the verification of {}: {}", source.name, exc)
    if not result.ok:
        raise ProblemsFound(f"{source.name} is corrupt, not restoring it: {result.reason}")
    return result


def _safety_snapshot(target: Path, settings: Settings, check: Callable[[], None] | None,
                     committed: Callable[[str], None] | None) -> SafetySnapshot:
    """The safety snapshot of ``target``, taken from the connection the restore gives it."""

    def published(path: Path) -> None:
        if committed:
            committed(f"the safety snapshot {path.name} was written; {target} was not restored")

    def take(conn: sqlite3.Connection) -> Path:
        try:
            report = create_backup(conn, target, settings.backup_dir, settings.temp_dir,
                                   origin=f"{SAFETY_ORIGIN} before a restore over {target}",
                                   check=check, safety_snapshot=True, published=published)
        except JobFailed as exc:
            raise JobFailed(f"the safety snapshot of {target} failed, nothing was restored: {exc} "
                            "(use --no-safety-snapshot to restore over a damaged database)") from exc
        logger.info("safety snapshot of {} written to {}", target, report.path)
        return report.path

    return take


def _check_target(conn: sqlite3.Connection, expected: dict[str, int], target: Path) -> None:
    problems = integrity_problems(conn)
    if problems:
        raise JobFailed(f"{target} failed integrity_check after the restore: {'; '.join(problems[:3])}")
    counts = row_counts(conn)
    if counts != expected:
        raise JobFailed(f"{target} holds {counts} rows after the restore, expected {expected}")


def restore_backup(source: Path, target: Path, settings: Settings, *, safety_snapshot: bool,
                   check: Callable[[], None] | None = None,
                   committed: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Restore backup ``source`` to ``target`` (see the module doc). Returns a report.

    ``committed`` is told, the moment the target holds the restored database and before that is
    checked, what has been done (for a run stopped from then on). Raises ProblemsFound when the
    backup is corrupt (nothing changed), JobFailed/DiskFull when it could not be done, Cancelled
    via ``check`` (nothing changed).
    """

    def done(snapshot: Path | None) -> None:
        if committed:
            committed(f"{source.name} restored to {target}"
                      + (f"; the previous database is in the safety snapshot {snapshot.name}"
                         if snapshot else ""))

    existing = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = settings.temp_dir if existing else target.parent
    result = _verified_copy(source, scratch, check)
    copy = result.restored_copy
    assert copy is not None
    report: dict[str, Any] = {"backup": str(source), "target": str(target), "row_counts": result.row_counts,
                              "sha256": result.sha256, "safety_snapshot": None}
    try:
        if existing:
            safety = _safety_snapshot(target, settings, check, committed) if safety_snapshot else None
            over = overwrite(copy, target, result.row_counts, busy_timeout_s=settings.busy_timeout_ms / 1000,
                             safety=safety, check=check, committed=done)
            report.update(method=over.method, check=over.check, row_counts_checked=over.row_counts,
                          safety_snapshot=str(over.safety_snapshot) if over.safety_snapshot else None)
        else:
            _rename_into_place(copy, target)
            done(None)
            conn = open_snapshot(target)
            try:
                _check_target(conn, result.row_counts, target)
            finally:
                conn.close()
            report.update(method="written to a new file and renamed atomically", check=EXACT,
                          row_counts_checked=result.row_counts)
    finally:
        copy.unlink(missing_ok=True)
    logger.info("restored {} to {} ({})", source.name, target, report["method"])
    return report


def _rename_into_place(copy: Path, target: Path) -> None:
    """Give the verified copy the permissions of a new file and rename it to ``target``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(copy, 0o666 & ~umask)
    os.rename(copy, target)
    fsync_dir(target.parent)
