"""The backups in a local directory (BACKUP_DIR): listing them with a status, their sidecars,
removing them.

Beside each backup (see :mod:`tcgjobs.backups.names` for the names):

* ``<name>.sha256``: ``<hex>  <name>``, accepted by ``sha256sum -c``;
* ``<name>.manifest.json``: what was backed up and the result of its last verification.

:func:`list_backups` never returns a safety snapshot: it says nothing about whether the nightly
backup ran, and rotation never counts or deletes it. :func:`list_safety_snapshots` lists them;
``backup restore`` accepts them like any backup.

Listing is cheap (names, ``stat`` and the small sidecars; nothing is decompressed), so the health
check can ask for the age of the newest verified backup every few minutes. A backup's status is
"verified" when its manifest records a passed verification and the file's size and checksum
sidecar still agree with it, "corrupt" when the recorded verification failed or they disagree,
and "unverified" otherwise (the original's backups, or one whose verification never finished).
The expensive check that records a status is :mod:`tcgjobs.backups.verify`'s.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tcgjobs.backups.names import (
    BACKUP,
    CHECKSUM_SUFFIX,
    MANIFEST_SUFFIX,
    SAFETY_PREFIX,
    SAFETY_SNAPSHOT,
    checksum_path,
    is_backup_name,
    manifest_path,
    parse_name,
    sidecars,
)
from tcgjobs.backups.tempfiles import fsync_dir, write_atomically
from tcgjobs.times import from_untrusted

SAFETY_ORIGIN = "safety snapshot"  # how a safety snapshot's manifest ``origin`` begins
MANIFEST_FORMAT = 1


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


def write_checksum(path: Path, digest: str) -> None:
    """The ``sha256sum -c``-compatible sidecar of backup ``path``."""
    write_atomically(checksum_path(path), f"{digest}  {path.name}\n".encode())


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    body = json.dumps({"format": MANIFEST_FORMAT, **manifest}, indent=2, sort_keys=False, default=str)
    write_atomically(manifest_path(path), (body + "\n").encode())


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
