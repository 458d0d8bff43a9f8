"""Proving a backup: read it back from disk (hashing and decompressing it in one pass into a
temporary file), ``PRAGMA integrity_check`` the copy and compare its checksum and row counts with
what its sidecars record; then record the result in the manifest, so that listing stays cheap.

Also the pieces other modules need for the same proof: :func:`row_counts` (recorded when a backup
is created, compared after a restore), :func:`hash_file` (rotation's re-check of a verified backup)
and :func:`open_snapshot` (a read-only look at a copy).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import zstandard

from tcgjobs.backups.catalog import read_checksum_file, read_manifest, write_checksum, write_manifest
from tcgjobs.backups.compression import CHUNK, HashingReader, copy_stream, decompressor
from tcgjobs.backups.names import BASE_SUFFIX, checksum_path, parse_name
from tcgjobs.backups.tempfiles import open_private, temp_path
from tcgjobs.db.sqlite import integrity_problems


def open_snapshot(path: Path) -> sqlite3.Connection:
    """A read-only connection to a backup copy that never creates ``-wal``/``-shm`` files."""
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1", uri=True)


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table (every table, so any database can be verified), sorted by name."""
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def hash_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in bounded chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_mismatch(recorded: str, actual: str) -> str:
    """Why a backup whose bytes hash to ``actual`` is corrupt (the reason recorded and shown)."""
    return f"checksum mismatch: recorded {recorded[:12]}…, file has {actual[:12]}…"


class Unverifiable(Exception):
    """The backup could not be checked (no room for the temporary copy, unreadable file...);
    says nothing about whether it is sound."""


@dataclass
class Verification:
    """The outcome of :func:`verify_file`. ``ok`` False means the backup is corrupt."""

    ok: bool
    reason: str | None
    sha256: str
    compressed_bytes: int
    uncompressed_bytes: int
    row_counts: dict[str, int]
    verified_at: datetime
    restored_copy: Path | None = None  # the decompressed copy, when kept for a restore

    def record(self) -> dict[str, Any]:
        return {"status": "verified" if self.ok else "corrupt", "verified_at": self.verified_at.isoformat(),
                "reason": self.reason, "sha256": self.sha256, "row_counts": self.row_counts,
                "checks": ["sha256", "decompress", "integrity_check", "row_counts"]}


def verify_file(path: Path, scratch_dir: Path, *, expected_sha256: str | None = None,
                expected_counts: dict[str, int] | None = None, keep_copy: bool = False,
                check: Callable[[], None] | None = None,
                compression: str | None = None) -> Verification:
    """Read ``path`` back from disk in one pass (hashing and decompressing it into a temporary file
    in ``scratch_dir``), then ``PRAGMA integrity_check`` and count the rows of the copy.

    Compares with ``expected_sha256`` / ``expected_counts`` (defaulting to what the sidecars
    record). ``compression`` defaults to what the name says (a staged backup's temporary name
    says nothing, so its writer passes it). Returns a Verification (``ok`` False: corrupt, with
    the reason). With ``keep_copy`` the decompressed copy is kept and returned (the caller
    removes it). Raises Unverifiable when the check itself could not be done, FileNotFoundError
    when the backup is gone.
    """
    if compression is None:
        parsed = parse_name(path.name, safety=True)
        compression = parsed[1] if parsed else "gzip"
    manifest = read_manifest(path) or {}
    if expected_sha256 is None:
        expected_sha256 = read_checksum_file(checksum_path(path)) or manifest.get("sha256")
    if expected_counts is None:
        expected_counts = manifest.get("row_counts")
    try:
        scratch_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unverifiable(f"cannot use {scratch_dir} for the temporary copy: {exc.strerror or exc}") from exc
    copy = temp_path(scratch_dir, "restore" if keep_copy else "backup-verify", BASE_SUFFIX)
    success = False
    try:
        reader, size, reason = _decompress(path, copy, compression, scratch_dir, check)
        digest = reader.sha256.hexdigest()
        if expected_sha256 and digest != expected_sha256:
            mismatch = checksum_mismatch(expected_sha256, digest)
            reason = f"{mismatch} ({reason})" if reason else mismatch
        counts: dict[str, int] = {}
        if reason is None:
            reason, counts = _examine_copy(copy, expected_counts)
        success = reason is None
        return Verification(success, reason, digest, reader.size, size, counts, datetime.now(UTC),
                            copy if keep_copy and success else None)
    finally:
        if not (keep_copy and success):
            copy.unlink(missing_ok=True)


def _decompress(path: Path, copy: Path, compression: str, scratch_dir: Path,
                check: Callable[[], None] | None) -> tuple[HashingReader, int, str | None]:
    """Hash ``path`` and decompress it into the new file ``copy`` in one pass (the whole file is
    hashed even when decompression fails). Returns ``(reader, uncompressed bytes, why it could not
    be decompressed or None)``. Raises Unverifiable when the copy cannot be written."""
    with open(path, "rb") as raw:
        reader = HashingReader(raw)
        try:
            with open_private(copy) as out, decompressor(reader, compression) as stream:
                size = copy_stream(stream, out, check)
                out.flush()
                os.fsync(out.fileno())
            reader.drain()
        except (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError) as exc:
            reader.drain()
            return reader, 0, f"cannot decompress: {exc}"
        except OSError as exc:
            raise Unverifiable(f"cannot check {path.name}: {exc.strerror or exc} "
                               f"({exc.filename or scratch_dir})") from exc
    return reader, size, None


def _examine_copy(copy: Path, expected_counts: dict[str, int] | None) -> tuple[str | None, dict[str, int]]:
    """``(why the decompressed copy is unsound or None, its row counts)``."""
    try:
        conn = open_snapshot(copy)
        try:
            problems = integrity_problems(conn)
            counts = {} if problems else row_counts(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"not a valid SQLite database: {exc}", {}
    if problems:
        return "integrity_check failed: " + "; ".join(problems[:3]), {}
    if expected_counts and counts != expected_counts:
        return f"row counts {counts} differ from the recorded {expected_counts}", counts
    return None, counts


def record_verification(backup_path: Path, verification: Verification,
                        extra: dict[str, Any] | None = None) -> None:
    """Store a verification's result in the manifest (creating one for the original's backups) and,
    for a sound backup without a checksum sidecar, write the sidecar."""
    manifest = read_manifest(backup_path) or {}
    parsed = parse_name(backup_path.name, safety=True)
    created_at, compression = parsed if parsed else (None, "gzip")
    manifest.pop("format", None)
    manifest.setdefault("name", backup_path.name)
    manifest.setdefault("created_at", created_at.isoformat() if created_at else None)
    manifest.setdefault("compression", compression)
    manifest.setdefault("origin", "recognised by name (no manifest; written by the original service)")
    if verification.ok:
        manifest.setdefault("sha256", verification.sha256)
        manifest.setdefault("compressed_bytes", verification.compressed_bytes)
        manifest.setdefault("uncompressed_bytes", verification.uncompressed_bytes)
        manifest.setdefault("row_counts", verification.row_counts)
    manifest["verification"] = verification.record()
    manifest.update(extra or {})
    write_manifest(backup_path, manifest)
    if verification.ok and read_checksum_file(checksum_path(backup_path)) is None:
        write_checksum(backup_path, verification.sha256)
