"""Temporary files of the backup code, and how one becomes a final file.

Every file the backup code writes (a snapshot, a backup being compressed, a decompressed copy
being verified, a restore being staged, a sidecar) starts as a temporary file named by
:func:`temp_path`: the name begins with :data:`TEMP_PREFIX` and names the purpose and the process,
so it never matches the backup name pattern and the leftovers of an interrupted run can be
recognised and removed (:func:`cleanup_leftovers` by the backup jobs, :func:`find_leftovers` by
cleanup-stale-data). Files are created private (:func:`open_private`); one that is kept is fsynced
and published by a rename followed by :func:`fsync_dir`, so readers see the old file or the whole
new one (:func:`write_atomically` does all of this for a small file). These are guarantees of a
local filesystem (rename, fsync).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loguru import logger

from tcgjobs.db.sqlite import pid_alive

TEMP_PREFIX = ".tcgjobs-tmp-"

#: Temporary-file purposes of the backup code; leftovers with these purposes are ours to remove.
TEMP_PURPOSES = ("backup", "backup-snapshot", "backup-verify", "backup-sidecar", "restore")


def temp_path(directory: Path, purpose: str, suffix: str = "") -> Path:
    """A fresh, unused temporary file name in ``directory`` (the file is not created)."""
    return directory / f"{TEMP_PREFIX}{purpose}-{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}"


def open_private(path: Path) -> IO[bytes]:
    """A new file opened for writing with mode 0600 (fails if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def fsync_dir(directory: Path) -> None:
    """Make a rename (or a deletion) in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def cleanup_leftovers(backup_dir: Path, temp_dir: Path) -> list[Path]:
    """Remove temporary files of interrupted backups: every one in ``backup_dir`` (call this only
    while holding the backup-directory lock) and those of dead processes in ``temp_dir``."""
    removed = []
    found = temp_leftovers(backup_dir, only_dead=False) + temp_leftovers(temp_dir, only_dead=True)
    for path in dict.fromkeys(found):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        logger.warning("removed {} left behind by an interrupted backup", path)
        removed.append(path)
    return removed


@dataclass(frozen=True)
class Leftover:
    path: Path
    size: int
    age_s: float


def find_leftovers(directories: list[Path], older_than_s: float, now: float | None = None) -> list[Leftover]:
    """Temporary files in ``directories`` (not recursive) last modified over ``older_than_s`` ago."""
    now = time.time() if now is None else now
    found = []
    for directory in dict.fromkeys(directories):
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            age = now - stat.st_mtime
            if age > older_than_s:
                found.append(Leftover(Path(entry.path), stat.st_size, age))
    return sorted(found, key=lambda leftover: leftover.path)
