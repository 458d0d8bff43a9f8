"""Taking a backup: :func:`create_backup` snapshots, checks, compresses, proves and publishes it.

SQLite's online backup API copies the database in one step into a temporary file under
TCGJOBS_TMPDIR (a consistent snapshot at a transaction boundary, including whatever is committed
in the WAL), which is integrity-checked and counted, then streamed through the compressor into a
temporary name in BACKUP_DIR (mode 0600) and fsynced. That file is read back from disk,
decompressed into TCGJOBS_TMPDIR, integrity-checked and counted again
(:mod:`tcgjobs.backups.verify`); only a sound one gets its ``.sha256`` sidecar and its manifest
(saying "verified") and then, last, the atomic rename to its backup name. So no file ever has a
backup name before it is proven. The same function writes the safety snapshot that a restore over
a database takes first. Before any of it, :func:`check_free_space` refuses a backup that cannot fit, and a
disk that fills up anyway becomes :class:`DiskFull` with nothing left behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from tcgjobs import __version__
from tcgjobs.backups.catalog import write_checksum, write_manifest
from tcgjobs.backups.compression import HashingWriter, compressor, copy_stream
from tcgjobs.backups.names import (
    BACKUP,
    BASE_SUFFIX,
    EXTENSIONS,
    SAFETY_SNAPSHOT,
    backup_name,
    safety_snapshot_name,
    sidecars,
)
from tcgjobs.backups.tempfiles import fsync_dir, open_private, temp_path
from tcgjobs.backups.verify import Unverifiable, Verification, row_counts, verify_file
from tcgjobs.db.sqlite import database_bytes, integrity_problems
from tcgjobs.errors import JobFailed

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class DiskFull(JobFailed):
    """Not enough disk space (or a file-size limit) for a backup or restore."""


@dataclass
class BackupReport:
    path: Path
    manifest: dict[str, Any]
    verification: Verification
    metrics: dict[str, float | int]


def check_free_space(needs: list[tuple[Path, int]], reserve_bytes: int) -> None:
    """Raise DiskFull naming the directory when any of ``needs`` (directory, bytes) lacks room.

    Needs on one filesystem add up; ``reserve_bytes`` must stay free besides.
    """
    per_device: dict[int, tuple[Path, int]] = {}
    for directory, amount in needs:
        device = os.stat(directory).st_dev
        first, total = per_device.get(device, (directory, 0))
        per_device[device] = (first, total + amount)
    for directory, amount in per_device.values():
        free = shutil.disk_usage(directory).free
        if free < amount + reserve_bytes:
            raise DiskFull(
                f"not enough disk space in {directory}: {free:,} bytes free, the backup needs about "
                f"{amount:,} bytes (a temporary snapshot and the compressed copy, at most the "
                f"database's size each) plus the {reserve_bytes:,}-byte reserve; nothing was written")


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.DatabaseError):
        # SQLite reports ENOSPC as SQLITE_FULL, but EFBIG (a file-size limit) as a write I/O error
        name = getattr(exc, "sqlite_errorname", "")
        return name in ("SQLITE_FULL", "SQLITE_IOERR_WRITE") or "full" in str(exc).lower()
    return False


def snapshot(source: sqlite3.Connection, target: Path) -> tuple[dict[str, int], list[str]]:
    """Copy ``source`` into the new file ``target`` with the backup API in one step (one read
    transaction: consistent even while others write), switch the copy to a rollback journal so
    it is one self-contained file, and return its ``(row counts, integrity problems)``."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest, pages=-1)
        dest.execute("PRAGMA journal_mode=DELETE")
        problems = integrity_problems(dest)
        counts = row_counts(dest) if not problems else {}
    finally:
        dest.close()
    return counts, problems


@dataclass(frozen=True)
class _Planned:
    """What one backup is to be: its final path, its facts for the manifest."""

    final: Path
    created_at: datetime
    compression: str
    kind: str
    origin: str
    run_id: str | None
    source_path: Path
    source_bytes: int

    def manifest(self, counts: dict[str, int], snapshot_bytes: int, writer: HashingWriter,
                 verification: Verification) -> dict[str, Any]:
        return {
            "name": self.final.name,
            "created_at": self.created_at.isoformat(timespec="milliseconds"),
            "origin": self.origin,
            "kind": self.kind,
            "run_id": self.run_id,
            "source": {"path": str(self.source_path), "size_bytes": self.source_bytes},
            "snapshot_bytes": snapshot_bytes,
            "row_counts": counts,
            "sqlite_version": sqlite3.sqlite_version,
            "tcgjobs_version": __version__,
            "compression": self.compression,
            "compressed_bytes": writer.size,
            "sha256": writer.sha256.hexdigest(),
            "verification": verification.record(),
        }


def create_backup(source: sqlite3.Connection, source_path: Path, backup_dir: Path, temp_dir: Path, *,
                  compression: str = "gzip", reserve_bytes: int = 0, run_id: str | None = None,
                  origin: str = "backup-database", check: Callable[[], None] | None = None,
                  now: datetime | None = None, safety_snapshot: bool = False,
                  published: Callable[[Path], None] | None = None) -> BackupReport:
    """Snapshot, check, compress, verify and publish one backup of ``source`` (with
    ``safety_snapshot``, under a safety snapshot's name, which rotation and freshness ignore).

    The backup is proven while it still has its temporary name, and the rename that publishes it
    comes last, after its sidecars: a run that is stopped (deadline, signal) or fails at any point
    before leaves no file under a backup name, and one that is killed leaves only temporary files
    and orphaned sidecars, which the next backup and rotation remove.

    ``published`` is called with the backup's path the moment it has its name (a run stopped from
    then on has published it). Returns the report of the published, verified backup. Raises
    DiskFull (nothing left behind),
    JobFailed when the snapshot fails its integrity check or the written file fails verification
    (nothing published), Cancelled via ``check``.
    """
    backup_dir.mkdir(parents=True, exist_ok=True)
    temp_dir.mkdir(parents=True, exist_ok=True)
    size = database_bytes(source_path)
    check_free_space([(temp_dir, size), (backup_dir, size)], reserve_bytes)
    created_at = (now or datetime.now(UTC)).astimezone(UTC)
    name = safety_snapshot_name if safety_snapshot else backup_name
    final = backup_dir / name(created_at, compression)
    if final.exists():
        raise JobFailed(f"{final.name} already exists; not overwriting a backup")
    planned = _Planned(final, created_at, compression, SAFETY_SNAPSHOT if safety_snapshot else BACKUP,
                       origin, run_id, source_path, size)
    return _write(source, planned, temp_dir, check, published)


def _write(source: sqlite3.Connection, planned: _Planned, temp_dir: Path,
           check: Callable[[], None] | None, on_published: Callable[[Path], None] | None) -> BackupReport:
    """Stage, prove, describe and then publish ``planned`` (see :func:`create_backup`)."""
    clock = time.monotonic()
    final = planned.final
    snap = temp_path(temp_dir, "backup-snapshot", BASE_SUFFIX)
    staged = temp_path(final.parent, "backup", EXTENSIONS[planned.compression])
    published = False
    try:
        counts, snapshot_bytes, writer = _stage(source, snap, staged, planned.compression, check)
        written_s = time.monotonic() - clock
        verification = _prove(staged, final.name, temp_dir, writer.sha256.hexdigest(), counts,
                              planned.compression, check)
        manifest = planned.manifest(counts, snapshot_bytes, writer, verification)
        write_checksum(final, manifest["sha256"])
        write_manifest(final, manifest)
        if check:
            check()
        os.rename(staged, final)
        published = True
        if on_published:
            on_published(final)
        fsync_dir(final.parent)
    except BaseException as exc:
        if not published:
            _discard(staged, snap, final)
        explained = _explained(exc, planned.source_path)
        if explained is exc:
            raise
        raise explained from exc
    logger.info("{} verified (checksum, decompression, integrity_check, row counts) and published",
                final.name)
    metrics = _metrics(manifest, written_s, time.monotonic() - clock)
    return BackupReport(final, manifest, verification, metrics)


def _discard(staged: Path, snap: Path, final: Path) -> None:
    """Remove what an unpublished backup left: its temporary files and the sidecars already
    written under its final name (the backup itself never got that name)."""
    for path in (staged, snap, *sidecars(final)):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # the original error matters more; cleanup finds it later
            logger.warning("could not remove {}: {}", path, exc)


def _explained(exc: BaseException, source_path: Path) -> BaseException:
    """``exc`` as the error a caller acts on: a full disk becomes DiskFull, an SQLite error while
    taking the snapshot JobFailed; anything else (Cancelled, JobFailed ...) stays as it is."""
    if _disk_full(exc):
        return DiskFull(f"not enough disk space (or a file-size limit) while writing the backup "
                        f"({exc}); the partial files were removed")
    if isinstance(exc, sqlite3.DatabaseError):
        return JobFailed(f"cannot take a snapshot of {source_path}: {exc}")
    return exc


def _stage(source: sqlite3.Connection, snap: Path, staged: Path, compression: str,
           check: Callable[[], None] | None) -> tuple[dict[str, int], int, HashingWriter]:
    """Snapshot and check ``source`` into ``snap``, compress it into ``staged`` and remove ``snap``.

    Returns ``(row counts, snapshot bytes, the hashing writer)``. Raises JobFailed when the
    snapshot fails its integrity check (the live database is damaged).
    """
    counts, problems = snapshot(source, snap)
    if problems:
        raise JobFailed("the snapshot failed PRAGMA integrity_check, so the live database is "
                        "damaged; no backup written: " + "; ".join(problems[:3]))
    snapshot_bytes = snap.stat().st_size
    if check:
        check()
    writer = _compress(snap, staged, compression, check)
    snap.unlink()
    return counts, snapshot_bytes, writer


def _prove(staged: Path, name: str, temp_dir: Path, digest: str, counts: dict[str, int],
           compression: str, check: Callable[[], None] | None) -> Verification:
    """Read the staged file back from disk and prove it (checksum, decompression, integrity_check,
    row counts). Raises JobFailed, naming the backup ``name``, when it is unsound or cannot be
    checked: then it is not published."""
    try:
        verification = verify_file(staged, temp_dir, expected_sha256=digest, expected_counts=counts,
                                   check=check, compression=compression)
    except Unverifiable as exc:
        raise JobFailed(f"{name} was written but could not be verified, so it was not "
                        f"published: {exc}") from exc
    if not verification.ok:
        raise JobFailed(f"{name} failed verification right after writing, so it was not "
                        f"published: {verification.reason}")
    return verification


def _compress(snap: Path, staged: Path, compression: str,
              check: Callable[[], None] | None) -> HashingWriter:
    """Stream ``snap`` through the compressor into the new private file ``staged`` and fsync it."""
    with open(snap, "rb") as raw_in, open_private(staged) as raw_out:
        writer = HashingWriter(raw_out)
        with compressor(writer, compression) as stream:
            copy_stream(raw_in, stream, check)
        raw_out.flush()
        os.fsync(raw_out.fileno())
    return writer


def _metrics(manifest: dict[str, Any], written_s: float, duration_s: float) -> dict[str, float | int]:
    counts, plain, packed = manifest["row_counts"], manifest["snapshot_bytes"], manifest["compressed_bytes"]
    return {
        "backup_created": 1,
        "backup_verified": int(manifest["verification"]["status"] == "verified"),
        "source_bytes": manifest["source"]["size_bytes"],
        "uncompressed_bytes": plain,
        "backup_size_bytes": packed,
        "compression_ratio": round(packed / plain, 4) if plain else 0.0,
        "rows_total": sum(counts.values()),
        **{f"rows_{table}": count for table, count in counts.items()},
        "write_seconds": round(written_s, 3),
        "duration_seconds": round(duration_s, 3),
    }

