"""Restoring over an existing database that other processes may be using (the live one).

Every commit must land somewhere: those made before the restore in the safety snapshot, those made
after it on the restored database. So the database's write lock is held from the moment the
safety copy is read until the restored content is committed:

1. The verified copy is written in with SQLite's backup API, one page per step. Locks are taken by
   polling every millisecond, not in SQLite's busy handler, whose growing sleeps lose every time to
   a writer that takes the lock again at once. The first step
   takes the destination's write lock (in WAL mode a write transaction; SQLite keeps it until
   the step that copies the last page commits): writers wait, or get SQLITE_BUSY after their busy
   timeout, while readers go on reading the old content. (SQLite refuses a backup into a connection
   that holds BEGIN IMMEDIATE, so the lock has to be the backup's own.)
2. In the progress callback after that first step, a second connection reads the safety snapshot:
   no commit can fall between it and the restore. If the snapshot fails, or the run is cancelled at
   any step, the callback raises, SQLite rolls the backup back and the database is unchanged.
3. After the last step, the restored database is checked (integrity_check, the backup's row
   counts) in one read transaction. ``PRAGMA data_version`` of the restoring connection, read under
   the write lock just before the restore and again when the check begins, proves that no other
   connection committed in between (the restore's own commit does not count): then the check sees
   exactly the restored state and the counts must be the backup's. A commit that slips in while the
   lock passes from that read to the first step is seen by the second connection's
   ``data_version`` before anything is written, and the attempt is repeated. One that lands right
   after the restore (a writer that won the lock the moment it was released) hides the restored
   state for good: the integrity check then runs on the current state and the row counts are
   reported, not compared, with a warning.

All this is WAL mode, where readers read while the lock is held. In a rollback journal the first
step takes an exclusive lock that keeps readers out as well, so a target that needs a safety
snapshot is switched to WAL first (as every job that writes the card database does); one that
does not is restored in its own journal mode, without the second connection's race check.

A target that is not an SQLite database at all (no reader can be using it) is replaced atomically
instead, after its stale ``-wal``/``-shm`` are removed.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from loguru import logger

from tcgjobs.backups.compression import copy_stream
from tcgjobs.backups.create import DISK_FULL_ERRNOS, DiskFull
from tcgjobs.backups.names import BASE_SUFFIX
from tcgjobs.backups.tempfiles import fsync_dir, open_private, temp_path
from tcgjobs.backups.verify import open_snapshot, row_counts
from tcgjobs.db.sqlite import integrity_problems
from tcgjobs.errors import JobFailed

#: A safety snapshot: given a connection that reads the database as it is just before the
#: restore, write and verify the snapshot and return its path.
SafetySnapshot = Callable[[sqlite3.Connection], Path]

POLL_S = 0.001  # between attempts to take a write lock another process holds
EXACT = "integrity_check and row counts of the restored state"
INTEGRITY_ONLY = ("integrity_check only: another connection committed right after the restore, "
                  "so its exact state could not be read")


@dataclass
class Overwritten:
    """What :func:`overwrite` did."""

    method: str
    check: str  # EXACT, or INTEGRITY_ONLY when the restored state could not be read exactly
    row_counts: dict[str, int]  # as the check read them
    safety_snapshot: Path | None = None


@dataclass
class _Locking:
    """Waiting for the write lock: polled every :data:`POLL_S` up to ``timeout_s``, cancellable."""

    target: Path
    timeout_s: float
    check: Callable[[], None] | None
    since: float = field(default_factory=time.monotonic)

    def waited(self) -> None:
        """Called after each refused attempt. Raises Cancelled via ``check``, or JobFailed once
        ``timeout_s`` has passed since the first attempt."""
        if self.check:
            self.check()
        if time.monotonic() - self.since > self.timeout_s:
            raise JobFailed(f"another process kept {self.target} locked for writing for "
                            f"{self.timeout_s:g}s; nothing was changed")


class _Raced(Exception):
    """Another connection committed between the release of the lock under which ``data_version``
    was read and the restore's first step (nothing was changed; the attempt is repeated)."""


@dataclass
class _Step:
    """The progress callback: waits for the write lock, makes sure (through ``reader``) no commit
    slipped in before the first step took it, then takes the safety snapshot through it."""

    safety: SafetySnapshot | None
    reader: sqlite3.Connection | None  # None: a rollback journal, which no one reads while locked
    locking: _Locking
    reader_version: int = 0  # the reader's data_version under the released lock
    locked: bool = False
    snapshot: Path | None = None

    def __call__(self, status: int, remaining: int, total: int) -> None:
        if status == sqlite3.SQLITE_DONE:
            return  # committed: a cancel now must not look like a rolled-back restore
        if not self.locked:
            if status != sqlite3.SQLITE_OK:  # BUSY or LOCKED: another writer holds the lock
                self.locking.waited()
                return
            if self.reader is not None and _data_version(self.reader) != self.reader_version:
                raise _Raced
            self.locked = True
            if self.safety is not None:
                assert self.reader is not None  # see _wal_reader
                self.snapshot = self.safety(self.reader)
        if self.locking.check:
            self.locking.check()


def overwrite(copy: Path, target: Path, expected: dict[str, int], *, busy_timeout_s: float,
              safety: SafetySnapshot | None, check: Callable[[], None] | None = None,
              committed: Callable[[Path | None], None] | None = None) -> Overwritten:
    """Restore the verified database file ``copy`` (row counts ``expected``) over the existing
    ``target`` (see the module doc), taking the ``safety`` snapshot under the same write lock.
    ``committed`` is called (with the safety snapshot) the moment the restored content is
    committed, before it is checked.

    Raises JobFailed when the safety snapshot fails or the target is damaged and a safety snapshot
    was asked for, when the write lock stays taken for ``busy_timeout_s`` or the copy cannot be
    written in (in each case nothing changed), or when the restored database fails its check;
    DiskFull; Cancelled via ``check`` (nothing changed).
    """
    source = open_snapshot(copy)
    live = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None)
    reader: sqlite3.Connection | None = None
    try:
        _require_pages(source, target)
        try:
            reader = _wal_reader(live, target, busy_timeout_s, need=safety is not None)
            live.execute("PRAGMA busy_timeout = 0")  # locks are polled (see the module doc)
            step = _Step(safety, reader, _Locking(target, busy_timeout_s, check))
            before = _lock_and_copy(source, live, target, step)
            if committed:
                committed(step.snapshot)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_NOTADB":
                raise JobFailed(f"cannot lock {target} for the restore, nothing changed: {exc}") from exc
            if safety is not None:
                raise JobFailed(f"the safety snapshot of {target} failed, nothing was restored: {exc} "
                                "(use --no-safety-snapshot to restore over a damaged database)") from exc
        else:
            checked, counts = check_restored(live, before, expected, target, busy_timeout_s)
            return Overwritten("copied into the existing database with SQLite's backup API, "
                               "under its write lock", checked, counts, step.snapshot)
    finally:
        for conn in (reader, live, source):
            if conn is not None:
                conn.close()
    return _replace_damaged(copy, target, expected, busy_timeout_s)


def _wal_reader(live: sqlite3.Connection, target: Path, busy_timeout_s: float,
                need: bool) -> sqlite3.Connection | None:
    """A second, read-only connection to ``target`` when it is in WAL mode, or None.

    Only in WAL mode can another connection read while the restore holds the write lock (in a
    rollback journal the backup's first step takes an exclusive lock). When a safety snapshot
    needs that reader, a target in a rollback journal is switched to WAL first, as every tcgjobs
    job that writes the card database does. Raises JobFailed when it cannot be switched;
    sqlite3.DatabaseError (SQLITE_NOTADB) for a file that is not a database.
    """
    mode = live.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal" and need:
        mode = live.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise JobFailed(f"{target} uses the {mode} journal and could not be switched to WAL, "
                            "which the safety snapshot needs to be read under the restore's lock; "
                            "nothing was changed")
        logger.info("switched {} to WAL, so its safety snapshot can be read while it is locked", target)
    if mode != "wal":
        return None
    return sqlite3.connect(f"file:{quote(str(target.resolve()))}?mode=ro", uri=True,
                           timeout=busy_timeout_s)


def _require_pages(source: sqlite3.Connection, target: Path) -> None:
    """Refuse a copy of one page: its first step would copy it all and commit at once, before the
    safety snapshot (such a database has no tables anyway)."""
    pages = source.execute("PRAGMA page_count").fetchone()[0]
    if pages < 2:
        raise JobFailed(f"the backup holds an empty database ({pages} page); not restoring it "
                        f"over {target}")


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _lock_and_copy(source: sqlite3.Connection, live: sqlite3.Connection, target: Path,
                   step: _Step) -> int:
    """Read ``data_version`` under the write lock, then copy in at once; again if a commit slipped
    in between. Returns ``live``'s ``data_version`` as it was just before the restore. Raises
    sqlite3.DatabaseError when the lock cannot be taken (SQLITE_NOTADB: not a database)."""
    while True:
        before = _versions_under_lock(live, step)
        try:
            _copy_in(source, live, target, step)
            return before
        except _Raced:
            logger.debug("a commit slipped in before the restore took the lock; trying again")
            step.locking.waited()


def _versions_under_lock(live: sqlite3.Connection, step: _Step) -> int:
    """Take the write lock on ``live``, read ``data_version`` of ``live`` (returned; its pager is
    then current) and of the step's reader, and release the lock for the restore's first step."""
    while True:
        try:
            live.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY":
                raise
        step.locking.waited()
        time.sleep(POLL_S)
    try:
        if step.reader is not None:
            step.reader_version = _data_version(step.reader)
        return _data_version(live)
    finally:
        live.execute("ROLLBACK")


def _copy_in(source: sqlite3.Connection, live: sqlite3.Connection, target: Path, step: _Step) -> None:
    """Write ``source`` into ``live`` one page per step, ``step`` taking the safety snapshot after
    the first (see the module doc). Raises _Raced from ``step``, before anything was written."""
    try:
        source.backup(live, pages=1, progress=step, sleep=POLL_S)
    except sqlite3.DatabaseError as exc:
        if _disk_full(exc):
            raise DiskFull(f"not enough disk space to restore into {target}; the database is "
                           f"unchanged: {exc}") from exc
        raise JobFailed(f"copying into {target} failed, the database is unchanged: {exc}") from exc


def _disk_full(exc: sqlite3.DatabaseError) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_FULL", "SQLITE_IOERR_WRITE")


def check_restored(live: sqlite3.Connection, before: int, expected: dict[str, int], target: Path,
                    busy_timeout_s: float) -> tuple[str, dict[str, int]]:
    """Check the restored database in one read transaction: integrity always, the row counts
    against ``expected`` when ``PRAGMA data_version`` proves no other connection committed since
    ``before`` (the restore's own commit leaves it unchanged). Returns ``(which check, counts)``.
    Raises JobFailed when the database fails."""
    live.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    live.execute("BEGIN")
    try:
        exact = _data_version(live) == before
        problems = integrity_problems(live)
        counts = {} if problems else row_counts(live)
    finally:
        live.execute("COMMIT")
    if problems:
        raise JobFailed(f"{target} failed integrity_check after the restore: {'; '.join(problems[:3])}")
    if not exact:
        logger.warning("{} passed integrity_check after the restore; its row counts were not "
                       "compared with the backup's because another connection committed right "
                       "after the restore (now: {})", target, counts)
        return INTEGRITY_ONLY, counts
    if counts != expected:
        raise JobFailed(f"{target} holds {counts} rows after the restore, expected {expected}")
    logger.info("{} passed integrity_check and holds the backup's row counts {}", target, counts)
    return EXACT, counts


def _replace_damaged(copy: Path, target: Path, expected: dict[str, int],
                     busy_timeout_s: float) -> Overwritten:
    """``target`` is not a database at all, so no reader can be using it: swap the file, after
    removing its stale ``-wal``/``-shm`` (SQLite would otherwise replay that WAL into the new file),
    and check the result."""
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
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFull(f"not enough disk space to replace {target}") from exc
        raise
    finally:
        staged.unlink(missing_ok=True)
    restored = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None)
    try:
        checked, counts = check_restored(restored, _data_version(restored), expected, target,
                                          busy_timeout_s)
    finally:
        restored.close()
    return Overwritten("replaced the damaged file (not an SQLite database) atomically", checked, counts)
