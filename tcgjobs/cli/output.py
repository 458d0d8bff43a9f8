"""Rendering results: rich on a terminal, plain parseable text when piped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tcgjobs.cli import common
from tcgjobs.config import Settings
from tcgjobs.logging import redact
from tcgjobs.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    from tcgjobs.runner import RunOutcome

RULE = "=" * 50
_STYLE = {"succeeded": "green", "dry-run": "cyan", "skipped": "yellow", "running": "blue"}


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def print_outcome(outcome: RunOutcome) -> None:
    """The original's result block, with the outcome and exit code spelled out."""
    lines = [RULE, "JOB RESULT", RULE,
             f"Job:      {outcome.job}",
             f"Run:      {outcome.run_id}",
             f"Outcome:  {outcome.status.value} (exit {int(outcome.exit_code)})",
             f"Trigger:  {outcome.trigger}{' (dry run)' if outcome.dry_run else ''}",
             f"Duration: {outcome.duration_s:.2f}s",
             f"Started:  {outcome.started_at.isoformat(timespec='milliseconds')}",
             f"Finished: {outcome.finished_at.isoformat(timespec='milliseconds')}"]
    if outcome.summary:
        lines.append(f"Summary:  {outcome.summary}")
    if outcome.committed:  # a run that stopped or failed after committing part of its work
        lines.append(f"Committed: {outcome.committed}")
    if outcome.metrics:
        lines += ["", "Metrics:"] + [f"  {key}: {value}" for key, value in outcome.metrics.items()]
    if outcome.error:
        lines += ["", "Error:", f"  {outcome.error}"]
    lines.append(RULE)
    table = outcome.details.get("table") if isinstance(outcome.details, dict) else None
    if table:  # a job's findings as rows (the health check's checks)
        print_table(table["columns"], table["rows"])
    common.print_text("\n".join(lines))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A rich table on a terminal; tab-separated lines with a header when piped."""
    if common.is_terminal():
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            cells = [redact(str(cell)) for cell in row]
            if "status" in columns:
                index = list(columns).index("status")
                style = _STYLE.get(cells[index], "red" if cells[index] not in ("-", "never run") else "")
                cells[index] = f"[{style}]{cells[index]}[/]" if style else cells[index]
            table.add_row(*cells)
        common.stdout().print(table)
        return
    common.print_text("\t".join(columns))
    for row in rows:
        common.print_text("\t".join(str(cell) for cell in row))


class _RichReporter:
    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Any]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=common.stderr(), transient=True) as bar:
            task = bar.add_task(description, total=total)

            class _Advance:
                def advance(self, amount: int = 1) -> None:
                    bar.advance(task, amount)

            yield _Advance()


def reporter_for(as_json: bool, settings: Settings) -> Reporter:
    """Progress bars only for a person at a terminal."""
    if as_json or settings.log_format == "json" or not common.stderr_is_terminal():
        return NullReporter()
    return _RichReporter()
