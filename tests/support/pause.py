"""Run the tcgjobs CLI in this process with one pause point, so that a test can land a real signal
at an exact moment (after a COMMIT, between two sets) without timing anything.

    python tests/support/pause.py MODULE:QUALNAME N tcgjobs-arguments...

Before the Nth call of the named function the process writes :data:`PAUSED` on stderr and waits
until the run's cancel scope (the first one the process creates) has fired (the test sends
SIGTERM or SIGINT meanwhile), then makes the call and goes on as the real CLI. Nothing else is
changed: the signal, its handling, the ledger, the output and the exit code are the real ones.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from typing import Any

PAUSED = "TEST-PAUSED: waiting for a signal"


def _pause_before(target: str, nth: int, scopes: list[Any]) -> None:
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
            deadline = time.monotonic() + 60
            while not (scopes and scopes[0].cancelled) and time.monotonic() < deadline:
                time.sleep(0.005)
        return original(*args, **kwargs)

    setattr(owner, name, paused)


def main() -> None:
    from tcgjobs.cancel import CancelScope

    target, nth, arguments = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    scopes: list[Any] = []
    original_init = CancelScope.__init__

    def init(self: CancelScope, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        scopes.append(self)

    CancelScope.__init__ = init  # type: ignore[method-assign]
    _pause_before(target, nth, scopes)
    from tcgjobs.cli import main as cli_main

    sys.argv = ["tcgjobs", *arguments]
    cli_main()


if __name__ == "__main__":
    main()
