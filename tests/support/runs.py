"""What a run left behind besides its result: its ledger row and its log lines."""

from __future__ import annotations

import json
from typing import Any


def ledger_row(cli: Any, job: str) -> dict[str, Any]:
    """The newest ledger row of ``job``, as ``tcgjobs history JOB --json`` shows it."""
    from tests.conftest import invoke

    result = invoke(cli, "history", job, "--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert runs, f"no ledger row for {job}"
    return runs[0]


def log_lines(result: Any, level: str | None = None) -> list[str]:
    """The messages of a run's JSON log lines on stderr (of ``level`` only, when given)."""
    messages = []
    for line in result.stderr.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if level is None or entry["level"] == level:
            messages.append(entry["message"])
    return messages


def logged(result: Any, level: str, *fragments: str) -> bool:
    """Whether one log line of ``level`` holds every fragment."""
    return any(all(fragment in message for fragment in fragments)
               for message in log_lines(result, level))
