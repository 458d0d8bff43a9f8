"""Cancellation: one scope per run, fired by the run's deadline or by SIGTERM/SIGINT.

Python runs signal handlers only between bytecodes of the main thread, so a handler could not stop
a long VACUUM or PostgreSQL statement. Instead the C-level handler writes the signal number to a
wakeup pipe (``signal.set_wakeup_fd``) and a watcher thread fires the scope. Firing calls every
registered callback: ``sqlite3.Connection.interrupt`` for SQLite, ``connection.cancel`` for
PostgreSQL. The statement then fails in the main thread, its transaction rolls back, and the
runner maps the failure to the scope's reason and exit code.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from loguru import logger

from tcgjobs.errors import Cancelled, ExitCode

SIGNAL_EXIT_CODES: dict[int, ExitCode] = {signal.SIGTERM: ExitCode.INTERRUPTED_SIGTERM,
                     signal.SIGINT: ExitCode.INTERRUPTED_SIGINT}


class CancelScope:
    """Thread-safe cancellation flag with callbacks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        self.reason: str | None = None
        self.exit_code: ExitCode | None = None

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def cancel(self, reason: str, exit_code: ExitCode) -> None:
        """Fire the scope (first reason wins) and run every callback."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason, self.exit_code = reason, exit_code
            callbacks = list(self._callbacks.values())
        logger.warning("cancelling the run: {}", reason)
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - a failing canceller must not stop the others
                logger.warning("a cancel callback failed: {}", exc)

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when the scope fires (now, if it already has). Returns an unregister."""
        with self._lock:
            key = self._next
            self._next += 1
            self._callbacks[key] = callback
            fired = self.reason is not None
        if fired:
            callback()
        return lambda: self._forget(key)

    def _forget(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)

    def check(self) -> None:
        """Raise Cancelled if the scope has fired. Call between units of work."""
        if self.reason is not None:
            raise Cancelled(self.reason, self.exit_code or ExitCode.FAILED)


@contextmanager
def deadline(scope: CancelScope, seconds: float) -> Iterator[None]:
    """Fire ``scope`` with TIMEOUT after ``seconds``."""
    timer = threading.Timer(seconds, scope.cancel,
                            args=(f"deadline of {seconds:g}s exceeded", ExitCode.TIMEOUT))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@contextmanager
def signals_cancel(scope: CancelScope) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT fire ``scope`` instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = {sig: signal.getsignal(sig) for sig in SIGNAL_EXIT_CODES}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def fire(signum: int) -> None:
        if signum in SIGNAL_EXIT_CODES:
            scope.cancel(f"received {signal.Signals(signum).name}", SIGNAL_EXIT_CODES[signum])

    def watch() -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                fire(signum)

    def handler(signum: int, _frame: object) -> None:
        fire(signum)

    for sig in SIGNAL_EXIT_CODES:
        signal.signal(sig, handler)
    watcher = threading.Thread(target=watch, name="tcgjobs-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, old in previous.items():
            signal.signal(sig, old)
        os.close(write_fd)
        watcher.join(timeout=2)
        os.close(read_fd)
