"""Run the tcgjobs CLI in this process with one pause point, so that a test can land a real signal
at an exact moment (after a COMMIT, between two sets) without timing anything.

    python tests/support/pause.py MODULE:QUALNAME N tcgjobs-arguments...
    python tests/support/pause.py MODULE:QUALNAME N@LEAD tcgjobs-arguments...

Before the Nth call of the named function the process writes :data:`PAUSED` on stderr and waits
until the run's cancel scope (the first one the process creates) has fired (the test sends
SIGTERM or SIGINT meanwhile), then makes the call and goes on as the real CLI. With ``@LEAD`` it
waits instead until the run's deadline (``--timeout``) is LEAD seconds away, so that the real
deadline fires LEAD seconds into the call. Nothing else is changed: the signal or deadline, its
handling, the ledger, the output and the exit code are the real ones.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from typing import Any

PAUSED = "TEST-PAUSED: waiting for a signal"
#: Written instead of waiting when the run reached the pause with LEAD seconds or less left: the
#: deadline can no longer be aimed (the test should give a longer --timeout).
LATE = "TEST-PAUSE-LATE"


def _wait(scopes: list[Any], lead: float | None) -> None:
    """Until the run's scope fires or, with ``lead``, until its deadline is ``lead`` seconds away."""
    if lead is not None and scopes:
        remaining = scopes[0].remaining()
        if remaining is None or remaining <= lead:
            sys.stderr.write(f"{LATE}: {remaining} s left of the deadline, {lead} s wanted\n")
            sys.stderr.flush()
            return
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        scope = scopes[0] if scopes else None
        if scope is not None and scope.cancelled:
            return
        if lead is not None and scope is not None:
            remaining = scope.remaining()
            if remaining is not None and remaining <= lead:
                return
        time.sleep(0.001)


def _pause_before(target: str, nth: int, lead: float | None, scopes: list[Any]) -> None:
    module_name, qualname = target.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = 0

    @functools.wraps(original)
    def paused(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth:
            sys.stderr.write(PAUSED + "\n")
            sys.stderr.flush()
            _wait(scopes, lead)
        return original(*args, **kwargs)

    setattr(owner, name, paused)


def main() -> None:
    from tcgjobs.cancel import CancelScope

    target, when, arguments = sys.argv[1], sys.argv[2], sys.argv[3:]
    nth, _, lead = when.partition("@")
    scopes: list[Any] = []
    original_init = CancelScope.__init__

    def init(self: CancelScope, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        scopes.append(self)

    CancelScope.__init__ = init  # type: ignore[method-assign]
    _pause_before(target, int(nth), float(lead) if lead else None, scopes)
    from tcgjobs.cli import main as cli_main

    sys.argv = ["tcgjobs", *arguments]
    cli_main()


if __name__ == "__main__":
    main()
