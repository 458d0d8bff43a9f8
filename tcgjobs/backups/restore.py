"""Restoring a backup: :func:`restore_backup` verifies it, then puts it in place without ever
showing a mix, and checks the result (integrity_check, the backup's row counts).

* To a new path: the backup is decompressed into a temporary name in the target's directory,
  verified there (checksum, integrity, row counts), fsynced and renamed: the path holds either
  nothing or the whole restored database.
* Over an existing database (``--force``), in particular the live one: a safety snapshot of the
  current database is taken first (:func:`tcgjobs.backups.create.create_backup` under a
  ``pre-restore-...`` name, so that neither rotation nor the backup-age check takes it for a
  regular backup), then the verified copy is written into it through SQLite's backup API inside
  one write transaction. Readers that hold the database open (the platform's APIs) see the old or
  the new content, never a mix, and stale ``-wal``/``-shm`` files are handled by SQLite itself
  instead of being left next to a swapped file.
* Over a file that is not an SQLite database at all (no reader can be using it): the file is
  replaced atomically, after its stale ``-wal``/``-shm`` are removed.

The caller holds the backup-directory lock, and the card-database lock when the target is the
live database.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from loguru import logger

from tcgjobs.backups.catalog import SAFETY_ORIGIN
from tcgjobs.backups.compression import copy_stream
from tcgjobs.backups.create import DISK_FULL_ERRNOS, DiskFull, create_backup
from tcgjobs.backups.names import BASE_SUFFIX
from tcgjobs.backups.tempfiles import fsync_dir, open_private, temp_path
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


def _verified_copy(source: Path, scratch: Path) -> Verification:
    try:
        result = verify_file(source, scratch, keep_copy=True)
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


def _safety_snapshot(target: Path, settings: Settings) -> Path:
    try:
        conn = sqlite3.connect(f"file:{target.resolve()}?mode=ro", uri=True,
                               timeout=settings.busy_timeout_ms / 1000)
    except sqlite3.Error as exc:
        raise JobFailed(f"cannot open {target} for the safety snapshot: {exc}") from exc
    try:
        report = create_backup(conn, target, settings.backup_dir, settings.temp_dir,
                               origin=f"{SAFETY_ORIGIN} before a restore over {target}",
                               safety_snapshot=True)
    except JobFailed as exc:
        raise JobFailed(f"the safety snapshot of {target} failed, nothing was restored: {exc} "
                        "(use --no-safety-snapshot to restore over a damaged database)") from exc
    finally:
        conn.close()
    logger.info("safety snapshot of {} written to {}", target, report.path)
    return report.path


def _check_target(conn: sqlite3.Connection, expected: dict[str, int], target: Path) -> None:
    problems = integrity_problems(conn)
    if problems:
        raise JobFailed(f"{target} failed integrity_check after the restore: {'; '.join(problems[:3])}")
    counts = row_counts(conn)
    if counts != expected:
        raise JobFailed(f"{target} holds {counts} rows after the restore, expected {expected}")


def restore_backup(source: Path, target: Path, settings: Settings, *,
                   safety_snapshot: bool) -> dict[str, Any]:
    """Restore backup ``source`` to ``target`` (see the module doc). Returns a report.

    Raises ProblemsFound when the backup is corrupt (nothing changed), JobFailed/DiskFull when it
    could not be done.
    """
    existing = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = settings.temp_dir if existing else target.parent
    result = _verified_copy(source, scratch)
    copy = result.restored_copy
    assert copy is not None
    report: dict[str, Any] = {"backup": str(source), "target": str(target), "row_counts": result.row_counts,
                              "sha256": result.sha256, "safety_snapshot": None}
    try:
        if not existing:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(copy, 0o666 & ~umask)
            os.rename(copy, target)
            fsync_dir(target.parent)
            report["method"] = "written to a new file and renamed atomically"
        else:
            if safety_snapshot:
                report["safety_snapshot"] = str(_safety_snapshot(target, settings))
            report["method"] = _copy_into(copy, target, settings)
        conn = open_snapshot(target) if not existing else sqlite3.connect(target)
        try:
            _check_target(conn, result.row_counts, target)
        finally:
            conn.close()
    finally:
        copy.unlink(missing_ok=True)
    logger.info("restored {} to {} ({})", source.name, target, report["method"])
    return report


def _copy_into(copy: Path, target: Path, settings: Settings) -> str:
    """Write ``copy`` into the existing database ``target``; returns how."""
    src = open_snapshot(copy)
    dest = sqlite3.connect(target, timeout=settings.busy_timeout_ms / 1000)
    try:
        src.backup(dest, pages=-1)
        return "copied into the existing database with SQLite's backup API"
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_NOTADB":
            raise JobFailed(f"copying into {target} failed, the database is unchanged: {exc}") from exc
    finally:
        src.close()
        dest.close()
    _replace_damaged(copy, target)
    return "replaced the damaged file (not an SQLite database) atomically"


def _replace_damaged(copy: Path, target: Path) -> None:
    """``target`` is not a database at all, so no reader can be using it: swap the file, after
    removing its stale ``-wal``/``-shm`` (SQLite would otherwise replay that WAL into the new file)."""
    staged = temp_path(target.parent, "restore", BASE_SUFFIX)
    try:
        with open(copy, "rb") as source, open_private(staged) as out:
            copy_stream(source, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staged, stat.S_IMODE(target.stat().st_mode))
        for suffix in ("-wal", "-shm"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(staged, target)
        fsync_dir(target.parent)
    finally:
        staged.unlink(missing_ok=True)
