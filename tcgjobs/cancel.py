"""Cancellation: one scope per phase of a run, fired by its deadline or by SIGTERM/SIGINT.

Python runs signal handlers only between bytecodes of the main thread, so a handler could not stop
a long VACUUM or PostgreSQL statement. Instead the C-level handler writes the signal number to a
wakeup pipe (``signal.set_wakeup_fd``) and a watcher thread fires the scope the
:class:`SignalRouter` currently routes to. Firing calls every registered callback:
``sqlite3.Connection.interrupt`` for SQLite, ``connection.cancel`` for PostgreSQL, the wake-up of
a main thread waiting in :func:`call_unless_cancelled`. The statement then fails in the main
thread, its transaction rolls back, and the runner maps the outcome to the scope's reason and
exit code.

A scope is *sealed* when its phase is over (the job returned): a deadline or signal after that no
longer belongs to it, so it cannot turn a finished job into a cancelled one.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from loguru import logger

from tcgjobs.errors import Cancelled, ExitCode

SIGNAL_EXIT_CODES: dict[int, ExitCode] = {signal.SIGTERM: ExitCode.INTERRUPTED_SIGTERM,
                                          signal.SIGINT: ExitCode.INTERRUPTED_SIGINT}

if TYPE_CHECKING:
    from loguru import Logger

T = TypeVar("T")


class CancelScope:
    """Thread-safe cancellation flag with callbacks and an optional deadline."""

    def __init__(self, log: Logger = logger, what: str = "the run") -> None:
        self._log = log  # bound to the run: the deadline and signals fire it from other threads
        self._what = what
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._sealed = False
        self._deadline: float | None = None  # time.monotonic() at which the scope fires
        self._timer: threading.Timer | None = None
        self.reason: str | None = None
        self.exit_code: ExitCode | None = None

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def cancel(self, reason: str, exit_code: ExitCode) -> None:
        """Fire the scope (the first reason wins; nothing happens once sealed) and run every
        callback."""
        with self._lock:
            if self.reason is not None or self._sealed:
                return
            self.reason, self.exit_code = reason, exit_code
            callbacks = list(self._callbacks.values())
        self._log.warning("cancelling {}: {}", self._what, reason)
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - a failing canceller must not stop the others
                self._log.warning("a cancel callback failed: {}", exc)

    def seal(self) -> bool:
        """End the scope's phase: stop its deadline and ignore later firings. Returns whether
        it had fired before (then the phase's outcome is the cancel's, whatever it produced)."""
        with self._lock:
            self._sealed = True
            fired = self.reason is not None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        return fired

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

    def start_deadline(self, seconds: float) -> None:
        """Fire the scope with TIMEOUT ``seconds`` from now (unless sealed before)."""
        with self._lock:
            if self._sealed:
                return
            self._deadline = time.monotonic() + seconds
            timer = self._timer = threading.Timer(
                seconds, self.cancel, args=(f"deadline of {seconds:g}s exceeded", ExitCode.TIMEOUT))
        timer.daemon = True
        timer.start()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less if the scope fires meanwhile. Returns whether it fired."""
        fired = threading.Event()
        unregister = self.on_cancel(fired.set)
        try:
            return fired.wait(max(0.0, seconds))
        finally:
            unregister()

    def remaining(self) -> float | None:
        """Seconds left until the deadline (never below 0), or None without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def bound(self, seconds: float) -> float:
        """``seconds``, or less when the deadline comes first: the timeout to give a blocking
        call so that it never outlives the scope."""
        remaining = self.remaining()
        return seconds if remaining is None else min(seconds, remaining)


def call_unless_cancelled(scope: CancelScope, function: Callable[[], T], *, name: str,
                          discard: Callable[[T], None] | None = None) -> T:
    """``function()``, run in a worker thread; raises Cancelled as soon as ``scope`` fires.

    For a blocking C call that Python cannot interrupt (libpq's connect, a DNS lookup, a socket
    read in a library without a cancel): the calling thread stops waiting when the scope fires,
    and the process exits soon after recording the run. The abandoned worker finishes in the
    background, bounded by the call's own timeout; what it returns then is passed to
    ``discard`` (close the connection nobody will use). What ``function`` raises is re-raised.
    """
    done = threading.Event()
    lock = threading.Lock()
    box: dict[str, object] = {}

    def work() -> None:
        try:
            value = function()
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            box["error"] = exc
        else:
            with lock:
                abandoned = box.get("abandoned", False)
                box["value"] = value
            if abandoned and discard is not None:
                try:
                    discard(value)
                except Exception as exc:  # noqa: BLE001 - nobody is left to tell but the log
                    logger.debug("discarding the late result of {} failed: {}", name, exc)
        finally:
            done.set()

    scope.check()
    unregister = scope.on_cancel(done.set)
    threading.Thread(target=work, name=f"tcgjobs-{name}", daemon=True).start()
    try:
        done.wait()
    finally:
        unregister()
    with lock:
        if "value" not in box and "error" not in box:
            box["abandoned"] = True
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    if "value" in box:
        return box["value"]  # type: ignore[return-value]
    scope.check()
    raise AssertionError("the wait ended without a result or a cancel")  # pragma: no cover


class SignalRouter:
    """SIGTERM and SIGINT fire the scope the router currently routes to, from :meth:`install`
    until :meth:`uninstall` (a library caller) or :meth:`ignore_until_exit` (the CLI, once the
    outcome is recorded and shown). A signal that comes before the first scope is kept for it.

    The Python-level handler does nothing: the watcher thread fires the scope, so a signal never
    raises into (or deadlocks) whatever the main thread is doing, and system calls interrupted by
    it are simply resumed (PEP 475).
    """

    def __init__(self) -> None:
        self._scope: CancelScope | None = None
        self._early: list[int] = []  # signals received before the first scope was routed to
        self._lock = threading.Lock()
        self._previous: dict[int, object] = {}
        self._previous_fd = -1
        self._fds: tuple[int, int] | None = None
        self._watcher: threading.Thread | None = None

    @classmethod
    def installed(cls) -> SignalRouter | None:
        """A router installed now, or None when this is not the main thread (signals are
        delivered to the main thread only, and only it may install handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        router = cls()
        router.install()
        return router

    def route(self, scope: CancelScope) -> None:
        """Send the next signals to ``scope``; one that arrived before any scope was routed to
        (the run was still being set up) fires it now."""
        with self._lock:
            self._scope = scope
            early, self._early = self._early, []
        for signum in early:
            self._fire(signum)

    def install(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._fds = (read_fd, write_fd)
        self._previous = {sig: signal.getsignal(sig) for sig in SIGNAL_EXIT_CODES}
        self._previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for sig in SIGNAL_EXIT_CODES:
            signal.signal(sig, _resume)
        self._watcher = threading.Thread(target=self._watch, args=(read_fd,),
                                         name="tcgjobs-signals", daemon=True)
        self._watcher.start()

    def _watch(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                self._fire(signum)

    def _fire(self, signum: int) -> None:
        if signum not in SIGNAL_EXIT_CODES:
            return
        with self._lock:
            scope = self._scope
            if scope is None:
                self._early.append(signum)
                return
        scope.cancel(f"received {signal.Signals(signum).name}", SIGNAL_EXIT_CODES[signum])

    def uninstall(self) -> None:
        """Restore the handlers found at :meth:`install` (for callers that go on living)."""
        self._restore(dict(self._previous))

    def ignore_until_exit(self) -> None:
        """From now until the process exits, SIGTERM and SIGINT do nothing: the outcome is
        recorded, and the exit code must be the ledger's. (SIG_IGN, not a Python handler:
        interpreter shutdown resets Python handlers to the default, which would kill the
        process with 143 or 130 in its last moments.)"""
        self._restore(dict.fromkeys(SIGNAL_EXIT_CODES, signal.SIG_IGN))

    def _restore(self, handlers: dict[int, object]) -> None:
        if self._fds is None:
            return
        for sig, handler in handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_fd)
        read_fd, write_fd = self._fds
        self._fds = None
        os.close(write_fd)
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        os.close(read_fd)


def _resume(signum: int, frame: object) -> None:
    """The Python-level handler: nothing to do here (see :class:`SignalRouter`)."""
