"""Bringing a copy back: the backup and its sidecars into a private temporary directory.

The directory sits in TCGJOBS_TMPDIR and holds the files under their own names, so the local
verification and restore code reads them exactly as it reads BACKUP_DIR (the compression from
the name, the expected checksum and row counts from the sidecars). Free space is checked before
the first byte: the download plus the decompressed copy the verification makes. A disk that
fills anyway leaves nothing behind (exit 1, nothing changed).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tcgjobs.backups.create import DiskFull
from tcgjobs.backups.names import CHECKSUM_SUFFIX, MANIFEST_SUFFIX
from tcgjobs.backups.tempfiles import TEMP_PREFIX, temp_path
from tcgjobs.db.sqlite import pid_alive
from tcgjobs.errors import JobFailed, UsageError
from tcgjobs.offsite.catalog import RemoteCopy
from tcgjobs.offsite.store import Store, download_to

PURPOSE = "offsite"
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def expected_room(copy: RemoteCopy, manifest: dict | None) -> int:
    """Bytes a download and its verification need: the object plus its decompressed size (from
    the manifest; four times the object when the manifest does not say)."""
    manifest = manifest or {}
    uncompressed = manifest.get("uncompressed_bytes") or manifest.get("snapshot_bytes")
    return copy.size_bytes + int(uncompressed if isinstance(uncompressed, int) else 4 * copy.size_bytes)


def _check_room(scratch: Path, needed: int, name: str) -> None:
    free = shutil.disk_usage(scratch).free
    if free < needed:
        raise DiskFull(f"not enough disk space in {scratch} for {name}: {free:,} bytes free, the "
                       f"download and its check need about {needed:,}; nothing was changed "
                       "(set TCGJOBS_TMPDIR to a larger volume)")


@contextmanager
def fetched(store: Store, copy: RemoteCopy, scratch: Path,
            check: Callable[[], None] | None = None) -> Iterator[Path]:
    """Download ``copy`` and its sidecars into a temporary directory under ``scratch``; yields
    the backup's path there and removes the directory afterwards. Raises DiskFull (no room),
    UsageError (the copy has vanished) or the store's failures."""
    try:
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobFailed(f"cannot use {scratch} for the download: {exc.strerror or exc}") from exc
    manifest = _manifest(store, copy)
    _check_room(scratch, expected_room(copy, manifest), copy.name)
    directory = temp_path(scratch, PURPOSE)
    directory.mkdir(mode=0o700)
    try:
        target = directory / copy.name
        try:
            for suffix in (CHECKSUM_SUFFIX, MANIFEST_SUFFIX):
                if suffix in copy.sidecars:
                    data = store.get_bytes(store.location.key(copy.name + suffix))
                    if data is not None:
                        (directory / (copy.name + suffix)).write_bytes(data)
            size = download_to(store, copy.key, target, check)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise DiskFull(f"the disk of {scratch} filled while downloading {copy.name}; the "
                               "partial download was removed and nothing was changed") from exc
            raise
        if size != copy.size_bytes:
            raise JobFailed(f"{copy.name}: downloaded {size:,} bytes, the store listed "
                            f"{copy.size_bytes:,}")
        yield target
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _manifest(store: Store, copy: RemoteCopy) -> dict | None:
    if MANIFEST_SUFFIX not in copy.sidecars:
        return None
    data = store.get_bytes(store.location.key(copy.name + MANIFEST_SUFFIX))
    try:
        manifest = json.loads(data) if data else None
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def require_copy(store: Store, name: str) -> RemoteCopy:
    """The copy called ``name`` as listed now. Raises UsageError when there is none."""
    from tcgjobs.offsite.catalog import read_catalog

    copy = read_catalog(store).get(name)
    if copy is None:
        raise UsageError(f"no off-site copy {name!r} in {store.location}; see "
                         "`tcgjobs backup list --remote`")
    return copy


def remove_dead_downloads(scratch: Path) -> list[Path]:
    """Download directories left in ``scratch`` by processes that are gone (kill -9)."""
    removed = []
    try:
        entries = list(os.scandir(scratch))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        head = TEMP_PREFIX + PURPOSE + "-"
        if not entry.name.startswith(head) or not entry.is_dir(follow_symlinks=False):
            continue
        pid = entry.name[len(head):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
