"""Mapping rows on two cores: part of them in this process, the rest in a forked child at once.

A full replication maps every SQLite row to its COPY line and canonical digest, which is pure
Python work bound to one core. :func:`split_map` forks a child that maps the rows read so far
(inherited, not copied: the child only reads them) while this process reads the rest and maps
them. The child sends its results through a pipe in pickled batches as it goes; this process
passes them on between its own results, so whoever consumes them (PostgreSQL's COPY) works all
along rather than at the end. The child touches no database connection, lock or log: it maps,
writes and leaves with ``os._exit``. If this process stops early (an error, SIGTERM, the
deadline), the child is killed and reaped.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: The share of the rows a caller should leave to this process: it also reads them after the
#: fork and passes on every result (its own and the child's), so the child takes the larger part.
OWN_SHARE = 0.4
BATCH = 500  # results per batch the child sends
POLL_EVERY = 100  # own results between two looks at the pipe
PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged process
_HEADER = struct.Struct(">Q")


class WorkerFailed(RuntimeError):
    """The child process could not map its part (the message says why)."""


def available() -> bool:
    """Whether a second process can help: fork exists, this is the main thread (signal set-up
    in the child needs it) and the process may run on two CPUs."""
    if not hasattr(os, "fork") or threading.current_thread() is not threading.main_thread():
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) >= 2


def split_map(child_items: Sequence[T], own_items: Callable[[], Sequence[T]],
              work: Callable[[Sequence[T]], Iterable[R]]) -> Iterator[R]:
    """``work(child_items)`` in a forked child and, meanwhile, ``work(own_items())`` here
    (``own_items`` is called after the fork, before the first result, so that reading them
    overlaps the child's work; what it raises stops the child); the results of both as they
    come. Raises WorkerFailed."""
    read_fd, write_fd = os.pipe()
    _widen(write_fd)
    pid = os.fork()
    if pid == 0:
        _child(work, child_items, read_fd, write_fd)
    os.close(write_fd)
    try:
        own = own_items()
        os.set_blocking(read_fd, False)
        batches = _Batches(read_fd)
        for number, result in enumerate(work(own), 1):
            yield result
            if number % POLL_EVERY == 0:
                yield from batches.ready()
        os.set_blocking(read_fd, True)
        yield from batches.ready(wait=True)
        _, status = os.waitpid(pid, 0)
        pid = 0
        if status or not batches.done:
            raise WorkerFailed(f"the second mapping process failed: {batches.error or status}")
    finally:
        os.close(read_fd)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _widen(fd: int) -> None:
    """Give the pipe PIPE_BYTES of buffer where the system allows (Linux: 64 KiB by default,
    which the child fills between two looks of this process and then waits)."""
    with suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class _Batches:
    """Reads the child's frames: a length, then a pickled ("rows", list), ("error", text) or
    ("done", None)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self.done = False
        self.error: str | None = None

    def ready(self, wait: bool = False) -> Iterator[Any]:
        """The results of every complete batch that has arrived (``wait``: until the end)."""
        while True:
            try:
                chunk = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                chunk = None
            if chunk:
                self._buffer += chunk
            yield from self._complete()
            if chunk == b"" or (chunk is None and not wait):
                return

    def _complete(self) -> Iterator[Any]:
        while len(self._buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + length
            if len(self._buffer) < end:
                return
            kind, payload = pickle.loads(self._buffer[_HEADER.size:end])
            del self._buffer[:end]
            if kind == "rows":
                yield from payload
            elif kind == "error":
                self.error = payload
            else:
                self.done = True


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
        with os.fdopen(write_fd, "wb") as pipe:
            def send(kind: str, payload: Any) -> None:
                data = pickle.dumps((kind, payload), pickle.HIGHEST_PROTOCOL)
                pipe.write(_HEADER.pack(len(data)) + data)
                pipe.flush()

            try:
                batch: list[R] = []
                for result in work(part):
                    batch.append(result)
                    if len(batch) == BATCH:
                        send("rows", batch)
                        batch = []
                send("rows", batch)
                send("done", None)
            except Exception as exc:  # noqa: BLE001 - reported by the parent, which raises WorkerFailed
                send("error", f"{type(exc).__name__}: {exc}")
        code = 0
    finally:
        os._exit(code)  # no atexit, no finalizers: the parent's connections stay untouched
