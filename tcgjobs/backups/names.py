"""What a backup and its sidecars are called, and what a name says about the file.

A backup is named like the original service's
(``pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz``: the UTC ISO time with ``:`` and ``.``
replaced by ``-``), compressed with gzip (``.gz``) or zstd (``.zst``); the original's uncompressed
``.sqlite3.db`` leftovers are recognised too. Its sidecars add a suffix to the whole name:
``<name>.sha256`` and ``<name>.manifest.json``.

A **safety snapshot** (taken by ``backup restore --force`` before it overwrites a database) has a
backup's name with the prefix ``pre-restore-``; :func:`parse_name` only accepts it when asked to,
so code that deals with regular backups (rotation, freshness) never mistakes one for a backup.

Pure: strings and paths only, nothing is read or written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "pokemon-data-"
SAFETY_PREFIX = "pre-restore-"
BACKUP, SAFETY_SNAPSHOT = "backup", "safety-snapshot"  # the two kinds of file with a backup name
BASE_SUFFIX = ".sqlite3.db"
EXTENSIONS = {"gzip": ".gz", "zstd": ".zst", "none": ""}
CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"

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
    """Where the ``.sha256`` sidecar of backup ``path`` lives."""
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def manifest_path(path: Path) -> Path:
    """Where the JSON manifest of backup ``path`` lives."""
    return path.with_name(path.name + MANIFEST_SUFFIX)


def sidecars(path: Path) -> tuple[Path, Path]:
    return checksum_path(path), manifest_path(path)
