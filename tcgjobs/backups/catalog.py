"""Backup files: names, listing, sidecars (``.sha256`` and a JSON manifest) and verification.

A backup is one file in BACKUP_DIR named like the original's
(``pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz``: the UTC ISO time with ``:`` and ``.``
replaced by ``-``), compressed with gzip (``.gz``) or zstd (``.zst``); the original's uncompressed
``.sqlite3.db`` leftovers are recognised too. Beside it:

* ``<name>.sha256``: ``<hex>  <name>``, accepted by ``sha256sum -c``;
* ``<name>.manifest.json``: what was backed up and the result of its last verification.

A **safety snapshot** (taken by ``backup restore --force`` before it overwrites a database) has
the same format, sidecars included, but its name starts with ``pre-restore-``
(``pre-restore-pokemon-data-<time>.sqlite3.db.gz``), and :func:`list_backups` never returns it:
it says nothing about whether the nightly backup ran, and rotation never counts or deletes it.
:func:`list_safety_snapshots` lists them; ``backup restore`` accepts them like any backup.

Listing is cheap (names, ``stat`` and the small sidecars; nothing is decompressed), so the health
check can ask for the age of the newest verified backup every few minutes. A backup's status is
"verified" when its manifest records a passed verification and the file's size and checksum
sidecar still agree with it, "corrupt" when the recorded verification failed or they disagree,
and "unverified" otherwise (the original's backups, or one whose verification never finished).
:func:`tcgjobs.backups.verify.verify_file` does the expensive check: re-hash, decompress
to a temporary file, integrity check, row counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tcgjobs.backups.compression import CHUNK
from tcgjobs.backups.tempfiles import TEMP_PREFIX, temp_path
from tcgjobs.db.sqlite import pid_alive
from tcgjobs.times import from_untrusted

PREFIX = "pokemon-data-"
SAFETY_PREFIX = "pre-restore-"
SAFETY_ORIGIN = "safety snapshot"  # how a safety snapshot's manifest ``origin`` begins
BACKUP, SAFETY_SNAPSHOT = "backup", "safety-snapshot"
BASE_SUFFIX = ".sqlite3.db"
EXTENSIONS = {"gzip": ".gz", "zstd": ".zst", "none": ""}
CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1

#: Temporary-file purposes of the backup code; leftovers with these purposes are ours to remove.
TEMP_PURPOSES = ("backup", "backup-snapshot", "backup-verify", "backup-sidecar", "restore")

_NAME = re.compile(r"^(?P<safety>pre-restore-)?pokemon-data-(?P<stamp>.+?)\.sqlite3\.db(?P<ext>\.gz|\.zst)?$")
_STAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z$")


def backup_name(created_at: datetime, compression: str = "gzip") -> str:
    """The file name of a backup taken at ``created_at`` (the original's scheme, UTC)."""
    moment = created_at.astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H-%M-%S-") + f"{moment.microsecond // 1000:03d}Z"
    return f"{PREFIX}{stamp}{BASE_SUFFIX}{EXTENSIONS[compression]}"


def safety_snapshot_name(created_at: datetime, compression: str = "gzip") -> str:
    """The file name of a safety snapshot taken at ``created_at``: a backup name with a prefix."""
    return SAFETY_PREFIX + backup_name(created_at, compression)


def parse_name(name: str, *, safety: bool = False) -> tuple[datetime | None, str] | None:
    """``(created_at or None if the time part is unparsable, compression)`` for a backup file name,
    or None when ``name`` is not a backup (a sidecar, a temporary file, anything else). With
    ``safety``, safety snapshot names are parsed too."""
    match = _NAME.match(name)
    if not match or (match["safety"] and not safety):
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
    """A regular backup's name (not a safety snapshot's): what rotation may touch."""
    return parse_name(name) is not None


def is_safety_snapshot_name(name: str) -> bool:
    return name.startswith(SAFETY_PREFIX) and parse_name(name, safety=True) is not None


def is_restorable_name(name: str) -> bool:
    """A backup or a safety snapshot: what ``backup verify`` and ``backup restore`` accept."""
    return parse_name(name, safety=True) is not None


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
    kind: str = BACKUP  # backup | safety-snapshot

    @property
    def is_safety_snapshot(self) -> bool:
        return self.kind == SAFETY_SNAPSHOT

    @property
    def has_sidecars(self) -> bool:
        return any(p.exists() for p in sidecars(self.path))

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "created_at": self.created_at.isoformat(),
                "size_bytes": self.size_bytes, "compression": self.compression, "status": self.status,
                "verified_at": self.verified_at.isoformat() if self.verified_at else None,
                "checksum": self.checksum, "reason": self.reason, "kind": self.kind}


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


def _status(size: int, manifest: dict[str, Any] | None,
            sidecar_sum: str | None) -> tuple[str, datetime | None, str | None]:
    """``(status, verified_at, reason)`` from the recorded facts, without reading the backup."""
    if manifest is None:
        return "unverified", None, None
    verification = manifest.get("verification") or {}
    recorded = verification.get("status")
    verified_at = from_untrusted(verification.get("verified_at"))
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
    """The :class:`Backup` for one file (a backup or a safety snapshot), or None if it is neither
    or has disappeared.

    A file with a regular backup name whose manifest ``origin`` says it is a safety snapshot
    (written before safety snapshots had their own prefix) is a safety snapshot too.
    """
    parsed = parse_name(path.name, safety=True)
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
    origin = (manifest or {}).get("origin")
    safety = path.name.startswith(SAFETY_PREFIX) or (
        isinstance(origin, str) and origin.startswith(SAFETY_ORIGIN))
    return Backup(path.name, path, created_at, stat.st_size, compression, status, verified_at,
                  checksum, reason, manifest, SAFETY_SNAPSHOT if safety else BACKUP)


def _list(backup_dir: Path, kind: str) -> list[Backup]:
    try:
        entries = [entry for entry in os.scandir(backup_dir) if entry.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [describe(Path(entry.path)) for entry in entries]
    backups = [backup for backup in found if backup is not None and backup.kind == kind]
    return sorted(backups, key=lambda b: (b.created_at, b.compression != "none", b.name), reverse=True)


def list_backups(backup_dir: Path) -> list[Backup]:
    """Every regular backup in ``backup_dir``, newest first. Sidecars, temporary files and safety
    snapshots are never listed (so they count for neither freshness nor retention).

    Cheap: names, ``stat`` and the small sidecars. A missing directory has no backups.
    """
    return _list(backup_dir, BACKUP)


def list_safety_snapshots(backup_dir: Path) -> list[Backup]:
    """The safety snapshots in ``backup_dir`` (see the module doc), newest first."""
    return _list(backup_dir, SAFETY_SNAPSHOT)


def newest_verified(backups: list[Backup]) -> Backup | None:
    """The newest backup whose status is verified (``backups`` as :func:`list_backups` returns
    them, newest first), or None."""
    return next((item for item in backups if item.status == "verified"), None)


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
        if only_dead and pid_text.isdigit() and (int(pid_text) == os.getpid() or pid_alive(int(pid_text))):
            continue
        found.append(Path(entry.path))
    return sorted(found)


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
