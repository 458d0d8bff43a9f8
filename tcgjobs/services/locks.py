"""Cross-process locks with ``flock``: a crashed holder (even ``kill -9``) never blocks anything,
because the kernel releases the lock when the process dies.

Lock files live in a directory beside the state database (``<state>.locks/``), so every process
that shares a state database shares its locks. Each holder writes who it is into the lock file,
so a refused run can name the holder; a guard file (:func:`_guard`) makes taking a lock and
writing its holder one step for anyone who reads it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tcgjobs.errors import LockHeld

if TYPE_CHECKING:
    from tcgjobs.registry import Resource


#: The guard file in every lock directory, and how long a taker waits for it at most.
GUARD = "guard"
GUARD_WAIT = 5.0


def lock_dir_for(state_path: Path) -> Path:
    return state_path.parent / (state_path.name + ".locks")


def resource_lock(resource: Resource) -> str:
    """The name of the lock that guards ``resource``.

    The runner takes it for every resource a job writes and the ``backup`` commands for what they
    write, so the two exclude each other. The name is also a file name shared by every process on
    the state database, old versions included during an upgrade: changing it would let an old and
    a new process write the same resource at once.
    """
    return f"resource-{resource.value}"


def describe_holder(info: dict[str, Any]) -> str:
    if not info:
        return "another process"
    return (f"{info.get('job', '?')} run {str(info.get('run_id', '?'))[:8]} "
            f"(pid {info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('since', '?')})")


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def _guard(lock_dir: Path) -> Iterator[None]:
    """Hold the directory's guard: taking locks and writing their holders happens under it, and
    so does reading the holder of a lock that could not be taken. A refused taker therefore
    never sees a lock taken whose holder is not written yet. The guard is kept for a few system
    calls, so it is waited for by polling, at most :data:`GUARD_WAIT` seconds (a blocking
    ``flock`` could not be bounded)."""
    with open(lock_dir / GUARD, "a", encoding="utf-8") as handle:
        deadline = time.monotonic() + GUARD_WAIT
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockHeld(f"the locks in {lock_dir} are being taken by a process that "
                                   f"has not finished for {GUARD_WAIT:g}s") from None
                time.sleep(0.001)
        yield  # closing the file releases the guard


@contextmanager
def hold(lock_dir: Path, names: Iterable[str], holder: dict[str, Any]) -> Iterator[None]:
    """Hold every lock in ``names`` (taken in sorted order, without waiting).

    Raises LockHeld naming the lock and its holder when any is taken; the ones already taken are
    released first.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), **holder}
    taken: list[IO[str]] = []
    try:
        with _guard(lock_dir):
            for name in sorted(set(names)):
                path = lock_dir / f"{name}.lock"
                handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    raise LockHeld(f"lock {name!r} is held by "
                                   f"{describe_holder(_read_holder(path))}") from None
                taken.append(handle)
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(holder))
                handle.flush()
        yield
    finally:
        # The holder's record stays in the file after release: it is read only by a taker that
        # was refused, under the guard, and then it is the current holder's (emptying the file
        # before unlocking left a moment in which the holder was nobody).
        for handle in reversed(taken):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
