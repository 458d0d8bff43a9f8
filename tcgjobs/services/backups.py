"""Backup files: names, listing, sidecars (``.sha256`` and a JSON manifest) and verification.

A backup is one file in BACKUP_DIR named like the original's
(``pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz``: the UTC ISO time with ``:`` and ``.``
replaced by ``-``), compressed with gzip (``.gz``) or zstd (``.zst``); the original's uncompressed
``.sqlite3.db`` leftovers are recognised too. Beside it:

* ``<name>.sha256``: ``<hex>  <name>``, accepted by ``sha256sum -c``;
* ``<name>.manifest.json``: what was backed up and the result of its last verification.

Listing is cheap (names, ``stat`` and the small sidecars; nothing is decompressed), so the health
check can ask for the age of the newest verified backup every few minutes. A backup's status is
"verified" when its manifest records a passed verification and the file's size and checksum
sidecar still agree with it, "corrupt" when the recorded verification failed or they disagree,
and "unverified" otherwise (the original's backups, or one whose verification never finished).
:func:`verify_file` does the expensive check: re-hash, decompress to a temporary file, integrity
check, row counts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import sqlite3
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import zstandard

from tcgjobs.services.tempfiles import TEMP_PREFIX, temp_path

PREFIX = "pokemon-data-"
BASE_SUFFIX = ".sqlite3.db"
EXTENSIONS = {"gzip": ".gz", "zstd": ".zst", "none": ""}
CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
CHUNK = 1 << 20

#: Temporary-file purposes of the backup code; leftovers with these purposes are ours to remove.
TEMP_PURPOSES = ("backup", "backup-snapshot", "backup-verify", "backup-sidecar", "restore")

_NAME = re.compile(r"^pokemon-data-(?P<stamp>.+?)\.sqlite3\.db(?P<ext>\.gz|\.zst)?$")
_STAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z$")


def backup_name(created_at: datetime, compression: str = "gzip") -> str:
    """The file name of a backup taken at ``created_at`` (the original's scheme, UTC)."""
    moment = created_at.astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H-%M-%S-") + f"{moment.microsecond // 1000:03d}Z"
    return f"{PREFIX}{stamp}{BASE_SUFFIX}{EXTENSIONS[compression]}"


def parse_name(name: str) -> tuple[datetime | None, str] | None:
    """``(created_at or None if the time part is unparsable, compression)`` for a backup file name,
    or None when ``name`` is not a backup (a sidecar, a temporary file, anything else)."""
    match = _NAME.match(name)
    if not match:
        return None
    compression = {".gz": "gzip", ".zst": "zstd", None: "none"}[match["ext"]]
    stamp = _STAMP.match(match["stamp"])
    if not stamp:
        return None, compression
    y, mo, d, h, mi, s, ms = (int(part) for part in stamp.groups())
    try:
        return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=UTC), compression
    except ValueError:
        return None, compression


def is_backup_name(name: str) -> bool:
    return parse_name(name) is not None


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def sidecars(path: Path) -> tuple[Path, Path]:
    return checksum_path(path), manifest_path(path)


@dataclass(frozen=True)
class Backup:
    """One backup file as listed: cheap facts only (no decompression)."""

    name: str
    path: Path
    created_at: datetime
    size_bytes: int
    compression: str  # gzip | zstd | none
    status: str  # verified | unverified | corrupt
    verified_at: datetime | None
    checksum: str | None = None  # recorded SHA-256 (sidecar or manifest), if any
    reason: str | None = None  # why it is corrupt (or unverified)
    manifest: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def has_sidecars(self) -> bool:
        return any(p.exists() for p in sidecars(self.path))

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "created_at": self.created_at.isoformat(),
                "size_bytes": self.size_bytes, "compression": self.compression, "status": self.status,
                "verified_at": self.verified_at.isoformat() if self.verified_at else None,
                "checksum": self.checksum, "reason": self.reason}


def read_checksum_file(path: Path) -> str | None:
    """The hex digest in a ``.sha256`` sidecar, or None if it is missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split(maxsplit=1)[0].lower() if text.strip() else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest beside backup ``path``, or None if missing or unreadable."""
    try:
        data = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _status(size: int, manifest: dict[str, Any] | None,
            sidecar_sum: str | None) -> tuple[str, datetime | None, str | None]:
    """``(status, verified_at, reason)`` from the recorded facts, without reading the backup."""
    if manifest is None:
        return "unverified", None, None
    verification = manifest.get("verification") or {}
    recorded = verification.get("status")
    verified_at = _parse_time(verification.get("verified_at"))
    if recorded == "corrupt":
        return "corrupt", verified_at, verification.get("reason") or "verification failed"
    if recorded != "verified":
        return "unverified", None, verification.get("reason")
    if manifest.get("compressed_bytes") not in (None, size):
        return "corrupt", verified_at, (f"size {size} differs from the recorded "
                                        f"{manifest.get('compressed_bytes')} bytes")
    if sidecar_sum and manifest.get("sha256") and sidecar_sum != manifest["sha256"]:
        return "corrupt", verified_at, "the .sha256 sidecar disagrees with the manifest"
    return "verified", verified_at, None


def describe(path: Path) -> Backup | None:
    """The :class:`Backup` for one file, or None if it is not a backup or has disappeared."""
    parsed = parse_name(path.name)
    if parsed is None:
        return None
    created_at, compression = parsed
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if created_at is None:
        created_at = datetime.fromtimestamp(stat.st_mtime, UTC)
    manifest = read_manifest(path)
    sidecar_sum = read_checksum_file(checksum_path(path))
    status, verified_at, reason = _status(stat.st_size, manifest, sidecar_sum)
    checksum = sidecar_sum or (manifest or {}).get("sha256")
    return Backup(path.name, path, created_at, stat.st_size, compression, status, verified_at,
                  checksum, reason, manifest)


def list_backups(backup_dir: Path) -> list[Backup]:
    """Every backup in ``backup_dir``, newest first. Sidecars and temporary files are never listed.

    Cheap: names, ``stat`` and the small sidecars. A missing directory has no backups.
    """
    try:
        entries = [entry for entry in os.scandir(backup_dir) if entry.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [describe(Path(entry.path)) for entry in entries]
    backups = [backup for backup in found if backup is not None]
    return sorted(backups, key=lambda b: (b.created_at, b.compression != "none", b.name), reverse=True)


# --- writing files ---------------------------------------------------------------------------

def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_private(path: Path) -> IO[bytes]:
    """A new file opened for writing with mode 0600 (fails if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def write_atomically(path: Path, data: bytes) -> None:
    """Write a small file through a temporary name, fsync, rename: readers see old or new."""
    temp = temp_path(path.parent, "backup-sidecar")
    try:
        with open_private(temp) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_checksum(path: Path, digest: str) -> None:
    """The ``sha256sum -c``-compatible sidecar of backup ``path``."""
    write_atomically(checksum_path(path), f"{digest}  {path.name}\n".encode())


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    body = json.dumps({"format": MANIFEST_FORMAT, **manifest}, indent=2, sort_keys=False, default=str)
    write_atomically(manifest_path(path), (body + "\n").encode())


def remove_backup(path: Path) -> int:
    """Delete a backup and its sidecars. Returns the bytes freed. Raises OSError on failure."""
    freed = 0
    for candidate in (path, *sidecars(path)):
        try:
            freed += candidate.stat().st_size
            candidate.unlink()
        except FileNotFoundError:
            continue
    fsync_dir(path.parent)
    return freed


# --- streams ---------------------------------------------------------------------------------

class HashingWriter:
    """A write-only file wrapper that hashes and counts everything written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class HashingReader:
    """A read-only file wrapper that hashes and counts everything read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class ParallelGzipWriter:
    """Compresses 1 MiB blocks as independent gzip members on several cores (like ``pigz -i``).

    A multi-member gzip file is standard (RFC 1952; ``gunzip`` and every library read it); zlib
    releases the GIL, so threads use every core. At most ``workers + 1`` blocks are in flight, so
    memory stays bounded whatever the database's size.
    """

    BLOCK = CHUNK

    def __init__(self, raw: Any, level: int, workers: int) -> None:
        self.raw, self.level = raw, level
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tcgjobs-gzip")
        self.pending: deque[Future[bytes]] = deque()
        self.limit = workers + 1
        self.buffer = bytearray()

    def _submit(self, block: bytes) -> None:
        self.pending.append(self.pool.submit(gzip.compress, block, self.level, mtime=0))
        while len(self.pending) >= self.limit:
            self.raw.write(self.pending.popleft().result())

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) >= self.BLOCK:
            self._submit(bytes(self.buffer[: self.BLOCK]))
            del self.buffer[: self.BLOCK]
        return len(data)

    def close(self) -> None:
        try:
            if self.buffer or not self.pending:
                self._submit(bytes(self.buffer))
                self.buffer.clear()
            while self.pending:
                self.raw.write(self.pending.popleft().result())
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def compressor(raw: Any, compression: str, level: int | None = None) -> Iterator[Any]:
    """A writable stream compressing into ``raw``: gzip members without name or time, compressed
    on up to four cores, or zstd."""
    if compression == "gzip":
        out = ParallelGzipWriter(raw, level or 6, _workers())
        try:
            yield out
        except BaseException:
            out.pool.shutdown(wait=True, cancel_futures=True)
            raise
        out.close()
    elif compression == "zstd":
        # single-threaded on purpose: zstd's worker threads need ~50 MB of buffers, and one core
        # already compresses several times faster than gzip -6
        cctx = zstandard.ZstdCompressor(level=level or 3, write_checksum=True)
        with cctx.stream_writer(raw, closefd=False) as out:
            yield out
    else:
        yield raw


@contextmanager
def decompressor(raw: Any, compression: str) -> Iterator[Any]:
    """A readable stream decompressing ``raw``."""
    if compression == "gzip":
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield stream
    elif compression == "zstd":
        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                        closefd=False) as stream:
            yield stream
    else:
        yield raw


def copy_stream(source: Any, target: Any, check: Callable[[], None] | None = None) -> int:
    """Copy in bounded chunks; ``check`` (cancellation) runs between chunks. Returns bytes copied."""
    total = 0
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return total
        target.write(chunk)
        total += len(chunk)
        if check is not None:
            check()


# --- SQLite facts ----------------------------------------------------------------------------

def open_snapshot(path: Path) -> sqlite3.Connection:
    """A read-only connection to a backup copy that never creates ``-wal``/``-shm`` files."""
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1", uri=True)


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table (every table, so any database can be verified), sorted by name."""
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def integrity_problems(conn: sqlite3.Connection, limit: int = 10) -> list[str]:
    """``PRAGMA integrity_check`` messages; empty when the database is sound."""
    rows = [row[0] for row in conn.execute(f"PRAGMA integrity_check({int(limit)})")]
    return [] if rows == ["ok"] else rows


# --- verification ----------------------------------------------------------------------------

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
                check: Callable[[], None] | None = None) -> Verification:
    """Read ``path`` back from disk in one pass (hashing and decompressing it into a temporary file
    in ``scratch_dir``), then ``PRAGMA integrity_check`` and count the rows of the copy.

    Compares with ``expected_sha256`` / ``expected_counts`` (defaulting to what the sidecars
    record). Returns a Verification (``ok`` False: corrupt, with the reason). With ``keep_copy``
    the decompressed copy is kept and returned (the caller removes it). Raises Unverifiable when
    the check itself could not be done, FileNotFoundError when the backup is gone.
    """
    parsed = parse_name(path.name)
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

    def result(ok: bool, reason: str | None, reader: HashingReader, size: int,
               counts: dict[str, int] | None = None) -> Verification:
        return Verification(ok, reason, reader.sha256.hexdigest(), reader.size, size, counts or {},
                            datetime.now(UTC), copy if keep_copy and ok else None)

    success = False
    try:
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
                reason = f"cannot decompress: {exc}"
                if expected_sha256 and reader.sha256.hexdigest() != expected_sha256:
                    reason = _mismatch(expected_sha256, reader.sha256.hexdigest()) + f" ({reason})"
                return result(False, reason, reader, 0)
            except OSError as exc:
                raise Unverifiable(f"cannot check {path.name}: {exc.strerror or exc} "
                                   f"({exc.filename or scratch_dir})") from exc
        digest = reader.sha256.hexdigest()
        if expected_sha256 and digest != expected_sha256:
            return result(False, _mismatch(expected_sha256, digest), reader, size)
        try:
            conn = open_snapshot(copy)
            try:
                problems = integrity_problems(conn)
                counts = {} if problems else row_counts(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return result(False, f"not a valid SQLite database: {exc}", reader, size)
        if problems:
            return result(False, "integrity_check failed: " + "; ".join(problems[:3]), reader, size)
        if expected_counts and counts != expected_counts:
            return result(False, f"row counts {counts} differ from the recorded {expected_counts}",
                          reader, size, counts)
        success = True
        return result(True, None, reader, size, counts)
    finally:
        if not (keep_copy and success):
            copy.unlink(missing_ok=True)


def _mismatch(recorded: str, actual: str) -> str:
    return f"checksum mismatch: recorded {recorded[:12]}…, file has {actual[:12]}…"


def record_verification(backup_path: Path, verification: Verification,
                        extra: dict[str, Any] | None = None) -> None:
    """Store a verification's result in the manifest (creating one for the original's backups) and,
    for a sound backup without a checksum sidecar, write the sidecar."""
    manifest = read_manifest(backup_path) or {}
    parsed = parse_name(backup_path.name)
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


def temp_leftovers(directory: Path, only_dead: bool) -> list[Path]:
    """Temporary files of the backup code in ``directory`` (our purposes only). With
    ``only_dead``, only those whose creating process is no longer running on this host."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
            continue
        rest = entry.name[len(TEMP_PREFIX):]
        purpose = next((p for p in sorted(TEMP_PURPOSES, key=len, reverse=True)
                        if rest.startswith(p + "-")), None)
        if purpose is None:
            continue
        pid_text = rest[len(purpose) + 1:].split("-", 1)[0]
        if only_dead and pid_text.isdigit() and _alive(int(pid_text)):
            continue
        found.append(Path(entry.path))
    return sorted(found)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hash_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in bounded chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def orphan_sidecars(backup_dir: Path) -> list[Path]:
    """``.sha256`` and manifest files whose backup no longer exists."""
    try:
        names = {entry.name for entry in os.scandir(backup_dir)}
    except (FileNotFoundError, NotADirectoryError):
        return []
    orphans = []
    for name in sorted(names):
        for suffix in (CHECKSUM_SUFFIX, MANIFEST_SUFFIX):
            if name.endswith(suffix) and is_backup_name(name[: -len(suffix)]) \
                    and name[: -len(suffix)] not in names:
                orphans.append(backup_dir / name)
    return orphans
