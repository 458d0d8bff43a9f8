"""Mapping rows on two cores: one half in this process, the other in a forked child at once.

A full replication maps every SQLite row to its COPY line and canonical digest, which is pure
Python work bound to one core while PostgreSQL's COPY barely uses the other. :func:`split_map`
forks a child that maps the second part of the rows (inherited, not copied: the child only reads
them) while this process maps the first part and streams it; the child's results come back
through a pipe, pickled, once it is done. The child touches no database connection, lock or log:
it maps, writes its result and leaves with ``os._exit``. If this process stops early (an error,
SIGTERM, the deadline), the child is killed and reaped.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NoReturn, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class WorkerFailed(RuntimeError):
    """The child process could not map its half (the message says why)."""


def available() -> bool:
    """Whether a second process can help: fork exists, this is the main thread (signal set-up
    in the child needs it) and the process may run on two CPUs."""
    if not hasattr(os, "fork") or threading.current_thread() is not threading.main_thread():
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) >= 2


#: The share of the items this process maps: it also streams its results (and then the child's)
#: while the child only maps, so the child takes a little more.
OWN_SHARE = 0.45


def split_map(items: Sequence[T], work: Callable[[Sequence[T]], Iterable[R]]) -> Iterator[R]:
    """``work`` of the first items (:data:`OWN_SHARE`) here, streamed as it is produced, then
    ``work`` of the rest, computed meanwhile by a forked child. Raises WorkerFailed."""
    half = int(len(items) * OWN_SHARE)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(work, items[half:], read_fd, write_fd)
    os.close(write_fd)
    try:
        yield from work(items[:half])
        with os.fdopen(read_fd, "rb", closefd=False) as pipe:
            payload = pipe.read()  # until the child closes its end (it is done or dead)
        _, status = os.waitpid(pid, 0)
        pid = 0
        ok, result = pickle.loads(payload) if payload else (False, f"wait status {status}")
        if not ok or status:
            raise WorkerFailed(f"the second mapping process failed: {result}")
        yield from result
    finally:
        os.close(read_fd)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _child(work: Callable[[Sequence[T]], Iterable[R]], part: Sequence[T], read_fd: int,
           write_fd: int) -> NoReturn:
    code = 1
    try:
        os.close(read_fd)
        # The parent's handlers would wake its signal watcher through the shared wakeup fd:
        # SIGTERM and SIGINT simply end the child (the parent kills it anyway when it stops).
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        try:
            payload = pickle.dumps((True, list(work(part))), pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # reported by the parent, which raises WorkerFailed
            payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
        code = 0
    finally:
        os._exit(code)  # no atexit, no finalizers: the parent's connections stay untouched
